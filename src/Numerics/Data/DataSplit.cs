namespace DistSgd.Numerics.Data;

/// <summary>
/// Deterministic ways to cut a data set: a seeded train/test split, a seeded shuffle, and sharding into
/// contiguous balanced parts (one per worker).
/// </summary>
public static class DataSplit
{
    // Stream ids for SeededRandom.Combine, distinct from the epochs (≥ 0) that BatchSampler uses.
    private const int SplitStream = -1;
    private const int ShuffleStream = -2;

    /// <summary>
    /// Shuffles with <paramref name="seed"/> and puts round(Count × testFraction) samples (at least one, and
    /// leaving at least one) in the test set. Both parts come out in the shuffled order.
    /// </summary>
    public static (Dataset Train, Dataset Test) TrainTestSplit(Dataset data, double testFraction, int seed)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (!(testFraction > 0 && testFraction < 1))
            throw new ArgumentOutOfRangeException(nameof(testFraction), testFraction, "expected a fraction strictly between 0 and 1");
        if (data.Count < 2)
            throw new DataFormatException(data.Name, $"expected at least 2 samples to split into a train and a test set, found {data.Count}");

        int testCount = Math.Clamp((int)Math.Round(data.Count * testFraction), 1, data.Count - 1);
        var order = Permutation(data.Count, SeededRandom.Combine(seed, SplitStream));
        var test = data.Select(order.AsSpan(0, testCount), $"{data.Name} [test]");
        var train = data.Select(order.AsSpan(testCount), $"{data.Name} [train]");
        return (train, test);
    }

    /// <summary>A copy of <paramref name="data"/> in an order fixed by <paramref name="seed"/>.</summary>
    public static Dataset Shuffle(Dataset data, int seed)
    {
        ArgumentNullException.ThrowIfNull(data);
        return data.Select(Permutation(data.Count, SeededRandom.Combine(seed, ShuffleStream)));
    }

    /// <summary>
    /// The samples [Start, Start + Length) of shard <paramref name="shardIndex"/> out of
    /// <paramref name="shardCount"/>: contiguous, in order, the first Count mod shardCount shards one sample
    /// longer than the rest, so sizes differ by at most one and the shards tile 0..count exactly.
    /// </summary>
    public static (int Start, int Length) ShardRange(int count, int shardCount, int shardIndex)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfLessThan(shardCount, 1);
        if (shardIndex < 0 || shardIndex >= shardCount)
            throw new ArgumentOutOfRangeException(nameof(shardIndex), shardIndex, $"expected a shard index in 0..{shardCount - 1}");
        int size = count / shardCount;
        int longer = count % shardCount;
        int start = shardIndex * size + Math.Min(shardIndex, longer);
        return (start, size + (shardIndex < longer ? 1 : 0));
    }

    /// <summary>A copy of the samples in <see cref="ShardRange"/> for this shard. Contiguous, so shuffle
    /// first when the file is sorted by class.</summary>
    public static Dataset Shard(Dataset data, int shardCount, int shardIndex)
    {
        ArgumentNullException.ThrowIfNull(data);
        var (start, length) = ShardRange(data.Count, shardCount, shardIndex);
        int d = data.FeatureCount;
        var features = data.Features.AsSpan(start * d, length * d).ToArray();
        var targets = data.Targets.AsSpan(start, length).ToArray();
        return new Dataset($"{data.Name} [shard {shardIndex + 1}/{shardCount}]", features, d, targets, data.ClassCount);
    }

    private static int[] Permutation(int count, ulong seed)
    {
        var order = new int[count];
        for (int i = 0; i < count; i++)
            order[i] = i;
        new SeededRandom(seed).Shuffle(order);
        return order;
    }
}
