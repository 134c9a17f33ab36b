using DistSgd.Numerics.Compression;

namespace DistSgd.Numerics.Tests.Compression;

/// <summary>Top-k selection: exactly k, the largest magnitudes, ties to the lower index, ascending, without allocating.</summary>
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
