using DistSgd.Actors.Protocol;
using DistSgd.Actors.Transport;
using DistSgd.Numerics.Training;

namespace DistSgd.Actors.Collectives;

/// <summary>
/// The all-reduce over a ring of the participants in node-id order: N−1 reduce-scatter hops, in which each peer adds its
/// weighted values to the chunk its left neighbour sends and passes it on, then N−1 all-gather hops that pass the averaged
/// chunks round (<see cref="AllReduce.RingReduceChunk"/>). Only neighbours talk: 2·(N−1)/N·G bytes sent per peer and step.
/// </summary>
/// <remarks>
/// <para><b>Pipelined.</b> Each chunk travels in segments of at most <see cref="SegmentValues"/> values; a peer adds to and
/// passes on each segment as it arrives, so the hops overlap instead of each waiting for a whole chunk.</para>
/// <para><b>Metadata.</b> A reduce hop's segments carry the sample count, loss sum and compute seconds of the peer that
/// started the chunk (<see cref="AllReduce.RingOrigin"/>), so after the reduce hops every peer has heard every peer's: the
/// last adder of a chunk knows Σ wᵢ to average it with.</para>
/// <para>Each chunk is summed once, in ring order; every replica receives the same bits, equal to the all-gather's average
/// to float rounding.</para>
/// <para><b>bf16</b> (decision 0090): every hop's partial sum is rounded to bf16 before it is sent (the receiver adds its
/// own w·g to exactly what arrived), and the finished chunk is rounded before it is kept and passed round, so replicas
/// stay bit-identical; the average carries up to N − 1 roundings of partial sums. fp16 is refused: a partial sum Σ wᵢ·gᵢ
/// reaches the global batch times a gradient, beyond binary16's range at the wire's static scale.</para>
/// </remarks>
public sealed class Ring(DirectDataPlane direct, string runId, int parameterCount, int window, Action<long, int, string> unreachable)
    : AllReduceBase(direct, runId, parameterCount, window, unreachable)
{
    /// <summary>Values per segment: 64 KiB, small enough that the hops overlap, large enough that a frame's cost is nothing.</summary>
    public const int SegmentValues = 16 * 1024;

    /// <summary>Where this peer's first hop's segments are computed (0 + w·g of its chunk).</summary>
    private readonly float[] _first = new float[parameterCount];
    /// <summary>Per hop, the index of its first segment among all the segments this peer receives in a step.</summary>
    private int[] _hopBase = [];
    private bool[] _received = [];
    private int _receivedCount;
    /// <summary>The most segments of a hop (the chunks of 2 peers are the largest), for the bound on held parts.</summary>
    private readonly int _maxSegments = AllReduce.Segments((parameterCount + 1) / 2, SegmentValues);

    public override Collective Kind => Collective.Ring;

    public override bool IsComplete => Sent && _receivedCount == _received.Length;

    protected override int PartsPerPeer => 2 * _maxSegments;

    protected override bool Gathers(int round) => round >= Count - 1;

    private int Left => (Rank + Count - 1) % Count;

    private int Right => (Rank + 1) % Count;

    protected override void Resize(int count)
    {
        int hops = AllReduce.RingHops(count);
        _hopBase = new int[hops + 1];
        int rank = RankOf(Self);
        for (int hop = 0; hop < hops; hop++)
        {
            var (_, length) = AllReduce.Slice(AverageValues.Length, count, AllReduce.RingReceivedChunk(count, Math.Max(0, rank), hop));
            int segments = AllReduce.Segments(length, SegmentValues);
            _hopBase[hop + 1] = _hopBase[hop] + segments;
        }
        _received = new bool[_hopBase[hops]];
    }

    protected override void Open()
    {
        Array.Clear(_received);
        _receivedCount = 0;
    }

    public override void AddMissing(ISet<int> missing)
    {
        if (Sent && !IsComplete)
            missing.Add(NodeOf(Left));
    }

    protected override void SendOwn(IGradientContribution share)
    {
        var own = share.SampleCount == 0 ? ReadOnlySpan<float>.Empty : share.Gradient.AsSpan();
        if (Count == 1)
        {
            // Alone: the average of one share, with the same operations.
            AverageValues.AsSpan().Clear();
            AllReduce.AddWeighted(AverageValues, own, share.SampleCount);
            AllReduce.Finish(AverageValues, Total());
            return;
        }
        var (start, length) = AllReduce.Slice(AverageValues.Length, Count, AllReduce.RingReduceChunk(Count, Rank, 0));
        for (int segment = 0; segment * SegmentValues < length || segment == 0; segment++)
        {
            int offset = start + segment * SegmentValues;
            int count = Math.Min(SegmentValues, length - segment * SegmentValues);
            var first = _first.AsSpan(offset, count);
            first.Clear();
            if (share.SampleCount > 0)
                AllReduce.AddWeighted(first, own.Slice(offset, count), share.SampleCount);
            Parts.Round(first);
            SendTo(Right, 0, offset, Self, share.SampleCount, share.LossSum, share.ComputeSeconds, first);
        }
    }

    protected override PartOutcome Process(CollectivePart part)
    {
        if (Count == 1 || RankOf(part.Sender) != Left)
            return PartOutcome.NotParticipant;
        int hop = part.Round;
        if (hop < 0 || hop >= AllReduce.RingHops(Count))
            return PartOutcome.WrongSlice;
        bool reducing = hop < Count - 1;
        var (start, length) = AllReduce.Slice(AverageValues.Length, Count, AllReduce.RingReceivedChunk(Count, Rank, hop));
        int within = part.Offset - start;
        if (within < 0 || within % SegmentValues != 0 || (within >= length && !(within == 0 && length == 0)))
            return PartOutcome.WrongSlice;
        int segment = within / SegmentValues;
        if (part.Values.Length != Math.Min(SegmentValues, length - within)
            || part.Origin != (reducing ? NodeOf(AllReduce.RingOrigin(Count, Left, hop)) : -1))
            return PartOutcome.WrongSlice;
        int index = _hopBase[hop] + segment;
        if (_received[index])
            return PartOutcome.Duplicate;
        var values = part.Values;
        if (reducing)
        {
            Hear(part);
            if (OwnWeight > 0)
                AllReduce.AddWeighted(values, Own.Span.Slice(part.Offset, values.Length), OwnWeight);
            if (hop < Count - 2)
            {
                Parts.Round(values);
                SendTo(Right, hop + 1, part.Offset, part.Origin, part.SampleCount, part.LossSum, part.ComputeSeconds, values);
            }
            else
            {
                // The chunk is summed over every peer: this peer heard every sample count on the way (see remarks).
                long total = Total();
                if (total < 0)
                    return PartOutcome.WrongSlice;
                AllReduce.Finish(values, total);
                Parts.Round(values);   // 16-bit parts: this peer keeps the bits it passes round
                values.CopyTo(AverageValues, part.Offset);
                SendTo(Right, hop + 1, part.Offset, -1, 0, 0, 0, values);
            }
        }
        else
        {
            values.CopyTo(AverageValues, part.Offset);
            if (hop < AllReduce.RingHops(Count) - 1)
                SendTo(Right, hop + 1, part.Offset, -1, 0, 0, 0, values);
        }
        _received[index] = true;
        _receivedCount++;
        Release(values);
        return PartOutcome.Accepted;
    }
}
