using DistSgd.Numerics.Data;
using DistSgd.Numerics.Training;

namespace DistSgd.Numerics.Tests.Training;

public class SpeedBalanceTests
{
    private static int[] Batches(IReadOnlyList<WorkerBatch> plan) => plan.Select(b => b.BatchSize).ToArray();

    [Fact]
    public void Batches_follow_the_measured_rates_and_keep_the_global_batch()
    {
        // Three workers at 1000 samples/s, one at a third of that: 256 = 76.8 × 3 + 25.6, rounded by largest remainder.
        var plan = SpeedBalance.Plan([0, 1, 2, 3], [new(0, 1000, 1), new(1, 1000, 1), new(2, 1000, 1), new(3, 1000, 3)], 256);
        Assert.Equal([0, 1, 2, 3], plan.Select(b => b.Worker));
        Assert.Equal([77, 77, 77, 25], Batches(plan));
        Assert.Equal(256, plan.Sum(b => b.BatchSize));
    }

    [Fact]
    public void The_plan_is_a_pure_function_of_the_timings_whatever_their_order()
    {
        WorkerSpeed[] timings = [new(2, 700, 0.9), new(0, 640, 0.31), new(1, 512, 0.77), new(5, 99, 0.1)];
        var first = SpeedBalance.Plan([2, 0, 1], timings, 100);
        var again = SpeedBalance.Plan([0, 1, 2], timings.Reverse(), 100);
        Assert.Equal(first, again);
        Assert.Equal(100, first.Sum(b => b.BatchSize));
    }

    [Theory]
    [InlineData(4, 4)]
    [InlineData(3, 10)]
    [InlineData(5, 7)]
    public void Every_worker_keeps_at_least_the_minimum_batch_even_when_very_slow(int workers, int globalBatch)
    {
        var timings = Enumerable.Range(0, workers).Select(w => new WorkerSpeed(w, w == 0 ? 1 : 1_000_000, 1)).ToList();
        var plan = SpeedBalance.Plan(Enumerable.Range(0, workers), timings, globalBatch);
        Assert.All(plan, b => Assert.True(b.BatchSize >= 1));
        Assert.Equal(globalBatch, plan.Sum(b => b.BatchSize));
    }

    [Fact]
    public void A_worker_without_a_measurement_counts_at_the_mean_rate_and_none_measured_splits_evenly()
    {
        Assert.Equal([40, 20, 30], Batches(SpeedBalance.Plan([0, 1, 2], [new(0, 400, 1), new(1, 200, 1)], 90)));
        Assert.Equal([34, 33, 33], Batches(SpeedBalance.Plan([0, 1, 2], [], 100)));   // ties to the lower id
    }

    [Fact]
    public void A_global_batch_below_one_per_worker_is_refused() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => SpeedBalance.Plan([0, 1, 2], [], 2));

    [Fact]
    public void Each_worker_takes_its_batch_of_consecutive_units_and_together_they_cover_the_training_set_once()
    {
        var plan = SpeedBalance.Plan([0, 1, 2, 3], [new(0, 1000, 1), new(1, 1000, 1), new(2, 1000, 1), new(3, 1000, 3)], 16);
        var first = SpeedBalance.FirstUnits(plan);
        Assert.Equal([0, 5, 10, 15], Enumerable.Range(0, 4).Select(w => first[w]));
        var data = new Dataset("d", new float[103], 1, Enumerable.Range(0, 103).Select(i => (float)i).ToArray(), 0);
        var seen = new List<float>();
        int steps = ShardBatches.StepsPerEpoch(103, 16, 1);
        foreach (var b in plan)
        {
            var shard = ShardBatches.ForUnits(data, first[b.Worker], b.BatchSize, 16, seed: 1);
            Assert.Equal(b.BatchSize, shard.BatchSize);
            var features = new float[b.BatchSize];
            var targets = new float[b.BatchSize];
            for (int step = 0; step < steps; step++)
            {
                int rows = shard.Gather(1, step, features, targets);
                seen.AddRange(targets[..rows]);
            }
            Assert.Equal(0, shard.Gather(1, steps, features, targets));   // every shard is done within the epoch's steps
        }
        Assert.Equal(Enumerable.Range(0, 103).Select(i => (float)i), seen.Order());
    }
}
