using Akka.Configuration;
using DistSgd.Actors.Collectives;
using DistSgd.Actors.Deployment;
using DistSgd.Actors.Protocol;
using DistSgd.Actors.Transport;
using DistSgd.Numerics.Compression;
using DistSgd.Numerics.Cost;
using DistSgd.Numerics.Training;

namespace DistSgd.Actors.Tests.Collectives;

public class CollectiveChoiceTests
{
    /// <summary>The default MLP's gradient (784-256-128-10: 235,146 values) in fp32.</summary>
    private const long Mlp = 940_584;

    [Theory]
    [InlineData(1, PayloadTransport.Direct, Collective.AllGather, Collective.AllGather)]
    [InlineData(2, PayloadTransport.Direct, Collective.AllGather, Collective.AllGather)]
    // At 1 Gbit/s the ring cuts its hops into segments and waits one round per phase, as pairwise does, and sums less (0140).
    [InlineData(3, PayloadTransport.Direct, Collective.Pairwise, Collective.Ring)]
    [InlineData(8, PayloadTransport.Direct, Collective.Pairwise, Collective.Ring)]
    [InlineData(16, PayloadTransport.Direct, Collective.Pairwise, Collective.Pairwise)]
    [InlineData(8, PayloadTransport.Akka, Collective.AllGather, Collective.AllGather)]
    public void Auto_picks_the_cost_model_s_fastest_for_the_default_mlp_on_direct_and_the_all_gather_on_akka(int peers, PayloadTransport transport, Collective fast,
                                                                                                               Collective gigabit)
    {
        foreach (var link in new[] { LinkRate.Unlimited, LinkRate.Parse("10gbit") })
            Assert.Equal(fast, CollectiveChoice.Pick(peers, transport, compressed: false, Mlp, link));
        Assert.Equal(gigabit, CollectiveChoice.Pick(peers, transport, compressed: false, Mlp, LinkRate.Parse("1gbit")));
    }

    [Fact]
    public void Auto_is_the_cost_model_s_choice_and_follows_the_model_s_size()
    {
        var constants = CollectiveChoice.Constants(Mlp);
        Assert.Equal(CostConstants.Measured.RoundSeconds, constants.RoundSeconds);   // a round as a step pays it, not the bare socket's alone
        Assert.True(constants.RoundSeconds > 0);
        for (int peers = 2; peers <= 16; peers++)
            Assert.Equal(CostModel.FastestCollective(constants, new ClusterShape(peers, LinkRate.Parse("1gbit"))),
                         CollectiveChoice.Pick(peers, PayloadTransport.Direct, compressed: false, Mlp, LinkRate.Parse("1gbit")));
        // A model of a few hundred parameters: a message's latency is everything, and the all-gather takes one round.
        Assert.Equal(Collective.AllGather, CollectiveChoice.Pick(3, PayloadTransport.Direct, compressed: false, 404 * 4, LinkRate.Unlimited));
    }

    [Fact]
    public void Auto_picks_the_all_gather_for_top_k_gradients()
    {
        Assert.Equal(Collective.AllGather, CollectiveChoice.Pick(8, PayloadTransport.Direct, compressed: true, Mlp, LinkRate.Unlimited));
        Assert.Equal("collective: allgather (auto for 4 peers: top-k gradients travel by all-gather)",
                     CollectiveChoice.Describe(Collective.AllGather, null, 4, PayloadTransport.Direct, compressed: true, Mlp, LinkRate.Unlimited));
    }

    [Theory]
    [InlineData("none", "none")]
    [InlineData("1gbit", "1gbit")]
    [InlineData("2.5gbit", "2.5gbit")]
    public void The_link_rate_setting_reads_tc_s_rates(string value, string expected)
    {
        var config = ConfigurationFactory.ParseString($"distsgd.link-rate = \"{value}\"").WithFallback(DistSgdConfig.ReferenceConfig);
        Assert.Equal(expected, (DistSgdSettings.Create(config).Link ?? LinkRate.Unlimited).ToString());
    }

    [Fact]
    public void A_bad_link_rate_is_refused_naming_the_key()
    {
        var config = ConfigurationFactory.ParseString("distsgd.link-rate = fast").WithFallback(DistSgdConfig.ReferenceConfig);
        var error = Assert.Throws<ConfigurationException>(() => DistSgdSettings.Create(config));
        Assert.Equal("distsgd.link-rate: expected none or a rate such as 100mbit, 1gbit, 25gbit, found 'fast'", error.Message);
    }

    [Theory]
    [InlineData("ring", "distsgd.compress = \"topk:0.01\"", "distsgd.collective = ring sums dense parts: top-k gradients (distsgd.compress = topk:0.01)")]
    [InlineData("pairwise", "distsgd.compress = \"topk:0.01\"\ndistsgd.wire = bf16", "distsgd.collective = pairwise sums dense parts")]
    [InlineData("ring", "distsgd.wire = fp16", "distsgd.collective = ring with distsgd.wire = fp16: the ring's partial sums")]
    [InlineData("ring", "distsgd.wire = fp16\ndistsgd.sync-every = 4", "distsgd.collective = ring with distsgd.wire = fp16: the ring's partial sums")]
    public void An_all_reduce_refuses_top_k_and_the_ring_fp16_naming_the_keys(string collective, string hocon, string expected)
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
        Assert.Null(CollectiveNames.Parse(collective)!.Value.Refusal(ShareEncoding.FromKeys($"wire={wire}")));
    }

    [Theory]
    [InlineData("ring", "fp32", 2)]
    [InlineData("ring", "bf16", 8)]
    [InlineData("pairwise", "fp32", 4)]
    [InlineData("pairwise", "fp16", 3)]
    public void An_all_reduce_carries_local_sgd_s_averaging_steps(string collective, string wire, int syncEvery)
    {
        // Decision 0136: the averaging step's dense changes travel as a gradient does, in the same 16-bit parts.
        var config = ConfigurationFactory.ParseString($"distsgd.collective = {collective}\ndistsgd.transport = direct\ndistsgd.wire = {wire}\n" +
                                                      $"distsgd.sync-every = {syncEvery}").WithFallback(DistSgdConfig.ReferenceConfig);
        var settings = DistSgdSettings.Create(config);
        Assert.Equal(CollectiveNames.Parse(collective), settings.Collective);
        Assert.Equal(syncEvery, settings.SyncEvery);
    }

    [Fact]
    public void The_start_line_says_whether_auto_chose()
    {
        Assert.Equal("collective: pairwise (auto: the cost model's fastest for 3 peers, 940,584 bytes per gradient, link 1gbit (distsgd.link-rate / --link-rate))",
                     CollectiveChoice.Describe(Collective.Pairwise, null, 3, PayloadTransport.Direct, compressed: false, Mlp, LinkRate.Parse("1gbit")));
        Assert.Equal("collective: allgather (auto: the only one on the akka transport)",
                     CollectiveChoice.Describe(Collective.AllGather, null, 3, PayloadTransport.Akka, compressed: false, Mlp, LinkRate.Unlimited));
        Assert.Equal("collective: ring (distsgd.collective / --collective)",
                     CollectiveChoice.Describe(Collective.Ring, Collective.Ring, 3, PayloadTransport.Direct, compressed: false, Mlp, LinkRate.Unlimited));
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
