using DistSgd.Numerics.Data;

namespace DistSgd.Numerics.Tests.Data;

public sealed class DataSplitTests
{
    /// <summary>Sample i has features (i, −i) and target i, so every sample is recognisable by its target.</summary>
    private static Dataset Numbered(int count) => new(
        "numbered",
        Enumerable.Range(0, count).SelectMany(i => new[] { (float)i, -i }).ToArray(),
        2,
        Enumerable.Range(0, count).Select(i => (float)i).ToArray(),
        0);

    [Theory]
    [InlineData(10, 3)]
    [InlineData(10, 10)]
    [InlineData(7, 10)]
    [InlineData(60_000, 7)]
    [InlineData(0, 4)]
    [InlineData(1, 1)]
    public void Shard_ranges_tile_every_sample_exactly_once_with_sizes_differing_by_at_most_one(int count, int shards)
    {
        var ranges = Enumerable.Range(0, shards).Select(s => DataSplit.ShardRange(count, shards, s)).ToList();

        int next = 0;
        foreach (var (start, length) in ranges)
        {
            Assert.Equal(next, start);
            next = start + length;
        }
        Assert.Equal(count, next);
        Assert.True(ranges.Max(r => r.Length) - ranges.Min(r => r.Length) <= 1);
    }

    [Fact]
    public void Shards_of_a_data_set_hold_their_range_with_features_matching_targets()
    {
        var data = Numbered(10);

        var shards = Enumerable.Range(0, 3).Select(s => DataSplit.Shard(data, 3, s)).ToList();

        Assert.Equal([4, 3, 3], shards.Select(s => s.Count));
        Assert.Equal(Enumerable.Range(0, 10).Select(i => (float)i), shards.SelectMany(s => s.Targets));
        Assert.All(shards, s => Assert.All(Enumerable.Range(0, s.Count), i => Assert.Equal(s.Targets[i], s.Row(i)[0])));
    }

    [Fact]
    public void A_shard_index_outside_the_shard_count_is_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => DataSplit.ShardRange(10, 3, 3));
    }

    [Fact]
    public void Train_test_split_partitions_the_samples_deterministically_for_a_seed()
    {
        var data = Numbered(100);

        var (train, test) = DataSplit.TrainTestSplit(data, 0.2, seed: 9);
        var (train2, test2) = DataSplit.TrainTestSplit(data, 0.2, seed: 9);
        var (_, test3) = DataSplit.TrainTestSplit(data, 0.2, seed: 10);

        Assert.Equal((80, 20), (train.Count, test.Count));
        Assert.Equal(Enumerable.Range(0, 100).Select(i => (float)i), train.Targets.Concat(test.Targets).Order());
        Assert.All(Enumerable.Range(0, test.Count), i => Assert.Equal(test.Targets[i], test.Row(i)[0]));
        Assert.Equal(test.Targets, test2.Targets);
        Assert.Equal(train.Features, train2.Features);
        Assert.NotEqual(test.Targets, test3.Targets);
    }

    [Fact]
    public void Shuffle_is_a_seeded_permutation_of_the_samples()
    {
        var data = Numbered(50);

        var shuffled = DataSplit.Shuffle(data, seed: 1);

        Assert.NotEqual(data.Targets, shuffled.Targets);
        Assert.Equal(data.Targets, shuffled.Targets.Order());
        Assert.Equal(shuffled.Targets, DataSplit.Shuffle(data, seed: 1).Targets);
    }
}
