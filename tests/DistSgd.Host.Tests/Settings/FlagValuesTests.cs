using DistSgd.Host.Settings;

namespace DistSgd.Host.Tests.Settings;

/// <summary>The command-line names of the modes (--mode) and of a node's roles (--roles).</summary>
public class FlagValuesTests
{
    [Theory]
    [InlineData(RunMode.Sequential, "sequential")]
    [InlineData(RunMode.Centralized, "centralized")]
    [InlineData(RunMode.Decentralized, "decentralized")]
    public void A_mode_reads_back_from_its_name(RunMode mode, string name) =>
        Assert.Equal((name, mode), (mode.Name(), RunModes.Parse(name)));

    [Theory]
    [InlineData(NodeRole.Master, "master")]
    [InlineData(NodeRole.Worker, "worker")]
    [InlineData(NodeRole.Peer, "peer")]
    public void A_role_reads_back_from_its_name(NodeRole role, string name) =>
        Assert.Equal((name, role), (role.Name(), NodeRoles.Parse(name)));

    [Fact]
    public void The_names_are_listed_as_the_flags_have_always_listed_them()
    {
        Assert.Equal(["centralized", "decentralized", "sequential"], RunModes.Names);
        Assert.Equal(["master", "worker", "peer"], NodeRoles.Names);
        Assert.Equal("worker,master", NodeRoles.Describe([NodeRole.Worker, NodeRole.Master]));
    }

    [Fact]
    public void An_unknown_name_fails_naming_the_flag_and_the_values_it_takes()
    {
        Assert.Equal("--mode: expected one of centralized, decentralized, sequential, found 'gossip'",
                     Assert.Throws<UsageException>(() => RunModes.Parse("gossip")).Message);
        Assert.Equal("--roles: expected comma-separated roles among master, worker, peer, found 'leader'",
                     Assert.Throws<UsageException>(() => NodeRoles.Parse("leader")).Message);
    }
}
