using DistSgd.Numerics.Data;

namespace DistSgd.Numerics.Training;

/// <summary>
/// One worker's view of a data-parallel epoch: its deterministic shard of the training set (a
/// contiguous, balanced range of it), reshuffled every epoch with a seed of its own, cut into batches.
/// Every node computes the same plan from (sample count, worker count, seed), so no data moves.
/// </summary>
public sealed class ShardBatches
{
    private readonly Dataset _train;
    private readonly int _start;
    private readonly BatchSampler _sampler;
    private readonly int[] _indices;
    private int _epoch = -1;

    public ShardBatches(Dataset train, int workerIndex, int workerCount, int batchSize, int seed)
        : this(train, Range(train, workerIndex, workerCount), batchSize, unchecked(seed * 7919 + workerIndex))
    {
    }

    private ShardBatches(Dataset train, (int Start, int Length) shard, int batchSize, int samplerSeed)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        _train = train;
        (_start, ShardSize) = shard;
        BatchSize = batchSize;
        _sampler = new BatchSampler(Math.Max(ShardSize, 1), samplerSeed);
        _indices = new int[Math.Max(ShardSize, 1)];
    }

    private static (int Start, int Length) Range(Dataset train, int workerIndex, int workerCount)
    {
        ArgumentNullException.ThrowIfNull(train);
        if (workerCount < 1 || workerIndex < 0 || workerIndex >= workerCount)
            throw new ArgumentOutOfRangeException(nameof(workerIndex), workerIndex, $"a worker index in [0, {workerCount})");
        return DataSplit.ShardRange(train.Count, workerCount, workerIndex);
    }

    /// <summary>
    /// The batches of a worker in a balanced epoch (<see cref="SpeedBalance"/>): units <paramref name="firstUnit"/> to
    /// <paramref name="firstUnit"/> + <paramref name="width"/> − 1 of the training set cut into <paramref name="unitCount"/>
    /// equal units, a batch of <paramref name="width"/> samples a step.
    /// </summary>
    public static ShardBatches ForUnits(Dataset train, int firstUnit, int width, int unitCount, int seed)
    {
        ArgumentNullException.ThrowIfNull(train);
        if (width < 1 || firstUnit < 0 || unitCount < 1 || firstUnit + width > unitCount)
            throw new ArgumentOutOfRangeException(nameof(firstUnit), $"units {firstUnit}..{firstUnit + width - 1} of {unitCount}");
        int start = DataSplit.ShardRange(train.Count, unitCount, firstUnit).Start;
        return new ShardBatches(train, (start, UnitsSize(train.Count, firstUnit, width, unitCount)), width, unchecked(seed * 7919 + 104_729 * (firstUnit + 1)));
    }

    /// <summary>Samples in units <paramref name="firstUnit"/> to <paramref name="firstUnit"/> + <paramref name="width"/> − 1 of <paramref name="trainCount"/> samples cut into <paramref name="unitCount"/> units (<see cref="ForUnits"/>'s shard).</summary>
    public static int UnitsSize(int trainCount, int firstUnit, int width, int unitCount)
    {
        int start = DataSplit.ShardRange(trainCount, unitCount, firstUnit).Start;
        var (lastStart, lastLength) = DataSplit.ShardRange(trainCount, unitCount, firstUnit + width - 1);
        return lastStart + lastLength - start;
    }

    /// <summary>
    /// Samples of batch <paramref name="stepInEpoch"/> of a shard of <paramref name="shardSize"/> samples cut into batches of
    /// <paramref name="batchSize"/>: fewer at the end of the shard, 0 past it (what <see cref="Gather"/> returns).
    /// </summary>
    public static int RowsAt(int shardSize, int batchSize, int stepInEpoch) =>
        (int)Math.Clamp(shardSize - (long)stepInEpoch * batchSize, 0, batchSize);

    /// <summary>
    /// The batches of <paramref name="member"/> when the training set is shared among <paramref name="members"/> (node ids
    /// or worker indices, any order): its shard is its rank in the sorted set, so every member that knows the same set
    /// computes the same assignment. After a member is lost the survivors re-shard with this.
    /// </summary>
    public static ShardBatches ForMember(Dataset train, int member, IEnumerable<int> members, int batchSize, int seed)
    {
        var sorted = members.Distinct().Order().ToList();
        int rank = sorted.IndexOf(member);
        if (rank < 0)
            throw new ArgumentException($"{member} is not one of the members {string.Join(", ", sorted)}", nameof(member));
        return new ShardBatches(train, rank, sorted.Count, batchSize, seed);
    }

    public int ShardSize { get; }

    public int BatchSize { get; }

    /// <summary>
    /// Steps every worker takes per epoch when <paramref name="trainCount"/> samples are split into
    /// <paramref name="workerCount"/> shards and each step takes <paramref name="batchSize"/> samples per worker:
    /// enough for the largest shard (a smaller shard's last batches are short or empty, see <see cref="Gather"/>).
    /// </summary>
    public static int StepsPerEpoch(int trainCount, int workerCount, int batchSize)
    {
        var (_, largest) = DataSplit.ShardRange(trainCount, workerCount, 0); // shard 0 is never smaller than the others
        return (largest + batchSize - 1) / batchSize;
    }

    /// <summary>
    /// Copies the samples of batch <paramref name="stepInEpoch"/> of <paramref name="epoch"/> into the
    /// caller's buffers and returns how many there are (fewer at the end of the shard, 0 past it).
    /// </summary>
    public int Gather(int epoch, int stepInEpoch, Span<float> features, Span<float> targets)
    {
        if (ShardSize == 0)
            return 0;
        if (epoch != _epoch)
        {
            var order = _sampler.EpochOrder(epoch);
            for (int i = 0; i < ShardSize; i++)
                _indices[i] = _start + order[i];
            _epoch = epoch;
        }
        int rows = RowsAt(ShardSize, BatchSize, stepInEpoch);
        if (rows == 0)
            return 0;
        BatchSampler.GatherBatch(_train, _indices.AsSpan(stepInEpoch * BatchSize, rows), features, targets);
        return rows;
    }
}
