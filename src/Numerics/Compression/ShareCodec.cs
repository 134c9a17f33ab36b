using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using DistSgd.Numerics.Tensors;

namespace DistSgd.Numerics.Compression;

/// <summary>
/// A gradient share's payload in a <see cref="ShareEncoding"/>, both ways: dense 16-bit values, or sparse entries
/// (u32 index, value) in strictly ascending index order, little-endian. Allocation-free: the caller owns both buffers.
/// </summary>
/// <remarks>
/// The sender encodes values that are already what the wire delivers (<see cref="GradientCompressor.Compress"/>), so
/// encoding loses nothing and every receiver decodes the sender's own copy bit for bit. A sparse share sends its
/// non-zero values: a zero (of either sign) decodes as +0, which adds nothing to an average of shares whatever its sign.
/// Decoding judges what another node sent: a count, an index out of range or out of order, or a NaN is refused with the
/// reason, never thrown.
/// </remarks>
public static class ShareCodec
{
    /// <summary>
    /// Writes <paramref name="values"/> into <paramref name="destination"/>; returns the bytes written and the frame's
    /// count in <paramref name="count"/> (values when dense, entries when sparse).
    /// </summary>
    public static int Encode(ShareEncoding encoding, ReadOnlySpan<float> values, Span<byte> destination, out int count)
    {
        if (!encoding.IsSparse)
        {
            count = values.Length;
            int bytes = values.Length * encoding.ValueBytes;
            if (destination.Length < bytes)
                throw new ArgumentException($"room for {destination.Length} bytes, {bytes} needed", nameof(destination));
            switch (encoding.Precision)
            {
                case WirePrecision.Bf16:
                    HalfFloats.ToBf16(values, MemoryMarshal.Cast<byte, ushort>(destination[..bytes]));
                    break;
                case WirePrecision.Fp16:
                    HalfFloats.ToFp16(values, MemoryMarshal.Cast<byte, Half>(destination[..bytes]), encoding.Fp16Scale);
                    break;
                default:
                    MemoryMarshal.AsBytes(values).CopyTo(destination);
                    break;
            }
            return bytes;
        }
        int entry = encoding.EntryBytes;
        int written = 0;
        count = 0;
        var bits = MemoryMarshal.Cast<float, uint>(values);
        for (int i = NextNonZero(bits, 0); i < values.Length; i = NextNonZero(bits, i + 1))
        {
            float value = values[i];
            if (float.IsNaN(value))
                throw new ArgumentException($"value {i} is NaN: a gradient with NaN cannot be encoded for the wire (it has diverged)");
            if (written + entry > destination.Length)
                throw new ArgumentException($"more non-zero values than the {destination.Length / entry} entries there is room for", nameof(destination));
            var at = destination[written..];
            BinaryPrimitives.WriteInt32LittleEndian(at, i);
            switch (encoding.Precision)
            {
                case WirePrecision.Bf16:
                    BinaryPrimitives.WriteUInt16LittleEndian(at[4..], HalfFloats.ToBf16(value));
                    break;
                case WirePrecision.Fp16:
                    BinaryPrimitives.WriteHalfLittleEndian(at[4..], HalfFloats.ToFp16(value, encoding.Fp16Scale));
                    break;
                default:
                    BinaryPrimitives.WriteSingleLittleEndian(at[4..], value);
                    break;
            }
            written += entry;
            count++;
        }
        return written;
    }

