using System.Runtime.InteropServices;

namespace DistSgd.Numerics.Compression;

/// <summary>
/// Selects the k values of largest magnitude, exactly k, in O(n) without sorting: a radix selection over the bits of
/// |x| (for non-negative float32, the order of the bit patterns is the order of the values).
/// </summary>
/// <remarks>
/// Ties are broken by index, lower first: the k-th largest magnitude T is found, every index with |x| &gt; T is taken,
/// then the lowest indices with |x| = T until there are k. The result is therefore a pure function of the values,
/// the same on every node, and comes out in ascending index order (what the sparse encoding sends).
/// Three passes over the values (a histogram of the upper 16 bits of |x|, one of the lower 16 bits within the bucket
/// that holds the k-th, the collection); the histogram is allocated once per selector. NaN is refused.
/// </remarks>
public sealed class TopKSelector
{
    private readonly int[] _histogram = new int[1 << 16];

    /// <summary>Writes the indices of the <paramref name="k"/> largest |values| into <paramref name="indices"/>[..k], ascending.</summary>
    public void Select(ReadOnlySpan<float> values, int k, Span<int> indices)
    {
        if (k < 0 || k > values.Length)
            throw new ArgumentOutOfRangeException(nameof(k), k, $"k must be from 0 to the {values.Length} values");
        if (indices.Length < k)
            throw new ArgumentException($"room for {indices.Length} indices, {k} needed", nameof(indices));
        HalfFloats.ThrowIfNaN(values);
        if (k == 0)
            return;
        var bits = MemoryMarshal.Cast<float, uint>(values);
        var histogram = _histogram.AsSpan();

        // The bucket of the upper 16 bits of |x| that holds the k-th largest, and how many lie above it.
        histogram.Clear();
        foreach (uint b in bits)
            histogram[(int)((b & 0x7FFFFFFFu) >> 16)]++;
        (int upper, int above) = BucketOfKth(histogram, k);

        // Within that bucket, the lower 16 bits: T = the k-th largest |x| exactly.
        histogram.Clear();
        foreach (uint b in bits)
            if ((b & 0x7FFFFFFFu) >> 16 == (uint)upper)
                histogram[(int)(b & 0xFFFFu)]++;
        (int lower, int aboveThreshold) = BucketOfKth(histogram, k - above);
        uint threshold = ((uint)upper << 16) | (uint)lower;
        int ties = k - above - aboveThreshold;

        int count = 0;
        for (int i = 0; i < bits.Length; i++)
        {
            uint magnitude = bits[i] & 0x7FFFFFFFu;
            if (magnitude > threshold || (magnitude == threshold && ties-- > 0))
                indices[count++] = i;
        }
    }

    /// <summary>The kept count for a fraction of <paramref name="length"/> values: ⌈F·n⌉, at least 1 (0 for no values).</summary>
    public static int KeptCount(int length, double fraction)
    {
        if (!(fraction > 0 && fraction <= 1))
            throw new ArgumentOutOfRangeException(nameof(fraction), fraction, "the fraction kept must be in (0, 1]");
        return length == 0 ? 0 : (int)Math.Clamp(Math.Ceiling(fraction * length - 1e-9), 1, length);
    }

    /// <summary>The highest bucket b with Σ_{j ≥ b} h[j] ≥ k, and Σ_{j &gt; b} h[j] (the count strictly above it).</summary>
    private static (int Bucket, int Above) BucketOfKth(ReadOnlySpan<int> histogram, int k)
    {
        int above = 0;
        for (int b = histogram.Length - 1; b > 0; b--)
        {
            if (above + histogram[b] >= k)
                return (b, above);
            above += histogram[b];
        }
        return (0, above);
    }
}
