using DistSgd.Numerics.Cost;
using DistSgd.Numerics.Training;

namespace DistSgd.Numerics.Tests.Cost;

public class CostModelTests
{
    /// <summary>G = 1000 bytes, C = 1 s, α = 0.5 s, no sum or update cost: the formulas by hand.</summary>
    private static readonly CostConstants Simple = new()
    {
        GradientBytes = 1000,
        BatchPerNode = 10,
        ComputeSeconds = 1,
        UpdateSecondsPerByte = 0,
        SumSecondsPerByte = 0,
        MessageSeconds = 0.5,
        LoopbackSecondsPerByte = 0,
    };

    /// <summary>A link on which a payload byte costs exactly 1 ms: G = 1000 bytes takes 1 s.</summary>
    private static readonly LinkRate MillisecondPerByte = LinkRate.FromBitsPerSecond(8000 * CostModel.EthernetFraming);

    private static ClusterShape Shape(int nodes, LinkRate? link = null, int sharedCores = 0) => new(nodes, link ?? MillisecondPerByte, sharedCores);

    [Fact]
    public void Four_nodes_cost_what_the_formulas_say_by_hand()
    {
        // centralized: 2α + 2·N·G·β + C = 1 + 8 + 1 (θ for the 4 workers shares the master's link, then the gradients do)
        Assert.Equal(10.0, CostModel.Centralized(Simple, Shape(4)).TotalSeconds, 9);
        // all-gather: α + (N−1)·G·β + C = 0.5 + 3 + 1 (the three shares leave at once: one latency)
        Assert.Equal(4.5, CostModel.Decentralized(Simple, Collective.AllGather, Shape(4)).TotalSeconds, 9);
        // ring: 2(N−1)·(α + G/N·β) + C = 6·0.75 + 1
        Assert.Equal(5.5, CostModel.Decentralized(Simple, Collective.Ring, Shape(4)).TotalSeconds, 9);
        // pairwise: 2·(α + (N−1)/N·G·β) + C = 2·1.25 + 1
        Assert.Equal(3.5, CostModel.Decentralized(Simple, Collective.Pairwise, Shape(4)).TotalSeconds, 9);
        Assert.Equal(1.0, CostModel.Sequential(Simple).TotalSeconds, 9);
        Assert.Equal(40, CostModel.Centralized(Simple, Shape(4)).SamplesPerStep);
        Assert.Equal(40 / 3.5, CostModel.Decentralized(Simple, Collective.Pairwise, Shape(4)).SamplesPerSecond, 9);
    }

    [Fact]
    public void Sums_and_the_update_cost_what_each_node_adds()
    {
        var c = Simple with { SumSecondsPerByte = 1e-3, UpdateSecondsPerByte = 2e-3 };
        // centralized: the master sums N gradients (N·G·γ = 4 s) and updates (G·δ = 2 s)
        Assert.Equal(6.0, CostModel.Centralized(c, Shape(4)).ReduceSeconds, 9);
        Assert.Equal(6.0, CostModel.Decentralized(c, Collective.AllGather, Shape(4)).ReduceSeconds, 9);
        // ring: (N−1)/N·G·γ = 0.75; pairwise: the owner sums N slices of G/N = G·γ = 1
        Assert.Equal(2.75, CostModel.Decentralized(c, Collective.Ring, Shape(4)).ReduceSeconds, 9);
        Assert.Equal(3.0, CostModel.Decentralized(c, Collective.Pairwise, Shape(4)).ReduceSeconds, 9);
        Assert.Equal(3.0, CostModel.Sequential(c).TotalSeconds, 9);
    }

    [Theory]
    [InlineData(2, 1000)]
    [InlineData(3, 1333.3333333)]
    [InlineData(4, 1500)]
    [InlineData(64, 1968.75)]
    public void An_all_reduce_sends_two_N_minus_1_over_N_gradients_per_node(int nodes, double bytes)
    {
        Assert.Equal(bytes, CostModel.BytesSentPerNode(Collective.Ring, nodes, 1000), 6);
        Assert.Equal(bytes, CostModel.BytesSentPerNode(Collective.Pairwise, nodes, 1000), 6);
        Assert.Equal((nodes - 1) * 1000.0, CostModel.BytesSentPerNode(Collective.AllGather, nodes, 1000), 6);
        Assert.Equal(bytes, CostModel.Decentralized(Simple, Collective.Ring, Shape(nodes)).BytesSentPerNode, 6);
        Assert.Equal(nodes * 1000.0, CostModel.Centralized(Simple, Shape(nodes)).BytesSentPerNode, 6);
    }

