using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace DistSgd.Numerics.Compression;

/// <summary>
/// Selects the k values of largest magnitude, exactly k, in O(n) without sorting: a radix selection over the bits of
/// |x| (for non-negative float32, the order of the bit patterns is the order of the values).
/// </summary>
/// <remarks>
/// Ties are broken by index, lower first: the k-th largest magnitude T is found, every index with |x| &gt; T is taken,
/// then the lowest indices with |x| = T until there are k. The result is therefore a pure function of the values,
/// the same on every node, and comes out in ascending index order (what the sparse encoding sends).
/// <para><see cref="Select"/> first guesses a threshold t ≤ T from a strided sample of the values (Deep Gradient
/// Compression's sampled threshold), collects every index with |x| ≥ t in one SIMD pass (the candidates, about 1.5–2·k;
/// a NaN is always one of them) and runs the exact selection among the candidates only: they hold every |x| ≥ T, in index
/// order, so T, the ties and the result are those of the whole. When the guess fails (fewer than k candidates, or more
/// than room was made for) the exact selection runs over all the values (<see cref="SelectExact"/>: three passes, a
/// histogram of the upper 15 bits of |x|, one of the lower 16 within the bucket that holds the k-th, the collection;
/// decision 0134). Buffers are allocated on the first call (and when n or k grows), never per step. NaN is refused.</para>
/// </remarks>
public sealed class TopKSelector
{
    /// <summary>Values the threshold is guessed from (<see cref="TopKSelector(int)"/>).</summary>
    public const int DefaultSampleSize = 4096;

    private const uint MagnitudeMask = 0x7FFF_FFFFu;
    private const uint Infinity = 0x7F80_0000u;

    /// <summary>
    /// Whether the candidate passes compare eight values at once (Vector256: AVX2, and AVX-512 machines too). Not 16 with
    /// Vector512: a pass is bound by memory (one compare per 4 bytes read), and Zen 4 splits a 512-bit operation in two.
    /// </summary>
    internal static readonly bool Vectorized = Vector256.IsHardwareAccelerated;

    /// <summary>
    /// The digits of |x|'s 31 bits a selection over all the values histograms: two passes with up to 2¹⁶ buckets (the
    /// selection before decision 0134, unchanged).
    /// </summary>
    private static readonly int[] WideDigits = [15, 16];

    /// <summary>Digits for a few thousand values (the sample, the candidates): three passes, a histogram of 2¹¹ buckets to clear and scan.</summary>
    private static readonly int[] NarrowDigits = [11, 10, 10];

    private readonly int _sampleSize;
    private readonly int[] _histogram = new int[1 << 16];
    private uint[] _sample = [];
    private uint[] _candidateMagnitudes = [];
    private uint[] _scratch = [];
    private int[] _candidateIndices = [];

    /// <param name="sampleSize">Values the sampled threshold is guessed from, every (n / sampleSize)-th (at least 16).</param>
    public TopKSelector(int sampleSize = DefaultSampleSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(sampleSize, 16);
        _sampleSize = sampleSize;
    }

    /// <summary>Candidates the last <see cref="Select"/> selected among: n when it ran over all the values.</summary>
    public int LastCandidates { get; private set; }

    /// <summary>True when the last <see cref="Select"/> guessed a threshold and the guess failed (it then ran over all the values).</summary>
    public bool LastFellBack { get; private set; }

    /// <summary>Writes the indices of the <paramref name="k"/> largest |values| into <paramref name="indices"/>[..k], ascending.</summary>
    public void Select(ReadOnlySpan<float> values, int k, Span<int> indices)
    {
        var pass = new ValuesPass(values);
        Select(ref pass, k, indices);
    }

