using DistSgd.Numerics.Training;

namespace DistSgd.Numerics.Cost;

/// <summary>Where the nodes of a predicted run live.</summary>
/// <param name="Nodes">N: workers (centralized) or peers (decentralized); 1 for sequential.</param>
/// <param name="Link">Each node's link rate, each way; <see cref="LinkRate.Unlimited"/> = loopback.</param>
/// <param name="SharedCores">Cores every node's compute shares (all nodes on one machine, as on the emulated network
/// here); 0 = each node has a machine of its own.</param>
public readonly record struct ClusterShape(int Nodes, LinkRate Link, int SharedCores = 0);

/// <summary>A predicted step: its parts in seconds and the busiest node's bytes sent.</summary>
/// <param name="ComputeSeconds">The forward and backward pass, slowed by nodes computing at once on shared cores.</param>
/// <param name="CommunicationSeconds">Messages on the critical path: α per latency paid, β per byte on the busiest link.</param>
/// <param name="ReduceSeconds">Summing the shares and the optimizer update.</param>
/// <param name="SamplesPerStep">N·b.</param>
/// <param name="BytesSentPerNode">Bytes the busiest node sends per step (the master's, or any peer's).</param>
public sealed record StepCost(double ComputeSeconds, double CommunicationSeconds, double ReduceSeconds, int SamplesPerStep, double BytesSentPerNode)
{
    public double TotalSeconds => ComputeSeconds + CommunicationSeconds + ReduceSeconds;

    public double SamplesPerSecond => SamplesPerStep / TotalSeconds;
}

/// <summary>
/// The α–β cost of one synchronous SGD step (Hockney's model, as in Thakur, Rabenseifner and Gropp 2005): a message
/// of n bytes costs α + n·β, α paid once per hop that must wait for the one before, and with it κ, what this program's
/// actors and data-plane reader threads add to each round (<see cref="CostConstants.RoundSeconds"/>; written α below for
/// the two together) (messages sent at once overlap
/// their latencies, not their bytes), β = 8 / link rate × Ethernet framing (or the loopback's own cost when the link is
/// unlimited, whichever is larger); summing n bytes costs n·γ, the update G·δ, the gradient C. Links are full duplex:
/// what a node sends and what it receives do not slow each other; messages sent at once share the link. Per step,
/// with N nodes and G gradient bytes:
/// <list type="bullet">
/// <item>sequential: C + G·δ;</item>
/// <item>centralized: the master hands θ for the N workers to its sockets at once (their buffers hold a whole θ), so
/// the N copies share its link and all arrive N·G·β later; the workers compute together and their gradients share the
/// link back: 2α + 2·N·G·β + C + N·G·γ + G·δ (the master's link carries N·G each way);</item>
/// <item>all-gather: every peer sends its share to the N−1 others at once, so one latency and (N−1)·G on its link:
/// α + (N−1)·G·β + C + N·G·γ + G·δ;</item>
/// <item>ring: 2·(N−1)·(α + G/N·β) + C + (N−1)/N·G·γ + G·δ; with its hops cut into segments (a slow link,
/// <see cref="RingIsSegmented"/>) the hops overlap and, while a round is shorter than the rest of a chunk on the link,
/// only each phase's start waits: 2·α + 2·(N−1)/N·G·β + …;</item>
/// <item>pairwise: the N−1 slices of a round travel at once, so one latency per round: 2·(α + (N−1)/N·G·β) + C + G·γ + G·δ.</item>
/// </list>
/// On shared cores a round's α grows with the messages the cores take in it (<see cref="RoundSeconds(CostConstants, ClusterShape, int)"/>).
/// Ring and pairwise move 2·(N−1)/N·G bytes per node per step, nearly flat in N. <b>Nodes on shared cores</b> (all on
/// one machine, as on the emulated network: <see cref="ClusterShape.SharedCores"/> = K) compute at once, and the cores
/// run one node's gradient after another in whole <see cref="Turns"/>: C × ⌈N / K⌉; so do the peers' sums and updates,
/// which every peer does at once (the master's are its own); and the machine's network stack moves every byte any node
/// sends out of the same K cores: the step adds ν·(bytes all nodes send)/K
/// (<see cref="CostConstants.NetworkSecondsPerByte"/>), while β is the link's rate alone (the loopback's cost is that CPU).
/// </summary>
public static class CostModel
{
    /// <summary>The collectives in the order a tie is broken (the simplest first).</summary>
    public static readonly IReadOnlyList<Collective> Collectives = [Collective.AllGather, Collective.Pairwise, Collective.Ring];

