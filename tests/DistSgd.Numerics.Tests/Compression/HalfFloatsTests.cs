using DistSgd.Numerics.Compression;

namespace DistSgd.Numerics.Tests.Compression;

/// <summary>bf16 and fp16 conversions: known answers at the edges, the SIMD path against a scalar reference, NaN refused.</summary>
public class HalfFloatsTests
{
    private static float Bits(uint bits) => BitConverter.UInt32BitsToSingle(bits);

    [Theory]
    [InlineData(0x00000000u, (ushort)0x0000)]   // +0
    [InlineData(0x80000000u, (ushort)0x8000)]   // −0
    [InlineData(0x7F800000u, (ushort)0x7F80)]   // +∞
    [InlineData(0xFF800000u, (ushort)0xFF80)]   // −∞
    [InlineData(0x3F800000u, (ushort)0x3F80)]   // 1
    [InlineData(0x3F808000u, (ushort)0x3F80)]   // 1 + 2⁻⁸: halfway, ties to even (down)
    [InlineData(0x3F818000u, (ushort)0x3F82)]   // 1 + 3·2⁻⁸: halfway, ties to even (up)
    [InlineData(0x3F808001u, (ushort)0x3F81)]   // just above halfway: up
    [InlineData(0x7F7FFFFFu, (ushort)0x7F80)]   // float.MaxValue: past bf16's largest finite, rounds to ∞
    [InlineData(0x00000001u, (ushort)0x0000)]   // smallest subnormal: rounds to +0
    [InlineData(0x00018000u, (ushort)0x0002)]   // subnormal halfway with an odd upper half: up to even
    [InlineData(0x00008000u, (ushort)0x0000)]   // subnormal halfway with an even upper half: down
    [InlineData(0x00010000u, (ushort)0x0001)]   // the smallest bf16 subnormal, exact
    [InlineData(0x807FFFFFu, (ushort)0x8080)]   // largest negative subnormal: rounds to −(smallest normal)
    public void Bf16_of_edge_values_rounds_to_nearest_even(uint input, ushort expected)
    {
        // Long enough for the vector loop, with the value both in a vector and in the scalar tail.
        var source = Enumerable.Repeat(Bits(input), 67).ToArray();
        var encoded = new ushort[source.Length];
        HalfFloats.ToBf16(source, encoded);
        Assert.All(encoded, e => Assert.Equal(expected, e));
        Assert.Equal(expected, HalfFloats.ToBf16(Bits(input)));

        var decoded = new float[source.Length];
        HalfFloats.FromBf16(encoded, decoded);
        Assert.All(decoded, d => Assert.Equal((uint)expected << 16, BitConverter.SingleToUInt32Bits(d)));
        HalfFloats.RoundToBf16(source);
        Assert.Equal(decoded, source);
    }

    [Fact]
    public void Bf16_vector_path_equals_a_scalar_reference_on_random_values()
    {
        var random = new Random(7);
        var source = new float[1000 + 13];
        for (int i = 0; i < source.Length; i++)
            source[i] = Bits((uint)random.NextInt64(0, 1L << 32)) is var x && float.IsNaN(x) ? 0f : x;
        var encoded = new ushort[source.Length];
        HalfFloats.ToBf16(source, encoded);
        for (int i = 0; i < source.Length; i++)
            Assert.Equal(ReferenceBf16(source[i]), encoded[i]);
    }

    /// <summary>
    /// Picks the nearer of the two bf16 neighbours of x by their distance in double, ties to the even one; past the
    /// largest finite bf16 the upper neighbour is ∞, valued 2¹²⁸ as IEEE rounding does.
    /// </summary>
    private static ushort ReferenceBf16(float x)
    {
        uint bits = BitConverter.SingleToUInt32Bits(x);
        uint down = bits & 0xFFFF0000u;
        if (down == bits)
            return (ushort)(bits >> 16);
        uint up = down + 0x10000u;
        double upValue = float.IsInfinity(Bits(up)) ? Math.CopySign(Math.Pow(2, 128), x) : Bits(up);
        double dDown = Math.Abs((double)x - Bits(down));
        double dUp = Math.Abs((double)x - upValue);
        if (dDown != dUp)
            return (ushort)((dDown < dUp ? down : up) >> 16);
        return (ushort)((((down >> 16) & 1) == 0 ? down : up) >> 16);
    }

