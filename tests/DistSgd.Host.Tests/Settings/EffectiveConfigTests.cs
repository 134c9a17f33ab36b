using DistSgd.Actors.Transport;
using DistSgd.Host.Settings;

namespace DistSgd.Host.Tests.Settings;

public class EffectiveConfigTests
{
    [Fact]
    public void Transport_flag_wins_over_the_config_file()
    {
        using var temp = new TempFolder();
        var settings = WithConfigFile(temp, "distsgd.transport = akka\ndistsgd.step-timeout = 7s\n") with { Transport = "direct" };

        var config = EffectiveConfig.Load(settings);

        Assert.Equal(PayloadTransport.Direct, config.DistSgd.Transport);
        Assert.Equal("direct", config.TransportName);
        Assert.Equal(TimeSpan.FromSeconds(7), config.DistSgd.StepTimeout);
    }

    [Fact]
    public void Without_a_file_or_flags_the_reference_configuration_is_in_force()
    {
        using var temp = new TempFolder();
        var settings = BlobsSettings.Create(temp["run"], RunMode.Sequential, samples: 100, hidden: [], epochs: 1, batchSize: 8);

        var config = EffectiveConfig.Load(settings);

        Assert.Null(config.Overrides);
        Assert.Equal("direct", config.TransportName);
    }

    [Fact]
    public void A_misspelt_key_fails_naming_the_file_and_the_key()
    {
        using var temp = new TempFolder();
        var settings = WithConfigFile(temp, "distsgd.step-timout = 7s\n");

        var error = Assert.Throws<UsageException>(() => EffectiveConfig.Load(settings));

        Assert.Contains(settings.ConfigFile!, error.Message);
        Assert.Contains("distsgd.step-timout", error.Message);
    }

    /// <summary>A small centralized run's settings with a --config file holding <paramref name="text"/>.</summary>
    private static TrainSettings WithConfigFile(TempFolder temp, string text)
    {
        string file = temp["overrides.conf"];
        File.WriteAllText(file, text);
        return BlobsSettings.Create(temp["run"], RunMode.Centralized, samples: 100, hidden: [], epochs: 1, batchSize: 8) with { ConfigFile = file };
    }
}
