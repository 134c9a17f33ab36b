using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;

namespace DistSgd.Numerics.Compression;

/// <summary>
/// Conversions between float32 and the two 16-bit wire formats, SIMD over spans, allocation-free, deterministic on
/// every machine (bit manipulation, or IEEE round-to-nearest-even in <see cref="TensorPrimitives.ConvertToHalf"/>).
/// </summary>
/// <remarks>
/// NaN has no place on the wire (a NaN gradient is a diverged one, and a frame carrying one is refused): every
/// encoding throws <see cref="ArgumentException"/> naming the index of the first NaN. ±0, ±∞ and subnormals convert.
/// The <c>RoundTo…</c> methods replace values by what the wire delivers, decode(encode(x)), in place: a sender uses
/// them so that its own copy of a share equals every receiver's, bit for bit.
/// </remarks>
public static class HalfFloats
{
    /// <summary>The largest finite binary16 value; fp16 encoding saturates there.</summary>
    public const float Fp16Max = 65504f;

    /// <summary>
    /// bf16 of each x: the upper 16 bits of x's float32 after rounding to nearest, ties to even:
    /// b = (bits + 0x7FFF + ((bits ≫ 16) &amp; 1)) ≫ 16. A carry rounds into the exponent, so values past bf16's largest
    /// finite value become ±∞, as in every bf16 implementation.
    /// </summary>
    public static void ToBf16(ReadOnlySpan<float> source, Span<ushort> destination)
    {
        CheckLengths(source.Length, destination.Length);
        var bits = MemoryMarshal.Cast<float, uint>(source);
        var nan = Vector<uint>.Zero;
        int i = 0;
        int width = Vector<uint>.Count;
        for (; i <= bits.Length - 2 * width; i += 2 * width)
        {
            var low = new Vector<uint>(bits[i..]);
            var high = new Vector<uint>(bits[(i + width)..]);
            nan |= NaNMask(low) | NaNMask(high);
            Vector.Narrow(Vector.ShiftRightLogical(RoundedBf16Bits(low), 16), Vector.ShiftRightLogical(RoundedBf16Bits(high), 16))
                  .CopyTo(destination[i..]);
        }
        for (; i < bits.Length; i++)
        {
            if (float.IsNaN(source[i]))
                throw NaNAt(i);
            destination[i] = (ushort)(RoundedBf16Bits(bits[i]) >> 16);
        }
        if (nan != Vector<uint>.Zero)
            throw NaNAt(source.IndexOfNaN());
    }

    /// <summary>float32 of each bf16: its bits shifted into the upper half (exact).</summary>
    public static void FromBf16(ReadOnlySpan<ushort> source, Span<float> destination)
    {
        CheckLengths(source.Length, destination.Length);
        var bits = MemoryMarshal.Cast<float, uint>(destination);
        int i = 0;
        int width = Vector<ushort>.Count;
        for (; i <= source.Length - width; i += width)
        {
            Vector.Widen(new Vector<ushort>(source[i..]), out var low, out var high);
            Vector.ShiftLeft(low, 16).CopyTo(bits[i..]);
            Vector.ShiftLeft(high, 16).CopyTo(bits[(i + width / 2)..]);
        }
        for (; i < source.Length; i++)
            bits[i] = (uint)source[i] << 16;
    }

    /// <summary>values ← FromBf16(ToBf16(values)), in place: the low 16 bits cleared after rounding.</summary>
    public static void RoundToBf16(Span<float> values)
    {
        var bits = MemoryMarshal.Cast<float, uint>(values);
        var nan = Vector<uint>.Zero;
        var upper = new Vector<uint>(0xFFFF0000u);
        int i = 0;
        for (; i <= bits.Length - Vector<uint>.Count; i += Vector<uint>.Count)
        {
            var v = new Vector<uint>(bits[i..]);
            nan |= NaNMask(v);
            (RoundedBf16Bits(v) & upper).CopyTo(bits[i..]);
        }
        for (; i < bits.Length; i++)
        {
            if (float.IsNaN(values[i]))
                throw NaNAt(i);
            bits[i] = RoundedBf16Bits(bits[i]) & 0xFFFF0000u;
        }
        if (nan != Vector<uint>.Zero)
            throw NaNAt(((ReadOnlySpan<float>)values).IndexOfNaN());
    }

    /// <summary>
    /// binary16 of x·<paramref name="scale"/>, finite values saturated at ±<see cref="Fp16Max"/> (±∞ stays ±∞), rounded to nearest even
    /// (<see cref="TensorPrimitives.ConvertToHalf"/>). The scale is a power of two, so scaling is exact and
    /// <see cref="FromFp16"/> undoes it exactly: it lifts small gradients out of binary16's underflow, as a loss scale does.
    /// </summary>
    public static void ToFp16(ReadOnlySpan<float> source, Span<Half> destination, float scale)
    {
        CheckLengths(source.Length, destination.Length);
        CheckScale(scale);
        ThrowIfNaN(source);
        Span<float> scaled = stackalloc float[Chunk];
        for (int i = 0; i < source.Length; i += Chunk)
        {
            int n = Math.Min(Chunk, source.Length - i);
            ScaleAndSaturate(source.Slice(i, n), scale, scaled[..n]);
            TensorPrimitives.ConvertToHalf(scaled[..n], destination.Slice(i, n));
        }
    }

