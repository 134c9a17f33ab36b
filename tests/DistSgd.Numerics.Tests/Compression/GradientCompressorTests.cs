using System.Numerics.Tensors;
using DistSgd.Numerics.Compression;

namespace DistSgd.Numerics.Tests.Compression;

/// <summary>The sender side: what it leaves in the gradient is what the wire delivers, and error feedback loses nothing.</summary>
public class GradientCompressorTests
{
    /// <summary>Dyadic values (multiples of 2⁻⁶ below 2⁸): every sum of them is exact in float32, so conservation is exact.</summary>
    private static float[] DyadicGradient(Random random, int n) =>
        Enumerable.Range(0, n).Select(_ => random.Next(-1024, 1025) / 64f).ToArray();

    [Theory]
    [InlineData(WirePrecision.Fp32)]
    [InlineData(WirePrecision.Bf16)]
    [InlineData(WirePrecision.Fp16)]
    public void Error_feedback_conserves_mass_sent_plus_residual_is_the_sum_of_gradients(WirePrecision precision)
    {
        const int n = 1000;
        var compressor = new GradientCompressor(new ShareEncoding(precision, 0.01, 1), n);
        var random = new Random(3);
        var gradientSum = new double[n];
        var sentSum = new double[n];
        for (int step = 0; step < 30; step++)
        {
            var gradient = DyadicGradient(random, n);
            for (int i = 0; i < n; i++)
                gradientSum[i] += gradient[i];
            Assert.True(compressor.Compress(gradient));
            Assert.Equal(10, gradient.Count(g => g != 0));
            for (int i = 0; i < n; i++)
                sentSum[i] += gradient[i];
        }
        var residual = compressor.Residual.ToArray();
        for (int i = 0; i < n; i++)
            Assert.Equal(gradientSum[i], sentSum[i] + residual[i]);
    }

    [Theory]
    [InlineData(WirePrecision.Fp32)]
    [InlineData(WirePrecision.Bf16)]
    public void Momentum_correction_conserves_the_velocities_and_masks_what_it_sent(WirePrecision precision)
    {
        // m = 0.5 keeps every m·u + g dyadic, and 10 steps of |g| ≤ 1 in 2⁻⁶ keep every sum within float32's 24 bits:
        // each step, sent + Δr is exactly the velocity it added.
        const int n = 1000;
        var compressor = new GradientCompressor(new ShareEncoding(precision, 0.01, 1), n, momentum: 0.5);
        var random = new Random(5);
        for (int step = 0; step < 10; step++)
        {
            var residualBefore = compressor.Residual.ToArray();
            var velocityBefore = compressor.Velocity.ToArray();
            var gradient = Enumerable.Range(0, n).Select(_ => random.Next(-64, 65) / 64f).ToArray();
            var added = gradient.Select((g, i) => 0.5f * velocityBefore[i] + g).ToArray();
            Assert.True(compressor.Compress(gradient));
            Assert.Equal(10, gradient.Count(g => g != 0));
            for (int i = 0; i < n; i++)
            {
                Assert.Equal((double)added[i], (double)gradient[i] + compressor.Residual[i] - residualBefore[i]);
                // Momentum factor masking: a coordinate sent starts its velocity over; the others keep m·u + g.
                Assert.Equal(gradient[i] != 0 ? 0f : added[i], compressor.Velocity[i]);
            }
        }
    }

    [Fact]
    public void A_sent_coordinate_s_velocity_starts_over()
    {
        // Without masking, step 2's u would be (0.5·1 + 0.25, 0.5) and index 0 would go again.
        var compressor = new GradientCompressor(new ShareEncoding(WirePrecision.Fp32, 0.5), 2, momentum: 0.5);
        float[] first = [1f, 0f];
        compressor.Compress(first);
        Assert.Equal([1f, 0f], first);
        float[] second = [0.25f, 0.5f];   // u = (0·0.5 + 0.25, 0 + 0.5) = (0.25, 0.5): index 1 goes, r = (0.25, 0)
        compressor.Compress(second);
        Assert.Equal([0f, 0.5f], second);
        Assert.Equal([0.25f, 0f], compressor.Residual.ToArray());
        Assert.Equal([0.25f, 0f], compressor.Velocity.ToArray());
    }

    [Fact]
    public void Momentum_is_refused_on_a_dense_wire() =>
        Assert.Throws<ArgumentException>(() => new GradientCompressor(new ShareEncoding(WirePrecision.Bf16), 4, momentum: 0.9));