    /// <summary>One process, one model, batch b.</summary>
    public static StepCost Sequential(CostConstants c) =>
        new(c.ComputeSeconds, 0, c.GradientBytes * c.UpdateSecondsPerByte, c.BatchPerNode, 0);

    /// <summary>A master and <see cref="ClusterShape.Nodes"/> workers of batch b each.</summary>
    public static StepCost Centralized(CostConstants c, ClusterShape shape)
    {
        int n = CheckNodes(shape);
        double g = c.GradientBytes, beta = SecondsPerByte(c, shape);
        double round = RoundSeconds(c, shape, handled: 1);   // each worker takes θ, then the master its N gradients
        double communication = 2 * round + 2 * n * g * beta + SharedNetwork(c, shape, 2 * n * g);
        return new(Compute(c, n, shape.SharedCores), communication, n * g * c.SumSecondsPerByte + g * c.UpdateSecondsPerByte,
                   n * c.BatchPerNode, n * g);
    }

    /// <summary><see cref="ClusterShape.Nodes"/> peers of batch b each combining with <paramref name="collective"/>.</summary>
    public static StepCost Decentralized(CostConstants c, Collective collective, ClusterShape shape)
    {
        int n = CheckNodes(shape);
        double g = c.GradientBytes, beta = SecondsPerByte(c, shape);
        double compute = Compute(c, n, shape.SharedCores), update = g * c.UpdateSecondsPerByte;
        if (n == 1)
            return new(compute, 0, update, c.BatchPerNode, 0);
        int turns = Turns(n, shape.SharedCores);   // every peer sums and updates at once
        var (communication, sum) = collective switch
        {
            Collective.AllGather => (RoundSeconds(c, shape, n - 1) + (n - 1) * g * beta, n * g),
            Collective.Ring when RingIsSegmented(c, n, shape.Link) =>
                (2 * (n - 1) * g / n * beta + 2 * SegmentedPhaseWait(c, shape, beta), (n - 1) * g / n),
            Collective.Ring => (2 * (n - 1) * (RoundSeconds(c, shape, 1) + g / n * beta), (n - 1) * g / n),
            Collective.Pairwise => (2 * (RoundSeconds(c, shape, n - 1) + (n - 1) * g / n * beta), g),
            _ => throw new ArgumentOutOfRangeException(nameof(collective), collective, "not a collective"),
        };
        double sent = BytesSentPerNode(collective, n, c.GradientBytes);
        return new(compute, communication + SharedNetwork(c, shape, n * sent), (sum * c.SumSecondsPerByte + update) * turns, n * c.BatchPerNode, sent);
    }

    /// <summary>
    /// Bytes of payload each peer sends (and receives) per step: (N−1)·G for the all-gather, 2·(N−1)/N·G for ring and
    /// pairwise all-reduce.
    /// </summary>
    public static double BytesSentPerNode(Collective collective, int nodes, long gradientBytes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(nodes, 1);
        return collective == Collective.AllGather ? (nodes - 1) * (double)gradientBytes : 2.0 * (nodes - 1) / nodes * gradientBytes;
    }

    /// <summary>
    /// The collective with the smallest predicted step for this shape (ties go to the earlier of
    /// <see cref="Collectives"/>): what a decentralized run uses when --collective is not given.
    /// </summary>
    public static Collective FastestCollective(CostConstants c, ClusterShape shape) =>
        Collectives.MinBy(collective => Decentralized(c, collective, shape).TotalSeconds);

