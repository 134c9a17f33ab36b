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
/// The sender encodes values that are already what the wire delivers (<see cref="GradientCompressor.Compress(Span{float})"/>), so
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
        if (PayloadError(encoding, payload, count) is { } wrongSize)
            return wrongSize;
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
        if (CountError(encoding, count, destination.Length) is { } tooMany)
            return tooMany;
        destination.Clear();
        return DecodeSparse(encoding, payload, count, destination.Length, new DenseSink(destination), out finite);
    }

    /// <summary>
    /// Decodes a sparse payload of <paramref name="count"/> entries into <paramref name="entries"/> (compact, for a share of
    /// <see cref="SparseVector.Length"/> values), judging finiteness as <see cref="Decode(ShareEncoding, ReadOnlySpan{byte}, int, Span{float}, out bool)"/>
    /// does and refusing by the same rules with the same reasons; null when it is valid, else why it is refused (then no
    /// entries are left). O(entries): no dense share is touched.
    /// </summary>
    public static string? DecodeEntries(ShareEncoding encoding, ReadOnlySpan<byte> payload, int count, SparseVector entries, out bool finite)
    {
        if (!encoding.IsSparse)
            throw new ArgumentException($"{encoding} is dense: its shares have no entries", nameof(encoding));
        if (entries.Capacity < encoding.KeptCount(entries.Length))
            throw new ArgumentException($"room for {entries.Capacity} entries, {encoding} keeps {encoding.KeptCount(entries.Length)}", nameof(entries));
        finite = false;
        entries.Clear();
        if (PayloadError(encoding, payload, count) is { } wrongSize)
            return wrongSize;
        if (CountError(encoding, count, entries.Length) is { } tooMany)
            return tooMany;
        string? invalid = DecodeSparse(encoding, payload, count, entries.Length, new EntriesSink(entries), out finite);
        if (invalid is not null)
            entries.Clear();
        return invalid;
    }

    private static string? PayloadError(ShareEncoding encoding, ReadOnlySpan<byte> payload, int count) =>
        payload.Length == encoding.PayloadBytes(count) ? null
            : $"payload of {payload.Length} bytes for {count} {(encoding.IsSparse ? "entries" : "values")}, expected {encoding.PayloadBytes(count)}";

    private static string? CountError(ShareEncoding encoding, int count, int length) =>
        count <= encoding.KeptCount(length) ? null : $"{count} entries, at most {encoding.KeptCount(length)} kept of {length} values";

    /// <summary>
    /// The entries of a sparse payload, each checked (indices strictly ascending from 0 to <paramref name="length"/> − 1, no
    /// NaN) and handed to <paramref name="sink"/>; <paramref name="finite"/>: no entry is ±∞.
    /// </summary>
    private static string? DecodeSparse<TSink>(ShareEncoding encoding, ReadOnlySpan<byte> payload, int count, int length, TSink sink, out bool finite)
        where TSink : IEntrySink, allows ref struct
    {
        finite = false;
        int previous = -1;
        bool infinite = false;
        for (int e = 0; e < count; e++)
        {
            var at = payload[(e * encoding.EntryBytes)..];
            int index = BinaryPrimitives.ReadInt32LittleEndian(at);
            if (index <= previous || index >= length)
                return $"entry {e} has index {index}: indices must ascend strictly from 0 to {length - 1} (previous {previous})";
            float value = encoding.Precision switch
            {
                WirePrecision.Bf16 => BitConverter.UInt32BitsToSingle((uint)BinaryPrimitives.ReadUInt16LittleEndian(at[4..]) << 16),
                WirePrecision.Fp16 => (float)BinaryPrimitives.ReadHalfLittleEndian(at[4..]) * (1f / encoding.Fp16Scale),
                _ => BinaryPrimitives.ReadSingleLittleEndian(at[4..]),
            };
            if (float.IsNaN(value))
                return $"entry {e} (index {index}) is NaN";
            infinite |= float.IsInfinity(value);
            sink.Put(index, value);
            previous = index;
        }
        finite = !infinite;
        return null;
    }

    /// <summary>Where a sparse payload's checked entries go.</summary>
    private interface IEntrySink
    {
        void Put(int index, float value);
    }

    /// <summary>Into a dense share (cleared before).</summary>
    private readonly ref struct DenseSink(Span<float> destination) : IEntrySink
    {
        private readonly Span<float> _destination = destination;

        public void Put(int index, float value) => _destination[index] = value;
    }

    /// <summary>Into compact entries.</summary>
    private readonly struct EntriesSink(SparseVector entries) : IEntrySink
    {
        public void Put(int index, float value) => entries.Add(index, value);
    }
}