    [Theory]
    [InlineData("1gbit")]
    [InlineData("10gbit")]
    [InlineData("none")]
    public void A_step_never_gets_cheaper_with_more_nodes(string rate)
    {
        var link = LinkRate.Parse(rate);
        foreach (int cores in new[] { 0, 2 })
        {
            var costs = new List<Func<int, double>>
            {
                n => CostModel.Centralized(CostConstants.Measured, Shape(n, link, cores)).TotalSeconds,
            };
            costs.AddRange(CostModel.Collectives.Select(c => (Func<int, double>)(n => CostModel.Decentralized(CostConstants.Measured, c, Shape(n, link, cores)).TotalSeconds)));
            foreach (var cost in costs)
                for (int n = 1; n < 128; n++)
                    Assert.True(cost(n + 1) >= cost(n), $"{rate}, {cores} cores: {n + 1} nodes {cost(n + 1)} s < {n} nodes {cost(n)} s");
            // The master's and the all-gather's steps grow with every node: strictly.
            Assert.True(costs[0](9) > costs[0](8));
            Assert.True(costs[1](9) > costs[1](8));
        }
    }

    [Fact]
    public void One_peer_or_one_worker_pays_no_messages_between_peers()
    {
        foreach (var collective in CostModel.Collectives)
        {
            var one = CostModel.Decentralized(Simple, collective, Shape(1));
            Assert.Equal(0, one.CommunicationSeconds);
            Assert.Equal(0, one.BytesSentPerNode);
            Assert.Equal(CostModel.Sequential(Simple).TotalSeconds, one.TotalSeconds, 12);
        }
    }

    [Fact]
    public void Nodes_on_shared_cores_compute_slower_when_they_compute_at_once()
    {
        // 4 peers on 2 cores: all compute at once, C × 2
        Assert.Equal(2.0, CostModel.Decentralized(Simple, Collective.AllGather, Shape(4, sharedCores: 2)).ComputeSeconds, 9);
        Assert.Equal(1.0, CostModel.Decentralized(Simple, Collective.AllGather, Shape(2, sharedCores: 2)).ComputeSeconds, 9);
        // θ reaches the 4 workers together (its copies share the master's link): they compute at once too.
        Assert.Equal(2.0, CostModel.Centralized(Simple, Shape(4, sharedCores: 2)).ComputeSeconds, 9);
        Assert.Equal(4.0, CostModel.Centralized(Simple, Shape(4, LinkRate.Unlimited, sharedCores: 1)).ComputeSeconds, 9);
    }

    [Fact]
    public void On_shared_cores_a_round_pays_kappa_for_each_hand_off_the_cores_take_in_it()
    {
        // κ = 0.25 s, 4 nodes on 2 cores: a round in which each node takes m messages pays α + κ·max(1, 4·m/2).
        var c = Simple with { RoundSeconds = 0.25 };
        var shared = Shape(4, sharedCores: 2);
        Assert.Equal(0.5 + 0.25 * 6, CostModel.RoundSeconds(c, shared, handled: 3), 12);
        // all-gather: one round of 3 shares each (h = 6), then 3·G·β = 3 s on the link
        Assert.Equal(2.0 + 3.0, CostModel.Decentralized(c, Collective.AllGather, shared).CommunicationSeconds, 9);
        // pairwise: two rounds of 3 slices each (h = 6), each with (N−1)/N·G·β = 0.75 s
        Assert.Equal(2 * (2.0 + 0.75), CostModel.Decentralized(c, Collective.Pairwise, shared).CommunicationSeconds, 9);
        // ring (whole chunks): 6 hops of one chunk each (h = 2), G/N·β = 0.25 s a hop
        Assert.Equal(6 * (1.0 + 0.25), CostModel.Decentralized(c, Collective.Ring, shared).CommunicationSeconds, 9);
        // centralized: θ to each worker, then each gradient to the master (h = 2 each), 2·N·G·β = 8 s
        Assert.Equal(2 * 1.0 + 8.0, CostModel.Centralized(c, shared).CommunicationSeconds, 9);
        // 2 nodes on 2 cores, or a machine per node: one hand-off a core, κ once a round.
        Assert.Equal(0.75, CostModel.RoundSeconds(c, Shape(2, sharedCores: 2), handled: 1), 12);
        Assert.Equal(0.75, CostModel.RoundSeconds(c, Shape(4), handled: 3), 12);
        // 4 nodes on 4 cores: the all-gather's 3 shares each are 3 hand-offs a core (h = 3).
        Assert.Equal(0.5 + 0.75 + 3.0, CostModel.Decentralized(c, Collective.AllGather, Shape(4, sharedCores: 4)).CommunicationSeconds, 9);
    }