    /// <summary>
    /// <see cref="Select(ReadOnlySpan{float}, int, Span{int})"/> over the values that <paramref name="pass"/> produces:
    /// the threshold is guessed from values it peeks at, and the candidates are collected while it produces them all
    /// (one pass over memory for both; <see cref="ICandidatePass"/>).
    /// </summary>
    internal void Select<TPass>(ref TPass pass, int k, Span<int> indices) where TPass : ICandidatePass, allows ref struct
    {
        CheckArguments(pass.Length, k, indices);
        LastFellBack = false;
        LastCandidates = pass.Length;
        if (SampledThreshold(ref pass, k) is not { } threshold)
        {
            pass.Run(MagnitudeMask, [], []);
            SelectExact(pass.Values, k, indices);
            return;
        }
        int count = pass.Run(threshold, _candidateIndices, _candidateMagnitudes);
        if (count < k)
        {
            // Fewer than k at or above the guess (or more than there is room for, count < 0): the guess was wrong.
            LastFellBack = true;
            SelectExact(pass.Values, k, indices);
            return;
        }
        var magnitudes = _candidateMagnitudes.AsSpan(0, count);
        if (magnitudes.ContainsAnyInRange(Infinity + 1, MagnitudeMask))
            HalfFloats.ThrowIfNaN(pass.Values);   // a NaN's magnitude is above every threshold: it is always a candidate
        LastCandidates = count;
        Take(magnitudes, _candidateIndices.AsSpan(0, count), k, indices, NarrowDigits, _scratch);
    }

    /// <summary>
    /// <see cref="Select(ReadOnlySpan{float}, int, Span{int})"/>'s result, always by the exact radix selection over all
    /// the values (what it falls back to; the selection before decision 0134).
    /// </summary>
    public void SelectExact(ReadOnlySpan<float> values, int k, Span<int> indices)
    {
        CheckArguments(values.Length, k, indices);
        HalfFloats.ThrowIfNaN(values);
        Take(MemoryMarshal.Cast<float, uint>(values), [], k, indices, WideDigits, []);
    }

    /// <summary>The kept count for a fraction of <paramref name="length"/> values: ⌈F·n⌉, at least 1 (0 for no values).</summary>
    public static int KeptCount(int length, double fraction)
    {
        if (!(fraction > 0 && fraction <= 1))
            throw new ArgumentOutOfRangeException(nameof(fraction), fraction, "the fraction kept must be in (0, 1]");
        return length == 0 ? 0 : (int)Math.Clamp(Math.Ceiling(fraction * length - 1e-9), 1, length);
    }

    /// <summary>
    /// A threshold t whose candidates (|x| ≥ t) very likely number k to about 2·k: the r-th largest magnitude of every
    /// (n/s)-th value, r the sample's expected count above the k-th plus a margin, 1.25·μ + 3·√μ + 2 for μ = k·s/n (the
    /// count above the k-th among s values drawn at random is binomial, standard deviation ≤ √μ). Null when guessing is
    /// not worth it (no more values than twice the sample, k a large part of them, or a guess of 0, which takes every value);
    /// room is made here for the candidates it should yield, with a margin.
    /// </summary>
    private uint? SampledThreshold<TPass>(ref TPass pass, int k) where TPass : ICandidatePass, allows ref struct
    {
        int n = pass.Length;
        if (k == 0 || n < 2 * _sampleSize)
            return null;
        int stride = n / _sampleSize;
        double expected = (double)k * _sampleSize / n;
        int rank = (int)Math.Ceiling(1.25 * expected + 3 * Math.Sqrt(expected) + 2);
        if (rank > _sampleSize / 4)
            return null;
        if (_sample.Length != _sampleSize)
            _sample = new uint[_sampleSize];
        for (int j = 0; j < _sample.Length; j++)
            _sample[j] = BitConverter.SingleToUInt32Bits(pass.Peek(j * stride)) & MagnitudeMask;
        var (threshold, _) = KthLargest(_sample, rank, _histogram, NarrowDigits, _sample);
        if (threshold == 0)
            return null;
        int room = Math.Max(2 * k, 2 * rank * stride + 64);
        if (_candidateIndices.Length < room)
        {
            _candidateIndices = new int[room];
            _candidateMagnitudes = new uint[room];
            _scratch = new uint[room];
        }
        return threshold;
    }

