using System.Numerics.Tensors;
using DistSgd.Numerics.Optim;
using DistSgd.Numerics.Training;

namespace DistSgd.Numerics.Tests.Optim;

/// <summary>
/// The fused average + update gives the bits of the two passes it replaced: <see cref="GradientAggregation.WeightedAverage"/>
/// over the whole arrays, then the optimizer's formula over the whole arrays, one operation at a time (written out below
/// as the reference, as <see cref="SgdOptimizer.Step"/> did it before it was blocked).
/// </summary>
public class AverageAndStepTests
{
    public static TheoryData<double, double, bool> Options => new()
    {
        { 0, 0, false }, { 0.9, 0, false }, { 0.9, 0.01, false }, { 0.5, 0, true }, { 0.9, 1e-4, true }, { 0, 0.01, false },
    };

    /// <summary>The whole-array update of the optimizer before it was blocked: g′ = g + λ·θ; v ← μ·v + g′; θ ← θ − η·v (or the Nesterov/plain variants).</summary>
    private static void ReferenceStep(SgdOptions options, float rate, float[] theta, float[] g, float[] v)
    {
        var scratch = new float[theta.Length];
        ReadOnlySpan<float> gradient = g;
        if (options.WeightDecay > 0)
        {
            TensorPrimitives.MultiplyAdd(theta, (float)options.WeightDecay, g, scratch);
            gradient = scratch;
        }
        if (options.Momentum > 0)
        {
            float mu = (float)options.Momentum;
            TensorPrimitives.MultiplyAdd(v, mu, gradient, v);
            if (options.Nesterov)
            {
                TensorPrimitives.MultiplyAdd(v, mu, gradient, scratch);
                TensorPrimitives.MultiplyAdd(scratch, -rate, theta, theta);
            }
            else
            {
                TensorPrimitives.MultiplyAdd(v, -rate, theta, theta);
            }
        }
        else
        {
            TensorPrimitives.MultiplyAdd(gradient, -rate, theta, theta);
        }
    }

    /// <summary>Values of every scale and sign, zeros of both signs among them (0·w + 0 must stay what it was).</summary>
    private static float[] Values(Random random, int n) =>
        Enumerable.Range(0, n).Select(i => i % 97 == 0 ? -0f : i % 89 == 0 ? 0f
                                          : (float)((random.NextDouble() - 0.5) * Math.Pow(10, random.Next(-6, 4)))).ToArray();

    /// <summary>Every option set with 1, 2 and 3 weighted shares (1 and 2 are averaged in registers, 3 or more in blocks).</summary>
    public static TheoryData<double, double, bool, int> OptionsAndShares()
    {
        var data = new TheoryData<double, double, bool, int>();
        foreach (var row in Options)
            foreach (int shares in new[] { 1, 2, 3 })
                data.Add((double)row[0], (double)row[1], (bool)row[2], shares);
        return data;
    }

    [Theory]
    [MemberData(nameof(OptionsAndShares))]
    public void Fused_average_and_update_give_the_bits_of_the_separate_passes(double momentum, double weightDecay, bool nesterov, int weighted)
    {
        // A length that is not a multiple of the block or of any vector width.
        const int n = 3 * SgdOptimizer.BlockLength + 13;
        var options = new SgdOptions(0.05, momentum, weightDecay, nesterov);
        var random = new Random(7);
        var fused = new SgdOptimizer(options, n);
        var theta = Values(random, n);
        var reference = (float[])theta.Clone();
        var velocity = new float[momentum > 0 ? n : 0];
        for (int step = 0; step < 5; step++)
        {
            // Shares of unequal sample counts, one of them empty with weight 0 (a shard that ran out).
            var shares = new List<ReadOnlyMemory<float>> { Values(random, n), Array.Empty<float>(), Values(random, n), Values(random, n) }
                .Take(weighted + 1).ToList();
            var weights = new List<int> { 64, 0, 37, 1 }.Take(weighted + 1).ToList();
            var average = new float[n];
            long samples = GradientAggregation.WeightedAverage(shares, weights, average);
            ReferenceStep(options, (float)fused.CurrentLearningRate, reference, average, velocity);

            var result = fused.AverageAndStep(theta, shares, weights);

            Assert.Equal(samples, result.Samples);
            Assert.Equal(Bits(reference), Bits(theta));
            Assert.Equal(Bits(velocity), Bits(fused.State.Velocity));
            Assert.Equal(step + 1, fused.State.Step);
        }
    }