    [Fact]
    public void A_value_not_sent_is_kept_and_sent_once_it_has_grown()
    {
        var compressor = new GradientCompressor(new ShareEncoding(WirePrecision.Fp32, 0.25), 4);
        float[] first = [1f, 0.5f, 0.25f, 0f];
        compressor.Compress(first);
        Assert.Equal([1f, 0f, 0f, 0f], first);
        Assert.Equal([0f, 0.5f, 0.25f, 0f], compressor.Residual.ToArray());
        float[] second = [0f, 0.25f, 0.5f, 0f];   // accumulated: 0, 0.75, 0.75, 0: a tie, the lower index goes
        compressor.Compress(second);
        Assert.Equal([0f, 0.75f, 0f, 0f], second);
        Assert.Equal([0f, 0f, 0.75f, 0f], compressor.Residual.ToArray());
    }

    [Fact]
    public void Rounding_error_of_a_sent_value_stays_in_the_residual()
    {
        var compressor = new GradientCompressor(new ShareEncoding(WirePrecision.Bf16, 0.5), 2);
        float[] gradient = [1.00390625f, 0f];   // 1 + 2⁻⁸: bf16 rounds it to 1
        compressor.Compress(gradient);
        Assert.Equal([1f, 0f], gradient);
        Assert.Equal([0.00390625f, 0f], compressor.Residual.ToArray());
    }

    [Theory]
    [InlineData(WirePrecision.Bf16)]
    [InlineData(WirePrecision.Fp16)]
    public void Dense_16_bit_leaves_what_the_wire_delivers(WirePrecision precision)
    {
        var encoding = new ShareEncoding(precision);
        var gradient = Enumerable.Range(0, 300).Select(i => MathF.Sin(i) * 1e-3f).ToArray();
        var expected = gradient.ToArray();
        if (precision == WirePrecision.Bf16)
            HalfFloats.RoundToBf16(expected);
        else
            HalfFloats.RoundToFp16(expected, encoding.Fp16Scale);
        Assert.True(new GradientCompressor(encoding, 300).Compress(gradient));
        Assert.Equal(expected, gradient);
        Assert.NotEqual(gradient, Enumerable.Range(0, 300).Select(i => MathF.Sin(i) * 1e-3f).ToArray());
    }

    [Theory]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    [InlineData(float.NegativeInfinity)]
    public void A_non_finite_gradient_is_cleared_and_leaves_the_residual_alone(float bad)
    {
        var compressor = new GradientCompressor(new ShareEncoding(WirePrecision.Bf16, 0.5), 4);
        compressor.Compress([1f, 2f, 3f, 4f]);
        var residual = compressor.Residual.ToArray();
        float[] gradient = [1f, bad, 1f, 1f];
        Assert.False(compressor.Compress(gradient));
        Assert.Equal(new float[4], gradient);
        Assert.Equal(residual, compressor.Residual.ToArray());
    }

    [Fact]
    public void A_negative_zero_selected_is_sent_as_positive_zero()
    {
        var compressor = new GradientCompressor(new ShareEncoding(WirePrecision.Fp32, 0.5), 2);
        float[] gradient = [-0f, -0f];
        compressor.Compress(gradient);
        Assert.Equal([0u, 0u], gradient.Select(BitConverter.SingleToUInt32Bits).ToArray());
    }

    [Fact]
    public void Compressing_allocates_nothing()
    {
        // The values come from integer arithmetic, not MathF.Sin (the C library's, whose last bits may differ between
        // machines), so every machine runs the same selection; the first two steps may size buffers (the residual changes
        // the candidates), the three after must not allocate. A failure names the steps that did.
        var compressor = new GradientCompressor(new ShareEncoding(WirePrecision.Bf16, 0.01), 20_000);
        var gradient = new float[20_000];
        uint state = 12345;
        void Once()
        {
            for (int i = 0; i < gradient.Length; i++)
            {
                state = state * 1664525 + 1013904223;
                gradient[i] = ((int)state >> 8) * (1f / (1 << 23));
            }
            compressor.Compress(gradient);
        }
        Once();
        Once();
        var allocated = new long[3];
        for (int step = 0; step < allocated.Length; step++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            Once();
            allocated[step] = GC.GetAllocatedBytesForCurrentThread() - before;
        }
        Assert.Equal(new long[3], allocated);
    }

    [Theory]
    [InlineData(WirePrecision.Fp32)]
    [InlineData(WirePrecision.Bf16)]
    public void A_gradient_of_finite_values_whose_sum_overflows_is_compressed(WirePrecision precision)
    {
        // The rule is every value finite (decision 0128), not a finite float sum: Σ = 2·MaxValue overflowed, and before
        // decision 0134 this gradient was cleared and its share marked non-finite.
        var compressor = new GradientCompressor(new ShareEncoding(precision, 0.5), 4);
        float[] gradient = [float.MaxValue, 1f, float.MaxValue, 2f];
        Assert.True(compressor.Compress(gradient));
        Assert.Equal(2, gradient.Count(g => g != 0));
    }

