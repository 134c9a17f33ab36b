using DistSgd.Host.Settings;

namespace DistSgd.Host.Tests.Settings;

public class RunModesTests
{
    [Theory]
    [InlineData(RunMode.Sequential, "sequential")]
    [InlineData(RunMode.Centralized, "centralized")]
    [InlineData(RunMode.Decentralized, "decentralized")]
    public void A_mode_reads_back_from_its_command_line_name(RunMode mode, string name)
    {
        Assert.Equal(name, mode.Name());
        Assert.Equal(mode, RunModes.Parse(name));
    }

    [Fact]
    public void The_names_are_listed_as_the_mode_flag_has_always_listed_them() =>
        Assert.Equal(["centralized", "decentralized", "sequential"], RunModes.Names);

    [Fact]
    public void An_unknown_name_fails_naming_the_flag_and_the_values_it_takes()
    {
        var error = Assert.Throws<UsageException>(() => RunModes.Parse("gossip"));
        Assert.Equal("--mode: expected one of centralized, decentralized, sequential, found 'gossip'", error.Message);
    }
}