    [Fact]
    public void A_ring_cut_into_segments_pays_one_round_per_phase_and_its_bytes()
    {
        var c = CostConstants.Measured;
        var gbit = LinkRate.Parse("1gbit");
        double beta = gbit.SecondsPerByte * CostModel.EthernetFraming;
        Assert.True(CostModel.RingIsSegmented(c, 4, gbit));
        Assert.False(CostModel.RingIsSegmented(c, 4, LinkRate.Unlimited));
        Assert.Equal(2 * CostModel.RoundSeconds(c) + 2 * 3.0 / 4 * c.GradientBytes * beta,
                     CostModel.Decentralized(c, Collective.Ring, Shape(4, gbit)).CommunicationSeconds, 12);
        // Whole chunks on loopback: a round per hop.
        double loopback = c.LoopbackSecondsPerByte;
        Assert.Equal(6 * (CostModel.RoundSeconds(c) + c.GradientBytes / 4.0 * loopback),
                     CostModel.Decentralized(c, Collective.Ring, Shape(4, LinkRate.Unlimited)).CommunicationSeconds, 12);
    }

    [Theory]
    // N jobs started together on K cores take ⌈N/K⌉ turns, not N/K: the third of 3 gradients on 2 cores runs after one
    // of the first two, while the other core idles.
    [InlineData(1, 2, 1)]
    [InlineData(2, 2, 1)]
    [InlineData(3, 2, 2)]
    [InlineData(4, 2, 2)]
    [InlineData(5, 2, 3)]
    [InlineData(3, 4, 1)]
    [InlineData(5, 1, 5)]
    [InlineData(64, 0, 1)]   // a machine per node
    public void Nodes_on_shared_cores_run_in_whole_turns(int nodes, int cores, int turns)
    {
        Assert.Equal(turns, CostModel.Turns(nodes, cores));
        Assert.Equal(turns, CostModel.Decentralized(Simple, Collective.Ring, Shape(nodes, sharedCores: cores)).ComputeSeconds, 9);
        Assert.Equal(turns, CostModel.Centralized(Simple, Shape(nodes, sharedCores: cores)).ComputeSeconds, 9);
    }

