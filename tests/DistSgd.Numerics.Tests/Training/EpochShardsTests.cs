using DistSgd.Numerics.Data;
using DistSgd.Numerics.Training;

namespace DistSgd.Numerics.Tests.Training;

/// <summary>How many samples the peers process together at a step, as every peer computes it (decision 0137).</summary>
public class EpochShardsTests
{
    [Theory]
    [InlineData(151, 50, 0, 50)]
    [InlineData(151, 50, 3, 1)]
    [InlineData(151, 50, 4, 0)]
    [InlineData(0, 50, 0, 0)]
    public void A_shards_batch_is_short_at_its_end_and_empty_past_it(int shardSize, int batchSize, int step, int rows) =>
        Assert.Equal(rows, ShardBatches.RowsAt(shardSize, batchSize, step));

    [Fact]
    public void The_samples_of_a_step_are_what_every_members_shard_gathers_there()
    {
        // 601 samples among 4 nodes, batch 50: node 0 holds 151 (4 steps, the last of 1 sample), the others 150 (3 steps).
        var train = Synthetic.GaussianBlobs(601, 3, 2, spread: 2, seed: 1);
        int[] nodes = [0, 1, 2, 3];
        var shards = EpochShards.Even(train.Count, nodes, 50);
        var all = new SortedSet<int>(nodes);
        var features = new float[50 * 3];
        var targets = new float[50];
        for (int step = 0; step < 5; step++)
        {
            int gathered = nodes.Sum(n => new ShardBatches(train, n, nodes.Length, 50, 7).Gather(1, step, features, targets));
            Assert.Equal(gathered, shards.SamplesAt(step, all));
        }
        Assert.Equal([200, 200, 200, 1, 0], Enumerable.Range(0, 5).Select(s => shards.SamplesAt(s, all)));
    }

    [Fact]
    public void A_member_lost_since_the_epoch_was_cut_is_not_counted()
    {
        var shards = EpochShards.Even(600, [3, 5, 8], 20);
        Assert.Equal(60, shards.SamplesAt(0, new SortedSet<int> { 3, 5, 8 }));
        Assert.Equal(40, shards.SamplesAt(0, new SortedSet<int> { 3, 8 }));
    }

    [Fact]
    public void Balanced_shards_count_each_members_own_batch_and_units()
    {
        // 101 samples in 10 units (the first of 11): node 4 takes units 0-5 (61 samples) in batches of 6, node 9 units 6-9
        // (40 samples) in batches of 4: 10 full steps each, and node 4's one sample more at step 10.
        Assert.Equal(61, ShardBatches.UnitsSize(101, 0, 6, 10));
        var shards = new EpochShards([(4, ShardBatches.UnitsSize(101, 0, 6, 10), 6), (9, ShardBatches.UnitsSize(101, 6, 4, 10), 4)]);
        var both = new SortedSet<int> { 4, 9 };
        Assert.Equal([10, 10, 1, 0], new[] { 0, 9, 10, 11 }.Select(s => shards.SamplesAt(s, both)));
    }
}