    /// <summary>
    /// Every index i, ascending, with |values[i]| ≥ <paramref name="threshold"/> (bits), into <paramref name="at"/> and its
    /// magnitude into <paramref name="magnitudes"/>; the count, or −1 when there are more than <paramref name="at"/> has
    /// room for. One pass, eight values compared at once when <paramref name="vectorized"/> (<see cref="Vectorized"/> on
    /// this machine), else one by one; both give the same result, a test runs each.
    /// </summary>
    internal static int CollectCandidates(ReadOnlySpan<float> values, uint threshold, Span<int> at, Span<uint> magnitudes, bool vectorized)
    {
        var bits = MemoryMarshal.Cast<float, uint>(values);
        ref uint first = ref MemoryMarshal.GetReference(bits);
        int count = 0, i = 0;
        if (vectorized)
        {
            var limit = Vector256.Create((int)threshold);
            for (; i <= bits.Length - Vector256<uint>.Count; i += Vector256<uint>.Count)
                if (!CollectEight(Vector256.LoadUnsafe(ref first, (nuint)i), limit, bits, i, at, magnitudes, ref count))
                    return -1;
        }
        for (; i < bits.Length; i++)
            if (!CollectOne(bits, i, threshold, at, magnitudes, ref count))
                return -1;
        return count;
    }