    [Fact]
    public void Peers_on_shared_cores_sum_and_update_in_turns_and_the_master_alone()
    {
        var c = Simple with { SumSecondsPerByte = 1e-3, UpdateSecondsPerByte = 2e-3 };
        // 3 peers on 2 cores: every peer's sum and update (pairwise: G·γ + G·δ = 3 s) in 2 turns
        Assert.Equal(6.0, CostModel.Decentralized(c, Collective.Pairwise, Shape(3, sharedCores: 2)).ReduceSeconds, 9);
        Assert.Equal(3.0, CostModel.Decentralized(c, Collective.Pairwise, Shape(3)).ReduceSeconds, 9);
        Assert.Equal(3.0, CostModel.Decentralized(c, Collective.Pairwise, Shape(2, sharedCores: 2)).ReduceSeconds, 9);
        // The master sums N·G·γ and updates G·δ alone: 5 s however many cores the workers share.
        Assert.Equal(5.0, CostModel.Centralized(c, Shape(3, sharedCores: 2)).ReduceSeconds, 9);
        Assert.Throws<ArgumentOutOfRangeException>(() => CostModel.Turns(0, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => CostModel.Turns(3, -1));
    }

    [Fact]
    public void Nodes_on_shared_cores_pay_the_network_stack_for_every_byte_any_of_them_sends()
    {
        var c = Simple with { NetworkSecondsPerByte = 1e-3, LoopbackSecondsPerByte = 5e-3 };
        // Unlimited links on 2 cores: no link time (the loopback's β is that CPU), ν·bytes/2 instead.
        // all-gather: 4 peers send 3·G each = 12,000 bytes → 6 s, + α
        Assert.Equal(6.5, CostModel.Decentralized(c, Collective.AllGather, Shape(4, LinkRate.Unlimited, sharedCores: 2)).CommunicationSeconds, 9);
        // pairwise: 4 · 2·3/4·G = 6,000 bytes → 3 s, + 2α
        Assert.Equal(4.0, CostModel.Decentralized(c, Collective.Pairwise, Shape(4, LinkRate.Unlimited, sharedCores: 2)).CommunicationSeconds, 9);
        // centralized: the master sends N·G and the workers N·G = 8,000 bytes → 4 s, + 2α
        Assert.Equal(5.0, CostModel.Centralized(c, Shape(4, LinkRate.Unlimited, sharedCores: 2)).CommunicationSeconds, 9);
        // A 1 ms/byte link on shared cores: the link's time (3 s for the all-gather) and the stack's.
        Assert.Equal(9.5, CostModel.Decentralized(c, Collective.AllGather, Shape(4, sharedCores: 2)).CommunicationSeconds, 9);
        // A machine per node: no shared stack; an unlimited link costs the loopback's β.
        Assert.Equal(0.5 + 3 * 5.0, CostModel.Decentralized(c, Collective.AllGather, Shape(4, LinkRate.Unlimited)).CommunicationSeconds, 9);
    }

    [Fact]
    public void Every_round_pays_kappa_on_top_of_alpha_in_every_mode_and_collective()
    {
        // κ = 0.25 s: a round costs α + κ = 0.75 s; the rounds are those of Four_nodes_cost_what_the_formulas_say_by_hand.
        var withKappa = Simple with { RoundSeconds = 0.25 };
        Assert.Equal(0.75, CostModel.RoundSeconds(withKappa), 12);
        Assert.Equal(10.0 + 2 * 0.25, CostModel.Centralized(withKappa, Shape(4)).TotalSeconds, 9);
        Assert.Equal(4.5 + 1 * 0.25, CostModel.Decentralized(withKappa, Collective.AllGather, Shape(4)).TotalSeconds, 9);
        Assert.Equal(5.5 + 6 * 0.25, CostModel.Decentralized(withKappa, Collective.Ring, Shape(4)).TotalSeconds, 9);
        Assert.Equal(3.5 + 2 * 0.25, CostModel.Decentralized(withKappa, Collective.Pairwise, Shape(4)).TotalSeconds, 9);
        // One node sends nothing: no round.
        Assert.Equal(1.0, CostModel.Decentralized(withKappa, Collective.Ring, Shape(1)).TotalSeconds, 9);
        // Rounds that cost more tip the choice to the collective with fewer of them.
        Assert.Equal(Collective.Pairwise, CostModel.FastestCollective(Simple, Shape(8)));
        Assert.Equal(Collective.AllGather, CostModel.FastestCollective(Simple with { RoundSeconds = 10 }, Shape(8)));
    }

    [Theory]
    // The default MLP (235,146 values), float32, with this project's constants: a chunk's time on the link against a round's α + κ.
    [InlineData(2, "none", 117_573)]     // 0.14 ms of loopback β per chunk: whole
    [InlineData(4, "none", 58_787)]
    [InlineData(2, "10gbit", 117_573)]   // 0.39 ms ≤ 0.40 ms: whole
    [InlineData(3, "10gbit", 78_382)]
    [InlineData(2, "1gbit", AllReduce.RingSegmentValues)]   // 3.9 ms a chunk: pipelined
    [InlineData(4, "1gbit", AllReduce.RingSegmentValues)]
    [InlineData(64, "1gbit", 3_675)]     // 15 KB, 0.12 ms: whole
    [InlineData(1, "none", 235_146)]
    public void The_ring_sends_whole_chunks_unless_a_chunk_s_time_on_the_link_exceeds_a_round(int nodes, string link, int expected)
    {
        Assert.Equal(expected, CostModel.RingPartValues(CostConstants.Measured, 235_146, sizeof(float), nodes, LinkRate.Parse(link)));
    }

    [Fact]
    public void The_ring_s_part_rule_follows_the_wire_s_bytes_and_the_round_s_cost()
    {
        var link = LinkRate.Parse("1gbit");   // 8.4 ns a payload byte
        // 46,000 values in 2 chunks of 23,000: 0.77 ms at 4 bytes, 0.38 ms at 2 (bf16), against α + κ = 0.40 ms.
        Assert.Equal(AllReduce.RingSegmentValues, CostModel.RingPartValues(CostConstants.Measured, 46_000, 4, 2, link));
        Assert.Equal(23_000, CostModel.RingPartValues(CostConstants.Measured, 46_000, 2, 2, link));
        Assert.Equal(AllReduce.RingSegmentValues, CostModel.RingPartValues(CostConstants.Measured with { RoundSeconds = 0.1e-3 }, 46_000, 2, 2, link));
        Assert.Equal(1, CostModel.RingPartValues(CostConstants.Measured, 0, 4, 3, link));   // an empty vector: one empty part
        Assert.Throws<ArgumentOutOfRangeException>(() => CostModel.RingPartValues(CostConstants.Measured, 100, 4, 0, link));
        Assert.Throws<ArgumentOutOfRangeException>(() => CostModel.RingPartValues(CostConstants.Measured, 100, 0, 2, link));
    }

    [Fact]
    public void An_unlimited_link_costs_what_the_loopback_costs_and_a_slow_link_at_least_that()
    {
        var c = Simple with { LoopbackSecondsPerByte = 2e-3 };
        Assert.Equal(2e-3, CostModel.SecondsPerByte(c, LinkRate.Unlimited), 12);
        Assert.Equal(2e-3, CostModel.SecondsPerByte(c, LinkRate.Parse("10gbit")), 12);
        Assert.Equal(8e-9 * CostModel.EthernetFraming, CostModel.SecondsPerByte(Simple, LinkRate.Parse("1gbit")), 1e-20);
    }

    [Fact]
    public void The_fastest_collective_is_the_all_gather_for_two_peers_with_costly_messages_and_an_all_reduce_for_many()
    {
        var costlyMessages = Simple with { MessageSeconds = 10 };
        Assert.Equal(Collective.AllGather, CostModel.FastestCollective(costlyMessages, Shape(2)));
        Assert.Equal(Collective.Pairwise, CostModel.FastestCollective(Simple, Shape(8)));
        // Ties go to the simplest: with no message cost and no link cost, all three cost C.
        var free = Simple with { MessageSeconds = 0 };
        Assert.Equal(Collective.AllGather, CostModel.FastestCollective(free, Shape(4, LinkRate.Unlimited)));
        var shape = Shape(16, LinkRate.Parse("1gbit"));
        var fastest = CostModel.FastestCollective(CostConstants.Measured, shape);
        Assert.All(CostModel.Collectives, c => Assert.True(
            CostModel.Decentralized(CostConstants.Measured, fastest, shape).TotalSeconds <= CostModel.Decentralized(CostConstants.Measured, c, shape).TotalSeconds));
    }

    [Fact]
    public void Scaling_stops_at_the_fewest_nodes_within_a_tenth_of_the_best()
    {
        // samples/s = min(n, 5) · 100: grows until 5 nodes, flat after
        StepCost Capped(int n) => new(1, 0, 0, Math.Min(n, 5) * 100, 0);
        Assert.Equal(5, CostModel.StopsScalingAt(Capped));
        // samples/s = 100·n / (1 + n/4) = 400·n / (4 + n) → 400: the best up to 1024 is 398.4, and 90 % of it,
        // 358.6, is first reached at n = 35 (400·35/39 = 359.0; n = 34: 357.9)
        StepCost Saturating(int n) => new(1 + n / 4.0, 0, 0, 100 * n, 0);
        Assert.Equal(35, CostModel.StopsScalingAt(Saturating));
        // A shrinking all-gather stops at its peak.
        StepCost Shrinking(int n) => new(n == 2 ? 1 : n, 0, 0, n, 0);
        Assert.Equal(2, CostModel.StopsScalingAt(Shrinking));
        // One node faster than any cluster (it pays no messages): the cluster's own peak counts.
        StepCost OneIsFastest(int n) => new(n == 1 ? 0.01 : n, 0, 0, n, 0);
        Assert.Equal(2, CostModel.StopsScalingAt(OneIsFastest));
        StepCost Linear(int n) => new(1, 0, 0, n * 100, 0);
        Assert.Null(CostModel.StopsScalingAt(Linear));
        // The master at 1 Gbit/s saturates at b / (G·β): it stops early; the all-reduce's step tends to a constant: it does not.
        var gbit = LinkRate.Parse("1gbit");
        int? master = CostModel.StopsScalingAt(n => CostModel.Centralized(CostConstants.Measured, Shape(n, gbit)));
        int? allReduce = CostModel.StopsScalingAt(n => CostModel.Decentralized(CostConstants.Measured, Collective.Pairwise, Shape(n, gbit)));
        Assert.NotNull(master);
        Assert.True(master < 16, $"the master stops scaling at {master}");
        Assert.Null(allReduce);
    }

    [Fact]
    public void Fewer_than_one_node_is_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => CostModel.Centralized(Simple, Shape(0)));
        Assert.Throws<ArgumentOutOfRangeException>(() => CostModel.Decentralized(Simple, Collective.Ring, Shape(0)));
        Assert.Throws<ArgumentOutOfRangeException>(() => CostModel.BytesSentPerNode(Collective.Ring, 0, 1000));
    }
}

