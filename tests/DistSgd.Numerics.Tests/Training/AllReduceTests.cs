using DistSgd.Numerics.Optim;
using DistSgd.Numerics.Training;

namespace DistSgd.Numerics.Tests.Training;

/// <summary>
/// The all-reduce's arithmetic: slices cover the vector, the pairwise owner's slice average has exactly the all-gather's
/// bits, and the ring schedule (simulated here hop by hop, as the peers run it) gives every rank the same bits, equal to
/// the all-gather's average to float rounding; uneven slices, odd N and a weight-0 share included.
/// </summary>
public class AllReduceTests
{
    [Theory]
    [InlineData(10, 3)]
    [InlineData(7, 7)]
    [InlineData(3, 5)]
    [InlineData(235_146, 4)]
    [InlineData(0, 2)]
    public void Slices_cover_the_vector_in_order_and_differ_in_length_by_at_most_one(int length, int parts)
    {
        int next = 0;
        var lengths = new List<int>();
        for (int k = 0; k < parts; k++)
        {
            var (start, count) = AllReduce.Slice(length, parts, k);
            Assert.Equal(next, start);
            next += count;
            lengths.Add(count);
        }
        Assert.Equal(length, next);
        Assert.True(lengths.Max() - lengths.Min() <= 1);
    }