    /// <summary>
    /// Where <paramref name="cost"/> stops scaling: the fewest nodes (N ≥ 2) that reach 90 % of the best samples/s of
    /// any N from 2 up to <paramref name="maxNodes"/>, so that no number of nodes gains more than a tenth over it; null when it
    /// still scales at <paramref name="maxNodes"/> (the last doubling, from <paramref name="maxNodes"/>/2, gained more
    /// than 10 %). A master that saturates at b / (G·β) stops where it nears that; a shrinking all-gather at its peak.
    /// </summary>
    public static int? StopsScalingAt(Func<int, StepCost> cost, int maxNodes = 1024)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxNodes, 4);
        // From 2 nodes: one node pays no messages at all, and may outrun any cluster (a slow link).
        var samplesPerSecond = Enumerable.Range(0, maxNodes + 1).Select(n => n < 2 ? 0 : cost(n).SamplesPerSecond).ToArray();
        if (samplesPerSecond[maxNodes] > 1.1 * samplesPerSecond[maxNodes / 2])
            return null;
        double best = samplesPerSecond.Max();
        return Enumerable.Range(2, maxNodes - 1).First(n => samplesPerSecond[n] >= 0.9 * best);
    }

    /// <summary>α + κ: what one message round of a step costs apart from its bytes.</summary>
    public static double RoundSeconds(CostConstants c) => c.MessageSeconds + c.RoundSeconds;

    /// <summary>
    /// α + κ·h: a round in which each node takes <paramref name="handled"/> messages. With a machine per node h = 1 (its
    /// reader threads take the messages in parallel). On K shared cores every node's messages of the round are taken by
    /// the same cores, and a woken reader thread or actor waits for a core that other nodes keep busy: h = max(1, N·m/K)
    /// (m = <paramref name="handled"/>), the round's hand-offs over the cores. Measured on 2 cores (loopback, traces):
    /// 0.08–0.15 ms a round at N = 2, 0.27–0.58 ms at N = 3 and 4 (decision 0140).
    /// </summary>
    public static double RoundSeconds(CostConstants c, ClusterShape shape, int handled) =>
        c.MessageSeconds + c.RoundSeconds * (shape.SharedCores == 0 ? 1 : Math.Max(1, (double)shape.Nodes * handled / shape.SharedCores));

    /// <summary>
    /// What a phase of a segmented ring waits on top of its bytes: the round that starts it, and at each of its N−1 hops
    /// what is left of a round once the chunk's other segments have covered it (a peer forwards a segment while the next
    /// ones arrive, so a hop waits only when a round outlasts the rest of its chunk: max(0, R − (S−1)/S·chunk·β), S
    /// segments a chunk).
    /// </summary>
    private static double SegmentedPhaseWait(CostConstants c, ClusterShape shape, double beta)
    {
        int n = shape.Nodes;
        long parameters = c.GradientBytes / sizeof(float), chunk = (parameters + n - 1) / n;
        long segments = (chunk + AllReduce.RingSegmentValues - 1) / AllReduce.RingSegmentValues;
        double round = RoundSeconds(c, shape, 1), covered = (segments - 1) * (double)chunk * sizeof(float) * beta / segments;
        return round + (n - 1) * Math.Max(0, round - covered);
    }

    /// <summary>
    /// Whether the ring cuts its hops into segments here (<see cref="RingPartValues"/> with the float32 gradient): then a
    /// peer passes a segment on while the rest of the chunk still arrives, every link stays busy, and the 2·(N−1) hops
    /// cost their bytes and the latency of one round per phase (the pipeline's start), not one per hop (while a round is
    /// shorter than the rest of a chunk on the link; <see cref="SegmentedPhaseWait"/>).
    /// </summary>
    public static bool RingIsSegmented(CostConstants c, int nodes, LinkRate link)
    {
        int parameters = (int)(c.GradientBytes / sizeof(float));
        return RingPartValues(c, parameters, sizeof(float), nodes, link) < (parameters + nodes - 1) / nodes;
    }

    /// <summary>
    /// How many values each part of the ring carries for <paramref name="nodes"/> peers on <paramref name="link"/> (a
    /// pure rule; the sender's choice, any receiver takes it): a whole chunk (⌈P/N⌉ of the <paramref name="parameters"/>
    /// values, <paramref name="bytesPerValue"/> bytes each on the wire) when its time on the link is no more than a round's
    /// <see cref="RoundSeconds(CostConstants)"/>; otherwise segments of
    /// <see cref="AllReduce.RingSegmentValues"/>. Segments let a peer pass the start of a chunk on while the rest still
    /// arrives, which saves at most a round's cost per hop, and each segment is a frame through the reader thread and the
    /// mailbox: on a fast link (loopback, or 10 Gbit/s at N = 2: 0.14 and 0.39 ms a chunk against 0.40 ms a round) the
    /// hops are cheaper whole; at 1 Gbit/s a chunk takes 1.9–3.9 ms for N = 2–4 and the pipeline pays.
    /// </summary>
    public static int RingPartValues(CostConstants c, int parameters, int bytesPerValue, int nodes, LinkRate link)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(parameters);
        ArgumentOutOfRangeException.ThrowIfLessThan(bytesPerValue, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(nodes, 1);
        int values = (int)(((long)parameters + nodes - 1) / nodes);
        double chunkSeconds = (double)values * bytesPerValue * SecondsPerByte(c, link);
        return chunkSeconds <= RoundSeconds(c) ? Math.Max(1, values) : AllReduce.RingSegmentValues;
    }

    /// <summary>
    /// Bytes a rate-limited link carries per payload byte: TCP over Ethernet with a 1500-byte MTU puts 1448 payload bytes
    /// in a 1514-byte frame (tc counts the frame from the Ethernet header on).
    /// </summary>
    public const double EthernetFraming = 1514.0 / 1448.0;

    /// <summary>β of a payload byte: the link's rate with its framing, or the local data plane's own cost if that is larger.</summary>
    public static double SecondsPerByte(CostConstants c, LinkRate link) => Math.Max(link.SecondsPerByte * EthernetFraming, c.LoopbackSecondsPerByte);

    /// <summary>β as a step of <paramref name="shape"/> pays it: on shared cores the link's rate alone (the local data plane's cost is <see cref="SharedNetwork"/>).</summary>
    private static double SecondsPerByte(CostConstants c, ClusterShape shape) =>
        shape.SharedCores > 0 ? shape.Link.SecondsPerByte * EthernetFraming : SecondsPerByte(c, shape.Link);

    /// <summary>ν·(bytes all the nodes send in a step)/K on K shared cores; 0 with a machine per node.</summary>
    private static double SharedNetwork(CostConstants c, ClusterShape shape, double bytesSentByAll) =>
        shape.SharedCores > 0 ? c.NetworkSecondsPerByte * bytesSentByAll / shape.SharedCores : 0;

    /// <summary>
    /// How many turns <paramref name="sharedCores"/> cores take to run one job of each of <paramref name="nodes"/> nodes
    /// that start together (a step's gradients, the peers' updates): ⌈N / K⌉, not N / K, and 1 with a machine per node
    /// (<paramref name="sharedCores"/> = 0). Linux keeps a run queue per core and puts a woken thread on one; it does not
    /// move threads between cores to even out jobs of a few milliseconds, so the busiest core runs ⌈N / K⌉ of them one
    /// after the other while another idles at the end (3 processes of 1.2 ms on 2 cores: 2.4 ms a round, not 1.8).
    /// </summary>
    public static int Turns(int nodes, int sharedCores)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(nodes, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(sharedCores);
        return sharedCores == 0 ? 1 : (nodes + sharedCores - 1) / sharedCores;
    }

    private static double Compute(CostConstants c, int together, int sharedCores) => c.ComputeSeconds * Turns(together, sharedCores);

    private static int CheckNodes(ClusterShape shape) =>
        shape.Nodes >= 1 ? shape.Nodes : throw new ArgumentOutOfRangeException(nameof(shape), shape.Nodes, "a cluster has at least 1 node");
}