    [Theory]
    [InlineData(3)]
    [InlineData(64)]
    [InlineData(66)]
    public void NaN_is_refused_naming_its_index(int at)
    {
        var source = new float[67];
        source[at] = float.NaN;
        var e = Assert.Throws<ArgumentException>(() => HalfFloats.ToBf16(source, new ushort[67]));
        Assert.Contains($"value {at} is NaN", e.Message);
        e = Assert.Throws<ArgumentException>(() => HalfFloats.RoundToBf16(source.ToArray()));
        Assert.Contains($"value {at} is NaN", e.Message);
        e = Assert.Throws<ArgumentException>(() => HalfFloats.ToFp16(source, new Half[67], 1));
        Assert.Contains($"value {at} is NaN", e.Message);
        e = Assert.Throws<ArgumentException>(() => HalfFloats.RoundToFp16(source.ToArray(), 1));
        Assert.Contains($"value {at} is NaN", e.Message);
    }

    [Theory]
    [InlineData(0f, 1f, 0f)]
    [InlineData(1f, 1f, 1f)]
    [InlineData(65504f, 1f, 65504f)]
    [InlineData(1e6f, 1f, 65504f)]                 // saturates instead of overflowing
    [InlineData(-1e6f, 1f, -65504f)]
    [InlineData(1e6f, 1024f, 65504f / 1024f)]
    [InlineData(5.9604645e-8f, 1f, 5.9604645e-8f)] // 2⁻²⁴, the smallest binary16 subnormal: exact
    [InlineData(2.9802322e-8f, 1f, 0f)]            // 2⁻²⁵: halfway to 0, ties to even (0)
    [InlineData(9.313226e-10f, 1f, 0f)]            // 2⁻³⁰ underflows without a scale …
    [InlineData(9.313226e-10f, 1024f, 9.313226e-10f)] // … and is exact with 2¹⁰
    [InlineData(1.0009766f, 1f, 1.0009766f)]       // 1 + 2⁻¹⁰: exact
    [InlineData(1.0004883f, 1f, 1f)]               // 1 + 2⁻¹¹: halfway, ties to even
    public void Fp16_round_trip_with_a_scale(float value, float scale, float expected)
    {
        var source = Enumerable.Repeat(value, 1029).ToArray();
        var halves = new Half[source.Length];
        HalfFloats.ToFp16(source, halves, scale);
        var decoded = new float[source.Length];
        HalfFloats.FromFp16(halves, decoded, scale);
        Assert.All(decoded, d => Assert.Equal(expected, d));
        HalfFloats.RoundToFp16(source, scale);
        Assert.Equal(decoded, source);
        Assert.Equal(expected, HalfFloats.RoundToFp16(value, scale));
    }

    [Fact]
    public void Fp16_keeps_signed_zeros_and_infinities()
    {
        float[] source = [-0f, 0f, float.PositiveInfinity, float.NegativeInfinity, 1e-12f, -1e-12f];
        var halves = new Half[source.Length];
        HalfFloats.ToFp16(source, halves, 1024);
        var decoded = new float[source.Length];
        HalfFloats.FromFp16(halves, decoded, 1024);
        Assert.Equal([0x80000000u, 0u, 0x7F800000u, 0xFF800000u, 0u, 0x80000000u],
                     decoded.Select(BitConverter.SingleToUInt32Bits).ToArray());
    }

    [Theory]
    [InlineData(0f)]
    [InlineData(3f)]
    [InlineData(-2f)]
    [InlineData(float.PositiveInfinity)]
    [InlineData(1f / (1 << 25))]
    public void A_scale_that_is_not_a_power_of_two_in_range_is_refused(float scale)
    {
        Assert.False(HalfFloats.IsScale(scale));
        Assert.Throws<ArgumentOutOfRangeException>(() => HalfFloats.ToFp16([1f], new Half[1], scale));
    }

    [Fact]
    public void Conversions_allocate_nothing()
    {
        var source = Enumerable.Range(0, 5000).Select(i => i * 0.001f).ToArray();
        var bf16 = new ushort[source.Length];
        var fp16 = new Half[source.Length];
        var back = new float[source.Length];
        void All()
        {
            HalfFloats.ToBf16(source, bf16);
            HalfFloats.FromBf16(bf16, back);
            HalfFloats.ToFp16(source, fp16, 1024);
            HalfFloats.FromFp16(fp16, back, 1024);
            HalfFloats.RoundToBf16(back);
            HalfFloats.RoundToFp16(back, 1024);
        }
        All();
        long before = GC.GetAllocatedBytesForCurrentThread();
        All();
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
