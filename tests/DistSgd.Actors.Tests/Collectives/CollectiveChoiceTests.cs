using Akka.Configuration;
using DistSgd.Actors.Collectives;
using DistSgd.Actors.Deployment;
using DistSgd.Actors.Protocol;
using DistSgd.Actors.Transport;
using DistSgd.Numerics.Compression;
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
        Assert.Equal("collective: allgather (auto for 4 peers on the direct transport, top-k gradients or local SGD)",
                     CollectiveChoice.Describe(Collective.AllGather, null, 4, PayloadTransport.Direct, compressed: true));
    }

    [Theory]
    [InlineData("ring", "distsgd.compress = \"topk:0.01\"", "distsgd.collective = ring sums dense parts: top-k gradients (distsgd.compress = topk:0.01)")]
    [InlineData("pairwise", "distsgd.compress = \"topk:0.01\"\ndistsgd.wire = bf16", "distsgd.collective = pairwise sums dense parts")]
    [InlineData("ring", "distsgd.sync-every = 4", "local SGD (distsgd.sync-every = 4) averages models with the all-gather")]
    [InlineData("ring", "distsgd.wire = fp16", "distsgd.collective = ring with distsgd.wire = fp16: the ring's partial sums")]
    public void An_all_reduce_refuses_top_k_local_sgd_and_the_ring_fp16_naming_the_keys(string collective, string hocon, string expected)
    {
        var config = ConfigurationFactory.ParseString($"distsgd.collective = {collective}\ndistsgd.transport = direct\n{hocon}").WithFallback(DistSgdConfig.ReferenceConfig);
        var error = Assert.Throws<ConfigurationException>(() => DistSgdSettings.Create(config));
        Assert.Contains(expected, error.Message);
    }

    [Theory]
    [InlineData("ring", "bf16")]
    [InlineData("pairwise", "bf16")]
    [InlineData("pairwise", "fp16")]
    public void An_all_reduce_carries_16_bit_parts(string collective, string wire)
    {
        var config = ConfigurationFactory.ParseString($"distsgd.collective = {collective}\ndistsgd.transport = direct\ndistsgd.wire = {wire}").WithFallback(DistSgdConfig.ReferenceConfig);
        Assert.Equal(CollectiveNames.Parse(collective), DistSgdSettings.Create(config).Collective);
        Assert.Null(CollectiveNames.Parse(collective)!.Value.Refusal(ShareEncoding.FromKeys($"wire={wire}"), 1));
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
