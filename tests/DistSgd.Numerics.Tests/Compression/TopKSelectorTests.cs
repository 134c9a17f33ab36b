using DistSgd.Numerics.Compression;

namespace DistSgd.Numerics.Tests.Compression;

/// <summary>
/// Top-k selection: exactly k, the largest magnitudes, ties to the lower index, ascending, without allocating. The sampled
/// threshold (decision 0134) selects what the exact radix selection over all values selects (<see cref="TopKSelector.SelectExact"/>,
/// the selection before it) and what a full sort selects, on inputs meant to break it.
/// </summary>
public class TopKSelectorTests
{
    /// <summary>The reference: sort every index by (|x| descending, index ascending), take k, sort ascending.</summary>
    private static int[] Reference(float[] values, int k) =>
        Enumerable.Range(0, values.Length).OrderByDescending(i => Math.Abs(values[i])).ThenBy(i => i).Take(k).Order().ToArray();

    [Theory]
    [InlineData(1, 1)]
    [InlineData(100, 0)]
    [InlineData(100, 1)]
    [InlineData(100, 37)]
    [InlineData(100, 100)]
    [InlineData(10_000, 100)]
    [InlineData(10_007, 5000)]
    public void Selects_exactly_the_k_largest_magnitudes_as_a_full_sort_would(int n, int k)
    {
        var random = new Random(n + k);
        // Few distinct magnitudes (many ties) in one half, continuous values in the other, both signs.
        var values = Enumerable.Range(0, n).Select(i => i % 2 == 0
            ? random.Next(-5, 6) * 0.25f
            : (float)(random.NextDouble() - 0.5) * MathF.Pow(2, random.Next(-140, 20))).ToArray();
        var indices = new int[k];
        new TopKSelector().Select(values, k, indices);
        Assert.Equal(Reference(values, k), indices);
    }

    /// <summary>The inputs the sampled threshold must get right: each a name and n values.</summary>
    public static TheoryData<string, int> Shapes() => new()
    {
        { "gradient-like", 50_000 }, { "gradient-like", 235_146 }, { "few magnitudes", 40_000 }, { "all equal", 30_000 },
        { "signed zeros", 30_000 }, { "mostly zeros", 60_000 }, { "subnormals", 30_000 }, { "huge and infinite", 30_000 },
        { "largest on the sample", 40_000 }, { "smallest on the sample", 40_000 }, { "ascending", 33_333 }, { "descending", 33_333 },
    };

    private static float[] Make(string shape, int n, int seed)
    {
        var random = new Random(seed);
        int stride = n / TopKSelector.DefaultSampleSize;
        float Normal() => (float)(Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble()));
        return Enumerable.Range(0, n).Select(i => shape switch
        {
            "gradient-like" => Normal() * MathF.Pow(10, random.Next(-6, -1)),
            "few magnitudes" => random.Next(-3, 4) * 0.5f,
            "all equal" => -0.25f,
            "signed zeros" => random.Next(4) switch { 0 => 0f, 1 => -0f, 2 => 1e-3f, _ => -1e-3f },
            "mostly zeros" => random.Next(100) < 3 ? Normal() : random.Next(2) == 0 ? 0f : -0f,
            "subnormals" => (random.Next(2) == 0 ? 1 : -1) * float.Epsilon * random.Next(1, 50),
            "huge and infinite" => random.Next(50) switch { 0 => float.PositiveInfinity, 1 => float.NegativeInfinity, 2 => float.MaxValue, 3 => -float.MaxValue, _ => Normal() * 1e37f },
            // The sampled positions hold the largest magnitudes: the guess is too high, fewer than k candidates.
            "largest on the sample" => i % stride == 0 && i / stride < TopKSelector.DefaultSampleSize ? 100f + i : Normal(),
            // The sampled positions hold the smallest: the guess is far too low, more candidates than there is room for.
            "smallest on the sample" => i % stride == 0 ? 1e-30f : 1f + (float)random.NextDouble(),
            "ascending" => i * 1e-3f,
            _ => (n - i) * 1e-3f,
        }).ToArray();
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void The_sampled_threshold_selects_what_the_exact_selection_and_a_full_sort_select(string shape, int n)
    {
        var selector = new TopKSelector();
        foreach (int k in new[] { 1, 2, n / 1000, n / 100, n / 100 + 7, n / 20, n / 3, n - 1, n })
        {
            var values = Make(shape, n, n + k);
            var sampled = new int[k];
            var exact = new int[k];
            selector.Select(values, k, sampled);
            new TopKSelector().SelectExact(values, k, exact);
            Assert.Equal(exact, sampled);
            if (k <= n / 100 + 7)
                Assert.Equal(Reference(values, k), sampled);
        }
    }