    /// <summary>
    /// The first index from <paramref name="start"/> whose value is not ±0 (bits other than the sign), or the length: a
    /// top-k share is almost all zeros, skipped 32 values at a time.
    /// </summary>
    private static int NextNonZero(ReadOnlySpan<uint> bits, int start)
    {
        ref uint first = ref MemoryMarshal.GetReference(bits);
        int i = start;
        if (Vector256.IsHardwareAccelerated)
        {
            var magnitude = Vector256.Create(0x7FFF_FFFFu);
            for (; i <= bits.Length - 4 * Vector256<uint>.Count; i += 4 * Vector256<uint>.Count)
            {
                var any = Vector256.LoadUnsafe(ref first, (nuint)i) | Vector256.LoadUnsafe(ref first, (nuint)(i + 8))
                          | Vector256.LoadUnsafe(ref first, (nuint)(i + 16)) | Vector256.LoadUnsafe(ref first, (nuint)(i + 24));
                if ((any & magnitude) != Vector256<uint>.Zero)
                    break;
            }
        }
        for (; i < bits.Length; i++)
            if ((bits[i] & 0x7FFF_FFFFu) != 0)
                return i;
        return bits.Length;
    }

    /// <summary>
    /// Decodes a payload of <paramref name="count"/> values or entries into <paramref name="destination"/> (the share's
    /// values; a sparse share's are cleared first); null when it is valid, else why it is refused.
    /// </summary>
    public static string? Decode(ShareEncoding encoding, ReadOnlySpan<byte> payload, int count, Span<float> destination) =>
        Decode(encoding, payload, count, destination, out _);

    /// <summary>
    /// <see cref="Decode(ShareEncoding, ReadOnlySpan{byte}, int, Span{float})"/>, judging on the way whether every decoded
    /// value is finite (<paramref name="finite"/>: no ±∞; a NaN is refused), the rule of <see cref="FiniteValues.All"/>: a
    /// sparse share's entries only (its other values are +0), a dense share's values in the pass that looks for a NaN.
    /// </summary>
    public static string? Decode(ShareEncoding encoding, ReadOnlySpan<byte> payload, int count, Span<float> destination, out bool finite)
    {
        finite = false;
        if (payload.Length != encoding.PayloadBytes(count))
            return $"payload of {payload.Length} bytes for {count} {(encoding.IsSparse ? "entries" : "values")}, expected {encoding.PayloadBytes(count)}";
        if (!encoding.IsSparse)
        {
            if (count != destination.Length)
                return $"{count} values for a share of {destination.Length}";
            switch (encoding.Precision)
            {
                case WirePrecision.Bf16:
                    HalfFloats.FromBf16(MemoryMarshal.Cast<byte, ushort>(payload), destination);
                    break;
                case WirePrecision.Fp16:
                    HalfFloats.FromFp16(MemoryMarshal.Cast<byte, Half>(payload), destination, encoding.Fp16Scale);
                    break;
                default:
                    payload.CopyTo(MemoryMarshal.AsBytes(destination));
                    break;
            }
            finite = FiniteValues.All(destination);
            int nan = finite ? -1 : ((ReadOnlySpan<float>)destination).IndexOfNaN();
            return nan < 0 ? null : $"value {nan} is NaN";
        }
        int kept = encoding.KeptCount(destination.Length);
        if (count > kept)
            return $"{count} entries, at most {kept} kept of {destination.Length} values";
        destination.Clear();
        int previous = -1;
        bool infinite = false;
        for (int e = 0; e < count; e++)
        {
            var at = payload[(e * encoding.EntryBytes)..];
            int index = BinaryPrimitives.ReadInt32LittleEndian(at);
            if (index <= previous || index >= destination.Length)
                return $"entry {e} has index {index}: indices must ascend strictly from 0 to {destination.Length - 1} (previous {previous})";
            float value = encoding.Precision switch
            {
                WirePrecision.Bf16 => BitConverter.UInt32BitsToSingle((uint)BinaryPrimitives.ReadUInt16LittleEndian(at[4..]) << 16),
                WirePrecision.Fp16 => (float)BinaryPrimitives.ReadHalfLittleEndian(at[4..]) * (1f / encoding.Fp16Scale),
                _ => BinaryPrimitives.ReadSingleLittleEndian(at[4..]),
            };
            if (float.IsNaN(value))
                return $"entry {e} (index {index}) is NaN";
            infinite |= float.IsInfinity(value);
            destination[index] = value;
            previous = index;
        }
        finite = !infinite;
        return null;
    }
}
