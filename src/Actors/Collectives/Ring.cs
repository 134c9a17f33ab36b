using DistSgd.Actors.Protocol;
using DistSgd.Actors.Transport;
using DistSgd.Numerics.Cost;
using DistSgd.Numerics.Training;

namespace DistSgd.Actors.Collectives;

/// <summary>
/// The all-reduce over a ring of the participants in node-id order: N−1 reduce-scatter hops, in which each peer adds its
/// weighted values to the chunk its left neighbour sends and passes it on, then N−1 all-gather hops that pass the averaged
/// chunks round (<see cref="AllReduce.RingReduceChunk"/>). Only neighbours talk: 2·(N−1)/N·G bytes sent per peer and step.
/// </summary>
/// <remarks>
/// <para><b>Parts.</b> Each hop carries its chunk whole, or in segments a peer adds to and passes on as each arrives, so
/// that the hops overlap on a slow link; which, the sender's rule says (<see cref="CostModel.RingPartValues"/>: whole on
/// a fast link, where every frame's trip through the reader thread and the mailbox costs more than the overlap saves).
/// A receiver takes a chunk cut any way, in order (one connection from the left neighbour, one mailbox), each part at
/// least <see cref="AllReduce.RingSegmentValues"/> values or the rest of the chunk, and passes on the parts as it got
/// them: peers given different link rates still agree.</para>
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
/// <param name="partValues">The values of each part this peer starts a chunk with, for a number of participants
/// (<see cref="CostModel.RingPartValues"/>; fewer than <see cref="AllReduce.RingSegmentValues"/> count as that many).</param>
public sealed class Ring(DirectDataPlane direct, string runId, int parameterCount, int window, Action<long, int, string> unreachable,
                         Func<int, int> partValues)
    : AllReduceBase(direct, runId, parameterCount, window, unreachable)
{
    /// <summary>Where this peer's first hop's parts are computed (0 + w·g of its chunk).</summary>
    private readonly float[] _first = new float[parameterCount];
    /// <summary>Per hop, the values of its chunk received so far (the parts come in order).</summary>
    private int[] _filled = [];
    /// <summary>Per hop, whether its chunk is in whole (an empty chunk: its one empty part).</summary>
    private bool[] _done = [];
    private int _hopsDone;
    /// <summary>Values per part this peer starts its chunk with, for the open step's participants.</summary>
    private int _partValues = 1;
    /// <summary>The most parts of a hop (the chunks of 2 peers are the largest, in the smallest parts taken), for the bound on held parts.</summary>
    private readonly int _maxParts = AllReduce.Segments((parameterCount + 1) / 2, AllReduce.RingSegmentValues);

    public override Collective Kind => Collective.Ring;

    public override bool IsComplete => Sent && _hopsDone == _done.Length;

    protected override int PartsPerPeer => 2 * _maxParts;

    protected override bool Gathers(int round) => round >= Count - 1;

    private int Left => (Rank + Count - 1) % Count;

    private int Right => (Rank + 1) % Count;

    protected override void Resize(int count)
    {
        int hops = AllReduce.RingHops(count);
        _filled = new int[hops];
        _done = new bool[hops];
        _partValues = Math.Max(AllReduce.RingSegmentValues, partValues(count));   // what every receiver takes
    }

    protected override void Open()
    {
        Array.Clear(_filled);
        Array.Clear(_done);
        _hopsDone = 0;
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
        for (int within = 0; within < length || within == 0; within += _partValues)
        {
            int offset = start + within;
            int count = Math.Min(_partValues, length - within);
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
        if (within < 0 || within > length)
            return PartOutcome.WrongSlice;
        if (_done[hop] || within < _filled[hop])
            return PartOutcome.Duplicate;
        int left = length - within;
        if (within != _filled[hop] || part.Values.Length > left || part.Values.Length < Math.Min(AllReduce.RingSegmentValues, left)
            || part.Origin != (reducing ? NodeOf(AllReduce.RingOrigin(Count, Left, hop)) : -1))
            return PartOutcome.WrongSlice;
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
        _filled[hop] += values.Length;
        if (_filled[hop] == length)
        {
            _done[hop] = true;
            _hopsDone++;
        }
        Release(values);
        return PartOutcome.Accepted;
    }
}
