namespace DistSgd.Numerics.Data;

/// <summary>
/// The visiting order of samples in each epoch: a permutation of 0..SampleCount−1 that depends only on
/// (seed, epoch), never on earlier calls, so a restarted or remote worker reproduces it exactly. The order
/// is Fisher–Yates over the identity with xoshiro256** seeded from (seed, epoch), a generator fixed in this
/// project so the order cannot change with the runtime.
/// </summary>
public sealed class BatchSampler
{
    private readonly int[] _order;

    public BatchSampler(int sampleCount, int seed)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(sampleCount, 1);
        SampleCount = sampleCount;
        Seed = seed;
        _order = new int[sampleCount];
    }

    public int SampleCount { get; }
    public int Seed { get; }

    /// <summary>The order for <paramref name="epoch"/>, in a buffer this sampler reuses: valid until the next
    /// call, and no allocation per epoch.</summary>
    public ReadOnlySpan<int> EpochOrder(int epoch)
    {
        EpochOrder(epoch, _order);
        return _order;
    }

    /// <summary>Writes the order for <paramref name="epoch"/> into the caller's buffer of SampleCount elements.</summary>
    public void EpochOrder(int epoch, Span<int> order)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(epoch);
        if (order.Length != SampleCount)
            throw new ArgumentException($"expected a buffer of {SampleCount} indices, found {order.Length}", nameof(order));
        for (int i = 0; i < order.Length; i++)
            order[i] = i;
        new SeededRandom(SeededRandom.Combine(Seed, epoch)).Shuffle(order);
    }

    /// <summary>
    /// Copies the samples <paramref name="indices"/> of <paramref name="data"/> into contiguous caller-owned
    /// buffers: row k of the batch goes to features[k·d .. (k+1)·d) and its target to targets[k]. The
    /// buffers may be longer than the batch (a last, short batch reuses the full-size buffers).
    /// </summary>
    public static void GatherBatch(Dataset data, ReadOnlySpan<int> indices, Span<float> features, Span<float> targets)
    {
        ArgumentNullException.ThrowIfNull(data);
        int d = data.FeatureCount;
        if (features.Length < (long)indices.Length * d || targets.Length < indices.Length)
            throw new ArgumentException(
                $"a batch of {indices.Length} samples of {d} features needs {indices.Length * (long)d} feature slots " +
                $"and {indices.Length} target slots, found {features.Length} and {targets.Length}");
        var source = data.Features.AsSpan();
        var sourceTargets = data.Targets.AsSpan();
        for (int k = 0; k < indices.Length; k++)
        {
            int i = indices[k];
            source.Slice(i * d, d).CopyTo(features.Slice(k * d, d));
            targets[k] = sourceTargets[i];
        }
    }
}
