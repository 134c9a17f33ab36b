using DistSgd.Numerics.Data;

namespace DistSgd.Numerics.Tests.Data;

public sealed class BatchSamplerTests
{
    [Fact]
    public void An_epoch_order_is_a_permutation_of_all_samples()
    {
        var order = new BatchSampler(1000, seed: 3).EpochOrder(0).ToArray();

        Assert.Equal(Enumerable.Range(0, 1000), order.Order());
        Assert.NotEqual(Enumerable.Range(0, 1000), order);
    }

    [Fact]
    public void The_order_depends_only_on_seed_and_epoch_not_on_earlier_calls()
    {
        var first = new BatchSampler(500, seed: 3);
        var second = new BatchSampler(500, seed: 3);
        var epoch5 = first.EpochOrder(5).ToArray();
        first.EpochOrder(6);

        second.EpochOrder(0);
        Assert.Equal(epoch5, second.EpochOrder(5).ToArray());
        Assert.Equal(epoch5, first.EpochOrder(5).ToArray());
    }

    [Fact]
    public void Orders_differ_across_epochs_and_across_seeds()
    {
        var sampler = new BatchSampler(500, seed: 3);
        var epoch0 = sampler.EpochOrder(0).ToArray();
        var epoch1 = sampler.EpochOrder(1).ToArray();
        var otherSeed = new BatchSampler(500, seed: 4).EpochOrder(0).ToArray();

        Assert.NotEqual(epoch0, epoch1);
        Assert.NotEqual(epoch0, otherSeed);
    }

    [Fact]
    public void The_order_is_fixed_across_runtimes_and_platforms()
    {
        // Pinned values: a change here means every recorded run would train on a different sample order.
        var order = new BatchSampler(10, seed: 42).EpochOrder(0).ToArray();

        Assert.Equal(PinnedOrderSeed42Epoch0, order);
    }

    [Fact]
    public void Every_position_is_equally_likely_for_every_sample()
    {
        // Over many epochs, sample 0 lands in each of 4 positions about a quarter of the time; a biased
        // shuffle (e.g. swapping with any position instead of a not-yet-visited one) fails this.
        var sampler = new BatchSampler(4, seed: 1);
        var counts = new int[4];
        for (int epoch = 0; epoch < 8000; epoch++)
            counts[sampler.EpochOrder(epoch).IndexOf(0)]++;

        Assert.All(counts, c => Assert.InRange(c, 1800, 2200));
    }

    [Fact]
    public void The_reused_order_buffer_costs_no_allocation_per_epoch()
    {
        var sampler = new BatchSampler(10_000, seed: 2);
        // Well past the runtime's tier-up (30 calls): a full run once counted 5,112 bytes on this thread with one
        // epoch of warm-up, which looks like the runtime promoting the method, not the sampler (alone it is 0).
        for (int epoch = 0; epoch < 100; epoch++)
            sampler.EpochOrder(epoch);

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int epoch = 100; epoch < 120; epoch++)
            sampler.EpochOrder(epoch);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(0, allocated);
    }

    [Fact]
    public void Gather_batch_copies_the_chosen_rows_and_targets_contiguously_without_allocating()
    {
        var data = new Dataset("d", [0f, 1f, 10f, 11f, 20f, 21f, 30f, 31f], 2, [0f, 1f, 2f, 3f], 4);
        var features = new float[6];
        var targets = new float[3];
        int[] batch = [3, 0, 2];
        BatchSampler.GatherBatch(data, batch, features, targets); // warm up

        Array.Clear(features);
        long before = GC.GetAllocatedBytesForCurrentThread();
        BatchSampler.GatherBatch(data, batch, features, targets);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal([30f, 31f, 0f, 1f, 20f, 21f], features);
        Assert.Equal([3f, 0f, 2f], targets);
        Assert.Equal(0, allocated);
    }

    [Fact]
    public void Gather_batch_refuses_buffers_too_small_for_the_batch()
    {
        var data = new Dataset("d", [0f, 1f, 10f, 11f], 2, [0f, 1f], 2);

        var e = Assert.Throws<ArgumentException>(() => BatchSampler.GatherBatch(data, [0, 1], new float[3], new float[2]));
        Assert.Contains("needs 4 feature slots", e.Message);
    }

    // Cross-checked against an independent transcription of the reference xoshiro256**, SplitMix64 and
    // Lemire bounded-integer algorithms.
    private static readonly int[] PinnedOrderSeed42Epoch0 = [0, 6, 4, 2, 1, 5, 9, 7, 8, 3];
}