    /// <summary>x = h / scale for each binary16 h (exact: the scale is a power of two).</summary>
    public static void FromFp16(ReadOnlySpan<Half> source, Span<float> destination, float scale)
    {
        CheckLengths(source.Length, destination.Length);
        CheckScale(scale);
        TensorPrimitives.ConvertToSingle(source, destination);
        TensorPrimitives.Multiply(destination, 1f / scale, destination);
    }

    /// <summary>values ← FromFp16(ToFp16(values, scale), scale), in place.</summary>
    public static void RoundToFp16(Span<float> values, float scale)
    {
        CheckScale(scale);
        ThrowIfNaN(values);
        Span<Half> halves = stackalloc Half[Chunk];
        for (int i = 0; i < values.Length; i += Chunk)
        {
            var part = values.Slice(i, Math.Min(Chunk, values.Length - i));
            ScaleAndSaturate(part, scale, part);
            TensorPrimitives.ConvertToHalf(part, halves[..part.Length]);
            TensorPrimitives.ConvertToSingle(halves[..part.Length], part);
            TensorPrimitives.Multiply(part, 1f / scale, part);
        }
    }

    /// <summary>bf16 rounding of one value (<see cref="RoundToBf16(Span{float})"/>); NaN stays NaN.</summary>
    public static float RoundToBf16(float value) =>
        BitConverter.UInt32BitsToSingle(RoundedBf16Bits(BitConverter.SingleToUInt32Bits(value)) & 0xFFFF0000u);

    /// <summary>The bf16 bits of one value (<see cref="ToBf16(ReadOnlySpan{float}, Span{ushort})"/>).</summary>
    public static ushort ToBf16(float value) => (ushort)(RoundedBf16Bits(BitConverter.SingleToUInt32Bits(value)) >> 16);

    /// <summary>The binary16 of one value times <paramref name="scale"/>, saturated (<see cref="ToFp16(ReadOnlySpan{float}, Span{Half}, float)"/>).</summary>
    public static Half ToFp16(float value, float scale) =>
        float.IsInfinity(value) ? (Half)value : (Half)Math.Clamp(value * scale, -Fp16Max, Fp16Max);

    /// <summary>fp16 rounding of one value (<see cref="RoundToFp16(Span{float}, float)"/>).</summary>
    public static float RoundToFp16(float value, float scale) => (float)ToFp16(value, scale) * (1f / scale);

    /// <summary>The index of the first NaN in <paramref name="values"/>, or −1.</summary>
    public static int IndexOfNaN(this ReadOnlySpan<float> values)
    {
        if (!TensorPrimitives.IsNaNAny(values))
            return -1;
        for (int i = 0; i < values.Length; i++)
            if (float.IsNaN(values[i]))
                return i;
        return -1;
    }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first NaN's index, if any.</summary>
    public static void ThrowIfNaN(ReadOnlySpan<float> values)
    {
        int at = values.IndexOfNaN();
        if (at >= 0)
            throw NaNAt(at);
    }

    /// <summary>True when <paramref name="scale"/> is a usable fp16 scale: a power of two from 2⁻²⁴ to 2²⁴.</summary>
    public static bool IsScale(float scale) =>
        float.IsFinite(scale) && scale > 0 && (BitConverter.SingleToUInt32Bits(scale) & 0x7FFFFF) == 0
        && scale >= 1f / (1 << 24) && scale <= 1 << 24;

    /// <summary>Values per stack chunk of the fp16 conversions (4 KiB of float32).</summary>
    private const int Chunk = 1024;

    /// <summary>x·scale clamped to ±<see cref="Fp16Max"/>; ±∞ stays ±∞ (may run in place).</summary>
    private static void ScaleAndSaturate(ReadOnlySpan<float> source, float scale, Span<float> destination)
    {
        if (TensorPrimitives.IsInfinityAny(source))
        {
            for (int i = 0; i < source.Length; i++)
                destination[i] = float.IsInfinity(source[i]) ? source[i] : Math.Clamp(source[i] * scale, -Fp16Max, Fp16Max);
            return;
        }
        TensorPrimitives.Multiply(source, scale, destination);
        TensorPrimitives.Clamp(destination, -Fp16Max, Fp16Max, destination);
    }

    private static uint RoundedBf16Bits(uint bits) => bits + 0x7FFFu + ((bits >> 16) & 1u);

    private static Vector<uint> RoundedBf16Bits(Vector<uint> bits) =>
        bits + new Vector<uint>(0x7FFFu) + (Vector.ShiftRightLogical(bits, 16) & Vector<uint>.One);

    /// <summary>All ones where the float32 bits are a NaN: exponent all ones and a mantissa ≠ 0, i.e. |bits| > 0x7F800000.</summary>
    private static Vector<uint> NaNMask(Vector<uint> bits) =>
        Vector.GreaterThan(bits & new Vector<uint>(0x7FFFFFFFu), new Vector<uint>(0x7F800000u));

    private static ArgumentException NaNAt(int index) =>
        new($"value {index} is NaN: a gradient with NaN cannot be encoded for the wire (it has diverged)");

    private static void CheckLengths(int source, int destination)
    {
        if (source != destination)
            throw new ArgumentException($"source has {source} values, destination {destination}");
    }

    private static void CheckScale(float scale)
    {
        if (!IsScale(scale))
            throw new ArgumentOutOfRangeException(nameof(scale), scale, "the fp16 scale must be a power of two from 2^-24 to 2^24");
    }
}