    /// <summary>
    /// The candidate rule for the eight values <paramref name="values"/> = <paramref name="bits"/>[i..i+8]: each index whose
    /// |x| ≥ the threshold (<paramref name="limit"/>, the threshold's bits in every lane) is appended (<see cref="Append"/>);
    /// false when out of room. Magnitudes are below 2³¹: compared as signed 32-bit integers, their order is the same (one
    /// instruction on AVX2).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool CollectEight(Vector256<uint> values, Vector256<int> limit, ReadOnlySpan<uint> bits, int i, Span<int> at,
                                      Span<uint> magnitudes, ref int count)
    {
        uint found = Vector256.GreaterThanOrEqual((values & Vector256.Create(MagnitudeMask)).AsInt32(), limit).ExtractMostSignificantBits();
        return found == 0 || Append(bits, i, found, at, magnitudes, ref count);
    }

    /// <summary><see cref="CollectEight"/>'s rule for the one value <paramref name="bits"/>[i].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool CollectOne(ReadOnlySpan<uint> bits, int i, uint threshold, Span<int> at, Span<uint> magnitudes, ref int count) =>
        (bits[i] & MagnitudeMask) < threshold || Append(bits, i, 1, at, magnitudes, ref count);

    /// <summary>Appends the indices start + b for each set bit b of <paramref name="found"/>, ascending; false when out of room.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool Append(ReadOnlySpan<uint> bits, int start, ulong found, Span<int> at, Span<uint> magnitudes, ref int count)
    {
        for (; found != 0; found &= found - 1)
        {
            if (count == at.Length)
                return false;
            int i = start + BitOperations.TrailingZeroCount(found);
            at[count] = i;
            magnitudes[count++] = bits[i] & MagnitudeMask;
        }
        return true;
    }

    /// <summary>
    /// The k largest of <paramref name="bits"/>' magnitudes, ties to the earlier: their indices, ascending, into
    /// <paramref name="indices"/> (the position itself, or <paramref name="at"/>[position] when given).
    /// </summary>
    /// <param name="scratch">Room for the magnitudes of the k-th's bucket after each digit (<see cref="KthLargest"/>), or empty.</param>
    private void Take(ReadOnlySpan<uint> bits, ReadOnlySpan<int> at, int k, Span<int> indices, ReadOnlySpan<int> digits, Span<uint> scratch)
    {
        if (k == 0)
            return;
        var (threshold, above) = KthLargest(bits, k, _histogram, digits, scratch);
        int ties = k - above;
        int count = 0;
        for (int i = 0; i < bits.Length; i++)
        {
            uint magnitude = bits[i] & MagnitudeMask;
            if (magnitude > threshold || (magnitude == threshold && ties-- > 0))
                indices[count++] = at.IsEmpty ? i : at[i];
        }
    }

    /// <summary>
    /// T, the k-th largest magnitude of <paramref name="bits"/> (1 ≤ k ≤ its length), and how many lie strictly above it:
    /// one histogram pass per digit of |x|'s 31 bits, from the top (<paramref name="digits"/>: their widths), each over
    /// the values whose higher digits are those of the k-th, finding the bucket that holds it. With room in
    /// <paramref name="scratch"/> (as many as the values; it may be <paramref name="bits"/> itself, which is then
    /// overwritten) the bucket's magnitudes are copied there after each digit, and the next digit reads only them.
    /// </summary>
    private static (uint Threshold, int Above) KthLargest(ReadOnlySpan<uint> bits, int k, Span<int> histogram, ReadOnlySpan<int> digits,
                                                          Span<uint> scratch)
    {
        uint prefix = 0;
        int above = 0, decided = 0;
        foreach (int width in digits)
        {
            int shift = 31 - decided - width;
            uint digit = (1u << width) - 1;
            var counts = histogram[..(1 << width)];
            counts.Clear();
            foreach (uint b in bits)
            {
                uint magnitude = b & MagnitudeMask;
                if (magnitude >> (31 - decided) == prefix)   // decided = 0: every magnitude (below 2³¹), prefix 0
                    counts[(int)((magnitude >> shift) & digit)]++;
            }
            (int bucket, int bucketAbove) = BucketOfKth(counts, k - above);
            above += bucketAbove;
            prefix = (prefix << width) | (uint)bucket;
            decided += width;
            if (!scratch.IsEmpty && decided < 31)
            {
                int kept = 0;
                foreach (uint b in bits)   // reads ahead of where it writes when bits is scratch
                    if ((b & MagnitudeMask) >> (31 - decided) == prefix)
                        scratch[kept++] = b & MagnitudeMask;
                bits = scratch[..kept];
            }
        }
        return (prefix, above);
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

    private static void CheckArguments(int length, int k, Span<int> indices)
    {
        if (k < 0 || k > length)
            throw new ArgumentOutOfRangeException(nameof(k), k, $"k must be from 0 to the {length} values");
        if (indices.Length < k)
            throw new ArgumentException($"room for {indices.Length} indices, {k} needed", nameof(indices));
    }

    /// <summary>Values already there: peeking reads them, the pass only collects (<see cref="CollectCandidates"/>).</summary>
    private readonly ref struct ValuesPass(ReadOnlySpan<float> values) : ICandidatePass
    {
        private readonly ReadOnlySpan<float> _values = values;

        public int Length => _values.Length;

        public ReadOnlySpan<float> Values => _values;

        public float Peek(int index) => _values[index];

        public int Run(uint threshold, Span<int> at, Span<uint> magnitudes) => CollectCandidates(_values, threshold, at, magnitudes, Vectorized);
    }
}

/// <summary>
/// The values a <see cref="TopKSelector"/> selects from, as a pass over memory that produces them (e.g. the error feedback's
/// a ← r + g) and collects the candidates on the way, so that selecting does not read them again.
/// </summary>
internal interface ICandidatePass
{
    /// <summary>How many values the pass produces.</summary>
    int Length { get; }

    /// <summary>The values, once <see cref="Run"/> has produced them.</summary>
    ReadOnlySpan<float> Values { get; }

    /// <summary>The value the pass produces at <paramref name="index"/>, bit for bit, without producing it (before <see cref="Run"/>).</summary>
    float Peek(int index);

    /// <summary>
    /// Produces every value; collects each index with |x| ≥ <paramref name="threshold"/> (bits), ascending, into
    /// <paramref name="at"/> and its |x| bits into <paramref name="magnitudes"/>. Returns the count, or −1 when there were
    /// more than <paramref name="at"/> has room for (the values are produced all the same).
    /// </summary>
    int Run(uint threshold, Span<int> at, Span<uint> magnitudes);
}