    [Theory]
    [InlineData("gradient-like", false)]
    [InlineData("largest on the sample", true)]
    [InlineData("smallest on the sample", true)]
    public void A_wrong_guess_falls_back_to_the_exact_selection_and_a_good_one_selects_among_few(string shape, bool fallsBack)
    {
        const int n = 40_000, k = 400;
        var values = Make(shape, n, 7);
        var selector = new TopKSelector();
        var indices = new int[k];
        selector.Select(values, k, indices);
        Assert.Equal(Reference(values, k), indices);
        Assert.Equal(fallsBack, selector.LastFellBack);
        if (fallsBack)
            Assert.Equal(n, selector.LastCandidates);
        else
            Assert.InRange(selector.LastCandidates, k, 3 * k);
    }

    [Theory]
    [InlineData(16)]
    [InlineData(100)]
    [InlineData(1000)]
    public void Any_sample_size_selects_the_same(int sampleSize)
    {
        var random = new Random(sampleSize);
        for (int round = 0; round < 20; round++)
        {
            int n = random.Next(2 * sampleSize, 20_000);
            int k = random.Next(1, n / 10);
            var values = Enumerable.Range(0, n).Select(_ => random.Next(3) == 0 ? random.Next(-4, 5) * 0.125f : (float)random.NextDouble() - 0.5f).ToArray();
            var indices = new int[k];
            new TopKSelector(sampleSize).Select(values, k, indices);
            Assert.Equal(Reference(values, k), indices);
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void The_vectorized_pass_and_the_one_by_one_pass_collect_the_same_candidates(bool vectorized)
    {
        var random = new Random(vectorized ? 1 : 2);
        for (int round = 0; round < 50; round++)
        {
            int n = random.Next(0, 3000);
            var values = Enumerable.Range(0, n).Select(_ => random.Next(10) switch
            {
                0 => -0f, 1 => float.NegativeInfinity, 2 => float.Epsilon, _ => (float)(random.NextDouble() - 0.5) * 4,
            }).ToArray();
            uint threshold = BitConverter.SingleToUInt32Bits((float)random.NextDouble() * 2.5f);
            int room = random.Next(0, n + 1);
            var expected = Enumerable.Range(0, n).Where(i => Math.Abs(values[i]) >= BitConverter.UInt32BitsToSingle(threshold)).ToArray();
            var at = new int[room];
            var magnitudes = new uint[room];
            int count = TopKSelector.CollectCandidates(values, threshold, at, magnitudes, vectorized);
            if (expected.Length > room)
            {
                Assert.Equal(-1, count);
                continue;
            }
            Assert.Equal(expected, at[..count]);
            Assert.Equal(expected.Select(i => BitConverter.SingleToUInt32Bits(MathF.Abs(values[i]))), magnitudes[..count]);
        }
    }

    [Fact]
    public void NaN_among_the_candidates_is_refused_naming_its_index()
    {
        var values = Make("gradient-like", 50_000, 3);
        values[12_345] = -float.NaN;   // not a sampled position (stride 12): only the candidate pass sees it
        var selector = new TopKSelector();
        var e = Assert.Throws<ArgumentException>(() => selector.Select(values, 500, new int[500]));
        Assert.Contains("value 12345 is NaN", e.Message);
    }

    [Fact]
    public void Ties_go_to_the_lower_index()
    {
        var indices = new int[2];
        new TopKSelector().Select([1f, -1f, 1f, 0.5f, -1f], 2, indices);
        Assert.Equal([0, 1], indices);
        new TopKSelector().Select([0f, -0f, 0f, 0f], 3, indices = new int[3]);
        Assert.Equal([0, 1, 2], indices);
    }

    [Fact]
    public void Infinities_and_subnormals_order_by_magnitude()
    {
        var indices = new int[3];
        new TopKSelector().Select([float.Epsilon, 1f, float.NegativeInfinity, -float.Epsilon * 2, 0f, float.MaxValue], 3, indices);
        Assert.Equal([1, 2, 5], indices);
    }

    [Fact]
    public void NaN_is_refused()
    {
        var e = Assert.Throws<ArgumentException>(() => new TopKSelector().Select([1f, float.NaN], 1, new int[1]));
        Assert.Contains("value 1 is NaN", e.Message);
    }

    [Fact]
    public void A_k_out_of_range_is_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new TopKSelector().Select([1f, 2f], 3, new int[3]));
        Assert.Throws<ArgumentException>(() => new TopKSelector().Select([1f, 2f], 2, new int[1]));
    }

    [Theory]
    [InlineData(235_146, 0.01, 2352)]
    [InlineData(100, 0.01, 1)]
    [InlineData(100, 0.001, 1)]
    [InlineData(100, 1, 100)]
    [InlineData(300, 0.07, 21)]
    [InlineData(0, 0.5, 0)]
    public void Kept_count_is_the_ceiling_of_the_fraction_and_at_least_one(int n, double fraction, int expected) =>
        Assert.Equal(expected, TopKSelector.KeptCount(n, fraction));

    [Fact]
    public void Selecting_allocates_nothing()
    {
        var values = Enumerable.Range(0, 50_000).Select(i => MathF.Sin(i)).ToArray();
        var indices = new int[500];
        var selector = new TopKSelector();
        selector.Select(values, 500, indices);
        long before = GC.GetAllocatedBytesForCurrentThread();
        selector.Select(values, 500, indices);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