    [Fact]
    public void A_slice_outside_the_parts_is_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => AllReduce.Slice(10, 3, 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => AllReduce.Slice(10, 0, 0));
    }

    /// <summary>N shares of a vector that does not divide evenly, with awkward values and one weight of 0 (a shard that ran out).</summary>
    private static (float[][] Gradients, int[] Weights) Shares(int n, int length, int seed)
    {
        var random = new Random(seed);
        var gradients = new float[n][];
        var weights = new int[n];
        for (int i = 0; i < n; i++)
        {
            weights[i] = i == n - 1 && n > 2 ? 0 : 1 + random.Next(64);
            gradients[i] = weights[i] == 0 ? [] : Enumerable.Range(0, length).Select(_ => (float)(random.NextDouble() * 2 - 1) * (random.Next(4) == 0 ? 1e-6f : 1f)).ToArray();
        }
        return (gradients, weights);
    }

    private static float[] AllGatherAverage(float[][] gradients, int[] weights, int length)
    {
        var expected = new float[length];
        GradientAggregation.WeightedAverage(gradients.Select(g => (ReadOnlyMemory<float>)g).ToList(), weights, expected);
        return expected;
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    public void The_pairwise_owners_slices_put_together_are_the_all_gathers_average_bit_for_bit(int n)
    {
        const int length = 1037;   // divides by none of 2 … 5
        var (gradients, weights) = Shares(n, length, n);
        long total = weights.Sum();
        var result = new float[length];
        for (int owner = 0; owner < n; owner++)
        {
            var (start, count) = AllReduce.Slice(length, n, owner);
            var pieces = gradients.Select((g, i) => weights[i] == 0 ? ReadOnlyMemory<float>.Empty : new ReadOnlyMemory<float>(g, start, count)).ToArray();
            AllReduce.AverageSlice(pieces, weights, total, result.AsSpan(start, count));
        }

        Assert.Equal(AllGatherAverage(gradients, weights, length), result);
    }

    /// <summary>The ring as the peers run it: per hop, what each rank sends to its right neighbour, added to or stored by it.</summary>
    private static float[][] SimulateRing(float[][] gradients, int[] weights, int length)
    {
        int n = gradients.Length;
        long total = weights.Sum();
        var results = Enumerable.Range(0, n).Select(_ => new float[length]).ToArray();
        // What each rank holds of each chunk: its partial (reduce) or final (gather) values.
        var held = Enumerable.Range(0, n).Select(_ => new float[n][]).ToArray();
        for (int r = 0; r < n; r++)
        {
            var (start, count) = AllReduce.Slice(length, n, AllReduce.RingReduceChunk(n, r, 0));
            var first = new float[count];
            if (weights[r] > 0)
                AllReduce.AddWeighted(first, gradients[r].AsSpan(start, count), weights[r]);
            held[r][AllReduce.RingReduceChunk(n, r, 0)] = first;
        }
        for (int hop = 0; hop < AllReduce.RingHops(n); hop++)
        {
            var sent = new float[n][];
            for (int r = 0; r < n; r++)
            {
                int chunk = hop < n - 1 ? AllReduce.RingReduceChunk(n, r, hop) : AllReduce.RingGatherChunk(n, r, hop - (n - 1));
                sent[r] = (float[])held[r][chunk].Clone();
            }
            for (int r = 0; r < n; r++)
            {
                int left = (r - 1 + n) % n;
                int chunk = AllReduce.RingReceivedChunk(n, r, hop);
                var (start, count) = AllReduce.Slice(length, n, chunk);
                var values = sent[left];
                Assert.Equal(count, values.Length);
                if (hop < n - 1)
                {
                    if (weights[r] > 0)
                        AllReduce.AddWeighted(values, gradients[r].AsSpan(start, count), weights[r]);
                    if (hop == n - 2)
                    {
                        Assert.Equal((r + 1) % n, chunk);   // the chunk this rank owns after the reduce-scatter
                        AllReduce.Finish(values, total);
                        values.CopyTo(results[r], start);
                    }
                }
                else
                {
                    values.CopyTo(results[r], start);
                }
                held[r][chunk] = values;
            }
        }
        if (n == 1)
            AllReduce.Finish(held[0][0], total);
        return results;
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    public void The_ring_gives_every_rank_the_same_bits_equal_to_the_all_gathers_average_to_rounding(int n)
    {
        const int length = 1037;
        var (gradients, weights) = Shares(n, length, 10 + n);

        var results = SimulateRing(gradients, weights, length);

        foreach (var result in results)
            Assert.Equal(results[0], result);
        var expected = AllGatherAverage(gradients, weights, length);
        for (int i = 0; i < length; i++)
            Assert.True(Math.Abs(expected[i] - results[0][i]) <= 1e-6f * (1 + Math.Abs(expected[i])), $"element {i}: {results[0][i]} vs {expected[i]}");
    }

    [Theory]
    [InlineData(3)]
    [InlineData(5)]
    public void Every_rank_hears_every_other_ranks_sample_count_during_the_ring_reduce_hops(int n)
    {
        for (int r = 0; r < n; r++)
        {
            int left = (r - 1 + n) % n;
            var heard = Enumerable.Range(0, n - 1).Select(hop => AllReduce.RingOrigin(n, left, hop)).ToHashSet();
            Assert.Equal(Enumerable.Range(0, n).Where(i => i != r).ToHashSet(), heard);
        }
        Assert.Equal(-1, AllReduce.RingOrigin(n, 0, n - 1));
    }

    [Theory]
    [InlineData(0.9, 0.01, false)]
    [InlineData(0.5, 0, true)]
    [InlineData(0, 0, false)]
    public void A_step_with_an_average_made_elsewhere_gives_the_fused_steps_bits(double momentum, double weightDecay, bool nesterov)
    {
        const int length = 3000;   // blocks of 1024 and a short one
        var (gradients, weights) = Shares(3, length, 7);
        var options = new SgdOptions(0.05, momentum, weightDecay, nesterov);
        var theta = Enumerable.Range(0, length).Select(i => MathF.Sin(i)).ToArray();
        var fused = new SgdOptimizer(options, length);
        var averaged = new SgdOptimizer(options, length);
        var thetaFused = (float[])theta.Clone();
        var thetaAveraged = (float[])theta.Clone();
        var before = new float[length];
        var velocityBefore = new float[momentum > 0 ? length : 0];

        for (int step = 0; step < 3; step++)
        {
            var a = fused.AverageAndStep(thetaFused, gradients.Select(g => (ReadOnlyMemory<float>)g).ToList(), weights);
            var b = averaged.StepAveraged(thetaAveraged, AllGatherAverage(gradients, weights, length), weights.Sum(), before, velocityBefore);
            Assert.Equal(a, b);
        }

        Assert.Equal(thetaFused, thetaAveraged);
        Assert.Equal(fused.State.Velocity, averaged.State.Velocity);
        Assert.Equal(fused.State.Step, averaged.State.Step);
    }
}
