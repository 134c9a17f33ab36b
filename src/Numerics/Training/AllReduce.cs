using System.Numerics.Tensors;

namespace DistSgd.Numerics.Training;

/// <summary>
/// The arithmetic of an all-reduce of the peers' gradients (reduce-scatter, then all-gather), apart from any message:
/// how the vector is cut into slices, which slice a ring hop carries, and the weighted sums each owner computes.
/// Pure, so every schedule's numbers are unit-tested without a socket.
/// </summary>
/// <remarks>
/// <para><b>Slices.</b> A vector of n values cut into p slices as evenly as possible: the first n mod p slices have
/// ⌈n/p⌉ values, the others ⌊n/p⌋ (<see cref="Slice"/>). Slice k belongs to the participant of rank k (its place in the
/// sorted participant ids).</para>
/// <para><b>Pairwise</b> (<see cref="AverageSlice"/>): the owner of slice k sums every participant's values of slice k in
/// participant order with exactly the float operations of <see cref="GradientAggregation.WeightedAverage"/>
/// (ḡ ← 0; ḡ ← ḡ + wᵢ·gᵢ for each wᵢ &gt; 0; ḡ ← ḡ·(1/Σwᵢ)). Every operation is element-wise, so each element of the
/// slice gets the bits the whole-vector average gives it: the all-reduce is byte-identical to the all-gather.</para>
/// <para><b>Ring</b> (<see cref="RingReduceChunk"/>, <see cref="RingGatherChunk"/>): N−1 reduce-scatter hops, in which
/// rank r sends chunk (r − t) mod N to its right neighbour and adds its own weighted values to the chunk it receives, then
/// N−1 all-gather hops that pass the finished chunks on. Each chunk is summed once, in ring order from the rank after its
/// owner's, so replicas are bit-identical among themselves and equal to the all-gather to float rounding.</para>
/// </remarks>
public static class AllReduce
{
    /// <summary>Slice <paramref name="k"/> of a vector of <paramref name="length"/> values cut into <paramref name="parts"/> slices.</summary>
    public static (int Start, int Length) Slice(int length, int parts, int k)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(parts);
        ArgumentOutOfRangeException.ThrowIfNegative(k);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(k, parts);
        int small = length / parts, extra = length % parts;
        int start = k * small + Math.Min(k, extra);
        return (start, small + (k < extra ? 1 : 0));
    }

    /// <summary>
    /// Values per segment of a pipelined ring hop (<see cref="Cost.CostModel.RingPartValues"/>): 64 KiB, small enough
    /// that the hops overlap, large enough that a frame's cost is small next to its time on a slow link. Also the
    /// smallest part a receiver takes that is not the rest of its chunk.
    /// </summary>
    public const int RingSegmentValues = 16 * 1024;

    /// <summary>The number of segments of at most <paramref name="segment"/> values a slice of <paramref name="length"/> values is sent in (at least one).</summary>
    public static int Segments(int length, int segment)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(segment);
        return Math.Max(1, (length + segment - 1) / segment);
    }

    /// <summary>
    /// Writes the weighted average of one slice into <paramref name="destination"/>: ḡ = Σ wᵢ·gᵢ / <paramref name="total"/>
    /// in the order given, with the operations of <see cref="GradientAggregation.WeightedAverage"/>; a piece of weight 0 is
    /// skipped and may be empty. With <paramref name="total"/> = 0 the slice is zeros.
    /// </summary>
    /// <param name="pieces">Each participant's values of the slice, in participant order.</param>
    /// <param name="weights">Each participant's sample count.</param>
    /// <param name="total">Σ wᵢ over every participant (the same on every owner).</param>
    public static void AverageSlice(ReadOnlySpan<ReadOnlyMemory<float>> pieces, ReadOnlySpan<int> weights, long total, Span<float> destination)
    {
        if (pieces.Length != weights.Length)
            throw new ArgumentException($"{pieces.Length} pieces but {weights.Length} weights");
        destination.Clear();
        for (int i = 0; i < pieces.Length; i++)
        {
            if (weights[i] < 0)
                throw new ArgumentOutOfRangeException(nameof(weights), weights[i], $"piece {i} has a negative sample count");
            if (weights[i] == 0)
                continue;
            if (pieces[i].Length != destination.Length)
                throw new ArgumentException($"piece {i} has {pieces[i].Length} values, expected {destination.Length}");
            // ḡ ← ḡ + wᵢ·gᵢ
            TensorPrimitives.MultiplyAdd(pieces[i].Span, weights[i], destination, destination);
        }
        if (total > 0)
            TensorPrimitives.Multiply(destination, 1f / total, destination);
    }

    /// <summary>
    /// A ring hop's contribution: <paramref name="partial"/> ← <paramref name="partial"/> + w·g (nothing when w = 0). The
    /// first rank of a chunk starts from a cleared <paramref name="partial"/>, so it holds 0 + w·g, as the all-gather's sum does.
    /// </summary>
    public static void AddWeighted(Span<float> partial, ReadOnlySpan<float> gradient, int weight)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(weight);
        if (weight == 0)
            return;
        if (gradient.Length != partial.Length)
            throw new ArgumentException($"the gradient has {gradient.Length} values, the partial sum {partial.Length}");
        TensorPrimitives.MultiplyAdd(gradient, weight, partial, partial);
    }

    /// <summary>The chunk's last partial sum becomes its average: ḡ ← Σ·(1/<paramref name="total"/>) (left as is when the total is 0).</summary>
    public static void Finish(Span<float> sum, long total)
    {
        if (total > 0)
            TensorPrimitives.Multiply(sum, 1f / total, sum);
    }

    /// <summary>Hops of a ring all-reduce among <paramref name="participants"/>: N−1 to reduce, N−1 to gather.</summary>
    public static int RingHops(int participants) => 2 * (participants - 1);

    /// <summary>
    /// The chunk rank <paramref name="rank"/> sends at reduce-scatter hop <paramref name="hop"/> (0 … N−2): (r − t) mod N.
    /// It receives chunk (r − t − 1) mod N at that hop; after the last one it holds chunk (r + 1) mod N summed over every rank.
    /// </summary>
    public static int RingReduceChunk(int participants, int rank, int hop) => Mod(rank - hop, participants);

    /// <summary>The chunk rank <paramref name="rank"/> sends at all-gather hop <paramref name="hop"/> (0 … N−2): (r + 1 − t) mod N.</summary>
    public static int RingGatherChunk(int participants, int rank, int hop) => Mod(rank + 1 - hop, participants);

    /// <summary>
    /// The chunk rank <paramref name="rank"/> receives from its left neighbour at ring hop <paramref name="hop"/> (0 … 2N−3):
    /// the chunk its left neighbour sends at that hop.
    /// </summary>
    public static int RingReceivedChunk(int participants, int rank, int hop)
    {
        int left = Mod(rank - 1, participants);
        return hop < participants - 1 ? RingReduceChunk(participants, left, hop) : RingGatherChunk(participants, left, hop - (participants - 1));
    }

    /// <summary>
    /// Whose sample count and loss the frames of ring hop <paramref name="hop"/> from rank <paramref name="rank"/> carry: its
    /// own at hop 0, then what it received at the hop before, so that after the N−1 reduce hops every rank has every rank's
    /// (the all-gather of the step's metadata rides on the reduce-scatter); −1 for the all-gather hops.
    /// </summary>
    public static int RingOrigin(int participants, int rank, int hop) => hop < participants - 1 ? Mod(rank - hop, participants) : -1;

    private static int Mod(int a, int n) => ((a % n) + n) % n;
}