public class LinkRateTests
{
    [Theory]
    [InlineData("1gbit", 1e9)]
    [InlineData("10gbit", 1e10)]
    [InlineData("2.5gbit", 2.5e9)]
    [InlineData("100mbit", 1e8)]
    [InlineData("64kbit", 64e3)]
    [InlineData(" 1GBIT ", 1e9)]
    public void A_rate_is_read_as_tc_writes_it(string text, double bits)
    {
        var rate = LinkRate.Parse(text);
        Assert.Equal(bits, rate.BitsPerSecond);
        Assert.Equal(8 / bits, rate.SecondsPerByte, 1e-20);
        Assert.Equal(rate, LinkRate.Parse(rate.ToString()));
    }

    [Theory]
    [InlineData("none")]
    [InlineData("unlimited")]
    public void None_is_unlimited(string text)
    {
        var rate = LinkRate.Parse(text);
        Assert.True(rate.IsUnlimited);
        Assert.Equal(0, rate.SecondsPerByte);
        Assert.Equal("none", rate.ToString());
    }

    [Theory]
    [InlineData("")]
    [InlineData("fast")]
    [InlineData("1gb")]
    [InlineData("0mbit")]
    [InlineData("-1gbit")]
    [InlineData("gbit")]
    [InlineData("1e999gbit")]
    public void Anything_else_is_refused_naming_what_was_found(string text)
    {
        Assert.False(LinkRate.TryParse(text, out _));
        var error = Assert.Throws<ArgumentException>(() => LinkRate.Parse(text, "-r"));
        Assert.Contains($"found '{text}'", error.Message);
        Assert.StartsWith("-r:", error.Message);
    }
}

