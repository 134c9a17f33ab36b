using Akka.Configuration;
using DistSgd.Actors.Collectives;
using DistSgd.Actors.Deployment;
using DistSgd.Actors.Protocol;
using DistSgd.Actors.Transport;
using DistSgd.Numerics.Training;

namespace DistSgd.Actors.Tests.Collectives;

public class CollectiveChoiceTests
{
    [Theory]
    [InlineData(1, PayloadTransport.Direct, Collective.AllGather)]
    [InlineData(2, PayloadTransport.Direct, Collective.AllGather)]
    [InlineData(3, PayloadTransport.Direct, Collective.Pairwise)]
    [InlineData(8, PayloadTransport.Direct, Collective.Pairwise)]
    [InlineData(8, PayloadTransport.Akka, Collective.AllGather)]
    public void Auto_picks_the_all_gather_for_two_peers_or_on_akka_and_pairwise_beyond(int peers, PayloadTransport transport, Collective expected) =>
        Assert.Equal(expected, CollectiveChoice.Pick(peers, transport));

    [Fact]
    public void Auto_picks_the_all_gather_for_compressed_gradients_or_local_sgd()
    {
        Assert.Equal(Collective.AllGather, CollectiveChoice.Pick(8, PayloadTransport.Direct, compressed: true));
        Assert.Equal("collective: allgather (auto for 4 peers on the direct transport, compressed gradients)",
                     CollectiveChoice.Describe(Collective.AllGather, null, 4, PayloadTransport.Direct, compressed: true));
    }

    [Theory]
    [InlineData("distsgd.wire = bf16")]
    [InlineData("distsgd.compress = \"topk:0.01\"")]
    [InlineData("distsgd.sync-every = 4")]
    public void An_all_reduce_refuses_compressed_gradients_and_local_sgd_naming_the_keys(string hocon)
    {
        var config = ConfigurationFactory.ParseString($"distsgd.collective = ring\ndistsgd.transport = direct\n{hocon}").WithFallback(DistSgdConfig.ReferenceConfig);
        var error = Assert.Throws<ConfigurationException>(() => DistSgdSettings.Create(config));
        Assert.Contains("distsgd.collective = ring sums float32 parts along the way", error.Message);
    }

    [Fact]
    public void The_start_line_says_whether_auto_chose()
    {
        Assert.Equal("collective: pairwise (auto for 3 peers on the direct transport)", CollectiveChoice.Describe(Collective.Pairwise, null, 3, PayloadTransport.Direct));
        Assert.Equal("collective: ring (distsgd.collective / --collective)", CollectiveChoice.Describe(Collective.Ring, Collective.Ring, 3, PayloadTransport.Direct));
    }

    [Theory]
    [InlineData("auto", null)]
    [InlineData("allgather", Collective.AllGather)]
    [InlineData("ring", Collective.Ring)]
    [InlineData("pairwise", Collective.Pairwise)]
    public void The_setting_reads_every_name(string name, Collective? expected)
    {
        var config = ConfigurationFactory.ParseString($"distsgd.collective = {name}\ndistsgd.transport = direct").WithFallback(DistSgdConfig.ReferenceConfig);
        Assert.Equal(expected, DistSgdSettings.Create(config).Collective);
        if (expected is { } collective)
            Assert.Equal(collective, CollectiveNames.Parse(collective.Name()));
    }

    [Fact]
    public void Peers_with_different_collectives_name_the_difference()
    {
        var spec = new Numerics.Models.ModelSpec(Numerics.Models.ModelKind.Mlp, 4, 3, [5]);
        var ring = new RunPlan("r", spec, 8, 1, 2, 100, 7, "", Collective.Ring);
        Assert.Equal(["collective: ring here vs pairwise there"], ring.Differences(ring with { Collective = Collective.Pairwise }));
    }
}
