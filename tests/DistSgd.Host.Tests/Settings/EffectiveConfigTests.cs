using DistSgd.Actors.Transport;
using DistSgd.Host.Settings;

namespace DistSgd.Host.Tests.Settings;

public class EffectiveConfigTests
{
    [Theory]
    [InlineData(null, null)]
    [InlineData("debug", "DEBUG")]
    [InlineData("WARNING", "WARNING")]
    public void DISTSGD_AKKA_LOGLEVEL_takes_the_levels_Akka_knows_in_any_case(string? value, string? expected) =>
        Assert.Equal(expected, EffectiveConfig.CheckAkkaLogLevel(value));

    [Theory]
    [InlineData("LOUD")]
    [InlineData("")]
    [InlineData("WARN")]
    public void A_DISTSGD_AKKA_LOGLEVEL_Akka_does_not_know_is_refused_naming_the_variable(string value)
    {
        var e = Assert.Throws<UsageException>(() => EffectiveConfig.CheckAkkaLogLevel(value));
        Assert.Equal($"DISTSGD_AKKA_LOGLEVEL: expected one of OFF, ERROR, WARNING, INFO, DEBUG, found '{value}'", e.Message);
    }

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