    [Theory]
    [MemberData(nameof(Options))]
    public void The_blocked_step_gives_the_bits_of_the_whole_array_step(double momentum, double weightDecay, bool nesterov)
    {
        const int n = 2 * SgdOptimizer.BlockLength + 5;
        var options = new SgdOptions(0.05, momentum, weightDecay, nesterov);
        var random = new Random(3);
        var optimizer = new SgdOptimizer(options, n);
        var theta = Values(random, n);
        var reference = (float[])theta.Clone();
        var velocity = new float[momentum > 0 ? n : 0];
        for (int step = 0; step < 3; step++)
        {
            var g = Values(random, n);
            ReferenceStep(options, (float)optimizer.CurrentLearningRate, reference, g, velocity);
            optimizer.Step(theta, g);
            Assert.Equal(Bits(reference), Bits(theta));
            Assert.Equal(Bits(velocity), Bits(optimizer.State.Velocity));
        }
    }

    [Fact]
    public void The_state_before_the_update_is_copied_in_the_same_pass()
    {
        const int n = SgdOptimizer.BlockLength + 3;
        var optimizer = new SgdOptimizer(new SgdOptions(0.1, momentum: 0.9), n);
        var random = new Random(5);
        var theta = Values(random, n);
        optimizer.AverageAndStep(theta, [Values(random, n)], [8]);
        var thetaBefore = (float[])theta.Clone();
        var velocityBefore = (float[])optimizer.State.Velocity.Clone();
        var keptTheta = new float[n];
        var keptVelocity = new float[n];

        optimizer.AverageAndStep(theta, [Values(random, n)], [8], keptTheta, keptVelocity);

        Assert.Equal(thetaBefore, keptTheta);
        Assert.Equal(velocityBefore, keptVelocity);
        Assert.NotEqual(thetaBefore, theta);
    }

    [Fact]
    public void Without_samples_nothing_is_applied_but_the_state_is_still_kept_and_summed()
    {
        var optimizer = new SgdOptimizer(new SgdOptions(0.1, momentum: 0.9), 4);
        var theta = new float[] { 1, 2, 3, 4 };
        var kept = new float[4];

        var result = optimizer.AverageAndStep(theta, [Array.Empty<float>()], [0], kept, new float[4]);

        Assert.Equal(0, result.Samples);
        Assert.Equal(10f, result.ParameterSum);
        Assert.Equal(new float[] { 1, 2, 3, 4 }, theta);
        Assert.Equal(theta, kept);
        Assert.Equal(0, optimizer.State.Step);
    }

    [Fact]
    public void A_non_finite_parameter_makes_the_sum_non_finite()
    {
        var optimizer = new SgdOptimizer(new SgdOptions(0.1), 2 * SgdOptimizer.BlockLength);
        var theta = new float[2 * SgdOptimizer.BlockLength];
        var g = new float[theta.Length];
        g[SgdOptimizer.BlockLength + 7] = float.PositiveInfinity;

        var result = optimizer.AverageAndStep(theta, [g], [1]);

        Assert.False(float.IsFinite(result.ParameterSum));
    }

    [Fact]
    public void A_share_of_the_wrong_length_or_a_negative_weight_is_refused_before_anything_changes()
    {
        var optimizer = new SgdOptimizer(new SgdOptions(0.1), 4);
        var theta = new float[] { 1, 2, 3, 4 };
        var e1 = Assert.Throws<ArgumentException>(() => optimizer.AverageAndStep(theta, [new float[3]], [1]));
        Assert.Contains("share 0 has 3 values, expected 4", e1.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => optimizer.AverageAndStep(theta, [new float[4]], [-1]));
        Assert.Equal(new float[] { 1, 2, 3, 4 }, theta);
        Assert.Equal(0, optimizer.State.Step);
    }

    private static int[] Bits(float[] values) => values.Select(BitConverter.SingleToInt32Bits).ToArray();
}