    /// <summary>A gradient of a real run's shape: most values small, a few large, some exactly 0, both signs.</summary>
    private static float[] GradientLike(Random random, int n) =>
        Enumerable.Range(0, n).Select(_ => random.Next(8) == 0 ? 0f : (float)(random.NextDouble() - 0.5) * MathF.Pow(10, random.Next(-7, 0))).ToArray();

    [Theory]
    [InlineData(WirePrecision.Fp32, 0.9)]
    [InlineData(WirePrecision.Bf16, 0.9)]
    [InlineData(WirePrecision.Fp16, 0)]
    public void Compressing_gives_bit_for_bit_what_the_separate_passes_and_the_exact_selection_gave(WirePrecision precision, double momentum)
    {
        // The formulation before decision 0134: u ← m·u + g and a ← r + u as two TensorPrimitives passes, the exact
        // radix selection over all of a; the residual, the velocity and what is sent must not differ by a bit.
        const int n = 50_000;
        var encoding = new ShareEncoding(precision, 0.01);
        var compressor = new GradientCompressor(encoding, n, momentum);
        int k = encoding.KeptCount(n);
        float m = (float)momentum;
        var residual = new float[n];
        var velocity = new float[n];
        var indices = new int[k];
        var random = new Random(11);
        for (int step = 0; step < 25; step++)
        {
            var gradient = GradientLike(random, n);
            var expected = new float[n];
            SeparatePasses(residual, velocity, m, gradient, residual);
            new TopKSelector().SelectExact(residual, k, indices);
            foreach (int i in indices)
            {
                var one = new[] { residual[i] };
                encoding.Round(one);
                expected[i] = one[0] == 0 ? 0 : one[0];
                residual[i] -= expected[i];
                if (momentum > 0)
                    velocity[i] = 0;
            }
            Assert.True(compressor.Compress(gradient));
            Assert.Equal(Bits(expected), Bits(gradient));
            Assert.Equal(Bits(residual), Bits(compressor.Residual.ToArray()));
            Assert.Equal(momentum > 0 ? Bits(velocity) : [], Bits(compressor.Velocity.ToArray()));
        }
    }

    /// <summary>Before decision 0134: u ← m·u + g (velocity updated in place when m &gt; 0), then a ← r + u (or r + g) into <paramref name="accumulated"/>.</summary>
    private static void SeparatePasses(float[] residual, float[] velocity, float m, float[] gradient, float[] accumulated)
    {
        if (m > 0)
        {
            TensorPrimitives.MultiplyAdd(velocity, m, gradient, velocity);
            TensorPrimitives.Add(residual, velocity, accumulated);
        }
        else
            TensorPrimitives.Add(residual, gradient, accumulated);
    }

    private static uint[] Bits(float[] values) => values.Select(BitConverter.SingleToUInt32Bits).ToArray();

    [Theory]
    [InlineData(true, 0.9f)]
    [InlineData(false, 0.9f)]
    [InlineData(true, 0f)]
    [InlineData(false, 0f)]
    public void The_error_feedback_pass_gives_the_same_bits_and_candidates_vectorized_or_not(bool vectorized, float momentum)
    {
        var random = new Random(vectorized ? 3 : 4);
        foreach (int n in new[] { 0, 5, 16, 63, 1000, 4099 })
        {
            var gradient = GradientLike(random, n);
            var residual = GradientLike(random, n);
            var velocity = momentum > 0 ? GradientLike(random, n) : [];
            var expectedVelocity = velocity.ToArray();
            var expected = new float[n];
            SeparatePasses(residual, expectedVelocity, momentum, gradient, expected);
            uint threshold = BitConverter.SingleToUInt32Bits(1e-3f);
            var pass = new GradientCompressor.ErrorFeedbackPass(residual, velocity, momentum, gradient, vectorized);
            var peeked = new float[n];
            for (int i = 0; i < n; i++)
                peeked[i] = pass.Peek(i);
            var at = new int[n];
            var magnitudes = new uint[n];
            int count = pass.Run(threshold, at, magnitudes);

            Assert.Equal(Bits(expected), Bits(peeked));
            Assert.Equal(Bits(expected), Bits(residual));
            Assert.Equal(Bits(expectedVelocity), Bits(velocity));
            Assert.All(gradient, g => Assert.Equal(0u, BitConverter.SingleToUInt32Bits(g)));
            Assert.Equal(Enumerable.Range(0, n).Where(i => Math.Abs(expected[i]) >= 1e-3f), at[..count]);
            Assert.Equal(at[..count].Select(i => BitConverter.SingleToUInt32Bits(MathF.Abs(expected[i]))), magnitudes[..count]);
            if (count > 1)
            {
                // Out of room: the pass says so and still produces every value.
                var again = new GradientCompressor.ErrorFeedbackPass(residual, [], 0, new float[n], vectorized);
                Assert.Equal(-1, again.Run(threshold, new int[count - 1], new uint[count - 1]));
                Assert.Equal(Bits(expected), Bits(residual));
            }
        }
    }
}
