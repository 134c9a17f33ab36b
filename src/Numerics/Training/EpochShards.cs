namespace DistSgd.Numerics.Training;

/// <summary>
/// Every member's shard of an epoch (its size and batch), as each node computes them from the same plan
/// (<see cref="ShardBatches"/>): how many samples the members process together at a step. A decentralized peer counts
/// them at a local step of a local-SGD round, where no other peer's share reaches it, so that the epoch's samples per
/// second count every peer's samples as an averaging step does (decision 0137).
/// </summary>
public sealed class EpochShards
{
    private readonly int[] _nodes;
    private readonly int[] _shardSizes;
    private readonly int[] _batchSizes;

    /// <param name="members">Each member's node id, shard size and batch size.</param>
    public EpochShards(IReadOnlyList<(int Node, int ShardSize, int BatchSize)> members)
    {
        ArgumentNullException.ThrowIfNull(members);
        _nodes = new int[members.Count];
        _shardSizes = new int[members.Count];
        _batchSizes = new int[members.Count];
        for (int i = 0; i < members.Count; i++)
        {
            var (node, shardSize, batchSize) = members[i];
            ArgumentOutOfRangeException.ThrowIfNegative(shardSize);
            ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
            (_nodes[i], _shardSizes[i], _batchSizes[i]) = (node, shardSize, batchSize);
        }
    }

    /// <summary>
    /// <paramref name="trainCount"/> samples cut into one shard per node of <paramref name="nodes"/>, in the order given
    /// (shard i is node i's: <see cref="Data.DataSplit.ShardRange"/>), each taking <paramref name="batchSize"/> samples a step.
    /// </summary>
    public static EpochShards Even(int trainCount, IReadOnlyList<int> nodes, int batchSize)
    {
        ArgumentNullException.ThrowIfNull(nodes);
        var members = new (int, int, int)[nodes.Count];
        for (int i = 0; i < nodes.Count; i++)
            members[i] = (nodes[i], Data.DataSplit.ShardRange(trainCount, nodes.Count, i).Length, batchSize);
        return new EpochShards(members);
    }

    /// <summary>
    /// Σ of the samples each member in <paramref name="participants"/> processes at step <paramref name="stepInEpoch"/>
    /// (<see cref="ShardBatches.RowsAt"/>): a member lost since the epoch was cut is not counted. Allocates nothing.
    /// </summary>
    public long SamplesAt(int stepInEpoch, IReadOnlySet<int> participants)
    {
        long samples = 0;
        for (int i = 0; i < _nodes.Length; i++)
            if (participants.Contains(_nodes[i]))
                samples += ShardBatches.RowsAt(_shardSizes[i], _batchSizes[i], stepInEpoch);
        return samples;
    }
}