public class CostConstantsTests
{
    [Fact]
    public void Constants_survive_a_round_trip_through_json()
    {
        var read = CostConstants.FromJson(CostConstants.Measured.ToJson(), "c.json");
        Assert.Equal(CostConstants.Measured, read);
    }

    [Theory]
    [InlineData("{", "c.json: expected the JSON object")]
    [InlineData("null", "found null")]
    [InlineData("{\"GradientBytes\": 0, \"BatchPerNode\": 64, \"ComputeSeconds\": 1, \"UpdateSecondsPerByte\": 0, \"SumSecondsPerByte\": 0, \"MessageSeconds\": 0, \"LoopbackSecondsPerByte\": 0}",
                "c.json: GradientBytes: expected > 0, found 0")]
    [InlineData("{\"GradientBytes\": 10, \"BatchPerNode\": 64, \"ComputeSeconds\": -1, \"UpdateSecondsPerByte\": 0, \"SumSecondsPerByte\": 0, \"MessageSeconds\": 0, \"LoopbackSecondsPerByte\": 0}",
                "c.json: ComputeSeconds: expected a finite number ≥ 0, found -1")]
    [InlineData("{\"GradientBytes\": 10, \"BatchPerNode\": 64, \"ComputeSeconds\": 1, \"UpdateSecondsPerByte\": 0, \"SumSecondsPerByte\": 0, \"MessageSeconds\": 0, \"RoundSeconds\": -0.001, \"LoopbackSecondsPerByte\": 0}",
                "c.json: RoundSeconds: expected a finite number ≥ 0, found -0.001")]
    [InlineData("{\"GradientBytes\": 10}", "c.json: expected the JSON object")]
    public void A_bad_file_is_refused_naming_the_file_and_the_field(string json, string message)
    {
        var error = Assert.Throws<ArgumentException>(() => CostConstants.FromJson(json, "c.json"));
        Assert.Contains(message, error.Message);
    }
}
