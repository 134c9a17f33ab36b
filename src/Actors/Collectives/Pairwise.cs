using DistSgd.Actors.Protocol;
using DistSgd.Actors.Transport;
using DistSgd.Numerics.Training;

namespace DistSgd.Actors.Collectives;

/// <summary>
/// The all-reduce in two rounds: the peer of rank k owns slice k of the vector (<see cref="AllReduce.Slice"/>). Round 0:
/// every peer sends its slice k to the owner of k (to each owner straight, N−1 connections; the sends hand the bytes to
/// the kernel and return, so they travel in parallel). The owner averages its slice over every participant in node-id
/// order (<see cref="AllReduce.AverageSlice"/>: the all-gather's operations, so the same bits), then round 1 sends the
/// averaged slice to every other peer. 2·(N−1)/N·G bytes sent per peer and step, in 2 rounds.
/// </summary>
/// <remarks>
/// A peer whose shard ran out sends empty slices with a sample count of 0; the owners skip them, as the all-gather does.
/// With a 16-bit wire (decision 0090) round 0 carries the shares' slices, already what the wire delivers, and the owner
/// sums them in float32 and rounds the averaged slice before it sends and keeps it: every replica holds the same bits,
/// the all-gather's average rounded to the wire's precision.
/// </remarks>
public sealed class Pairwise(DirectDataPlane direct, string runId, int parameterCount, int window, Action<long, int, string> unreachable)
    : AllReduceBase(direct, runId, parameterCount, window, unreachable)
{
    /// <summary>Each rank's values of this peer's slice (its own: a view of its gradient), until the slice is averaged.</summary>
    private ReadOnlyMemory<float>[] _pieces = [];
    private float[]?[] _arrays = [];
    /// <summary>Whose averaged slice arrived (round 1); this peer's own counts once it is averaged.</summary>
    private bool[] _averaged = [];
    private int _piecesHeard;
    private int _slicesDone;

    public override Collective Kind => Collective.Pairwise;

    public override bool IsComplete => Sent && _slicesDone == Count;

    protected override int PartsPerPeer => 2;

    protected override bool Gathers(int round) => round == 1;

    protected override void Resize(int count)
    {
        _pieces = new ReadOnlyMemory<float>[count];
        _arrays = new float[]?[count];
        _averaged = new bool[count];
    }

    protected override void Open()
    {
        for (int i = 0; i < _arrays.Length; i++)
            if (_arrays[i] is { } array)
                Release(array);
        Array.Clear(_arrays);
        Array.Clear(_pieces);
        Array.Clear(_averaged);
        _piecesHeard = 0;
        _slicesDone = 0;
    }

    public override void AddMissing(ISet<int> missing)
    {
        if (!Sent)
            return;
        for (int rank = 0; rank < Count; rank++)
        {
            if (rank == Rank)
                continue;
            // Its piece of this peer's slice, or its averaged slice.
            if (Weights[rank] < 0 || !_averaged[rank])
                missing.Add(NodeOf(rank));
        }
    }

    protected override void SendOwn(IGradientContribution share)
    {
        int length = AverageValues.Length;
        // To the owners from the next rank on, so that the peers do not all start with the same owner.
        for (int i = 1; i < Count; i++)
        {
            int owner = (Rank + i) % Count;
            var (start, count) = AllReduce.Slice(length, Count, owner);
            var values = share.SampleCount == 0 ? ReadOnlySpan<float>.Empty : share.Gradient.AsSpan(start, count);
            SendTo(owner, 0, start, Self, share.SampleCount, share.LossSum, share.ComputeSeconds, values);
        }
        var (own, ownCount) = AllReduce.Slice(length, Count, Rank);
        _pieces[Rank] = share.SampleCount == 0 ? ReadOnlyMemory<float>.Empty : new ReadOnlyMemory<float>(share.Gradient, own, ownCount);
        _piecesHeard++;
        AverageOwnSliceIfDue();
    }

    protected override PartOutcome Process(CollectivePart part)
    {
        int rank = RankOf(part.Sender);
        if (rank < 0 || rank == Rank)
            return PartOutcome.NotParticipant;
        int length = AverageValues.Length;
        if (part.Round == 0)
        {
            var (start, count) = AllReduce.Slice(length, Count, Rank);
            if (part.Origin != part.Sender || part.Offset != start || part.SampleCount < 0
                || part.Values.Length != (part.SampleCount == 0 ? 0 : count))
                return PartOutcome.WrongSlice;
            if (Weights[rank] >= 0)
                return PartOutcome.Duplicate;
            Hear(part);
            _pieces[rank] = part.Values;
            _arrays[rank] = part.Values;
            _piecesHeard++;
            AverageOwnSliceIfDue();
            return PartOutcome.Accepted;
        }
        if (part.Round == 1)
        {
            var (start, count) = AllReduce.Slice(length, Count, rank);
            if (part.Origin != -1 || part.Offset != start || part.Values.Length != count)
                return PartOutcome.WrongSlice;
            if (_averaged[rank])
                return PartOutcome.Duplicate;
            part.Values.CopyTo(AverageValues, start);
            Release(part.Values);
            _averaged[rank] = true;
            _slicesDone++;
            return PartOutcome.Accepted;
        }
        return PartOutcome.WrongSlice;
    }

    /// <summary>Every rank's piece of this peer's slice is in: average it in rank order and send it to every other peer.</summary>
    private void AverageOwnSliceIfDue()
    {
        if (_piecesHeard < Count)
            return;
        long total = Total();
        var (start, count) = AllReduce.Slice(AverageValues.Length, Count, Rank);
        var slice = AverageValues.AsSpan(start, count);
        AllReduce.AverageSlice(_pieces, Weights, total, slice);
        Parts.Round(slice);   // 16-bit parts: this peer keeps the bits it sends
        for (int i = 0; i < _arrays.Length; i++)
            if (_arrays[i] is { } array)
            {
                Release(array);
                _arrays[i] = null;
            }
        _averaged[Rank] = true;
        _slicesDone++;
        for (int i = 1; i < Count; i++)
            SendTo((Rank + i) % Count, 1, start, -1, 0, 0, 0, slice);
    }
}
