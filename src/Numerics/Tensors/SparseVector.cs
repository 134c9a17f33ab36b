using System.Runtime.InteropServices;

namespace DistSgd.Numerics.Tensors;

/// <summary>
/// A vector of <see cref="Length"/> values that are +0 but at its entries, held compact: the entries' indices, strictly
/// ascending and below <see cref="Length"/>, and their values. A sparse (top-k) share as a receiver decodes it
/// (<see cref="Compression.ShareCodec.DecodeEntries"/>) and as a sender's compressor kept it
/// (<see cref="Compression.GradientCompressor.Compress(Span{float}, SparseVector)"/>), so a step can average the shares'
/// entries alone (<see cref="Optim.SgdOptimizer.AverageEntriesAndStep"/>, decision 0141) instead of N dense vectors.
/// </summary>
/// <remarks>
/// Reused: made once with room for a share's kept count and refilled for each share (nothing allocated per step). Only
/// this assembly fills it, always checking the order and the range, so a consumer may rely on both.
/// </remarks>
public sealed class SparseVector
{
    private readonly int[] _indices;
    private readonly float[] _values;

    /// <param name="length">Values of the whole vector (a share's: the model's parameter count).</param>
    /// <param name="capacity">Entries there is room for (a sparse encoding's kept count).</param>
    public SparseVector(int length, int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(length);
        ArgumentOutOfRangeException.ThrowIfNegative(capacity);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(capacity, length);
        Length = length;
        _indices = new int[capacity];
        _values = new float[capacity];
    }

    /// <summary>Values of the whole vector.</summary>
    public int Length { get; }

    /// <summary>Entries there is room for.</summary>
    public int Capacity => _indices.Length;

    /// <summary>Entries held now.</summary>
    public int Count { get; private set; }

    /// <summary>The entries' indices, strictly ascending, each below <see cref="Length"/>.</summary>
    public ReadOnlySpan<int> Indices => _indices.AsSpan(0, Count);

    /// <summary>The entries' values, in the order of <see cref="Indices"/>.</summary>
    public ReadOnlySpan<float> Values => _values.AsSpan(0, Count);

    /// <summary>entries ← the values of <paramref name="share"/> that are not ±0, in index order (a dense scan).</summary>
    public void Collect(ReadOnlySpan<float> share)
    {
        if (share.Length != Length)
            throw new ArgumentException($"a share of {share.Length} values for entries of {Length}", nameof(share));
        Count = 0;
        var bits = MemoryMarshal.Cast<float, uint>(share);
        for (int i = 0; i < bits.Length; i++)
        {
            int skipped = bits[i..].IndexOfAnyExcept(0u, 0x8000_0000u);   // ±0, vectorized
            if (skipped < 0)
                break;
            i += skipped;
            Append(i, share[i]);
        }
    }

    /// <summary>
    /// entries ← the values of <paramref name="share"/> at <paramref name="kept"/> (strictly ascending) that are not ±0: a
    /// compressor's selection, read without scanning the share.
    /// </summary>
    internal void Collect(ReadOnlySpan<float> share, ReadOnlySpan<int> kept)
    {
        Count = 0;
        foreach (int i in kept)
            if (share[i] != 0)
                Append(i, share[i]);
    }

    /// <summary>No entries (the buffer stays).</summary>
    public void Clear() => Count = 0;

    /// <summary>share[i] ← v for each entry (i, v); the share's other values are left as they are (+0 in a share the caller keeps clear).</summary>
    public void ScatterInto(Span<float> share)
    {
        CheckLength(share.Length);
        var indices = Indices;
        var values = Values;
        for (int e = 0; e < indices.Length; e++)
            share[indices[e]] = values[e];
    }

    /// <summary>share[i] ← +0 for each entry's i: a share that held only these entries is all +0 again (O(entries), not O(length)).</summary>
    public void ClearIn(Span<float> share)
    {
        CheckLength(share.Length);
        foreach (int i in Indices)
            share[i] = 0;
    }

    /// <summary>Appends an entry whose index the caller checked: above the last one, below <see cref="Length"/>.</summary>
    internal void Add(int index, float value)
    {
        _indices[Count] = index;
        _values[Count] = value;
        Count++;
    }

    private void Append(int index, float value)
    {
        if (Count == Capacity)
            throw new ArgumentException($"more than the {Capacity} entries there is room for (index {index})");
        Add(index, value);
    }

    private void CheckLength(int length)
    {
        if (length != Length)
            throw new ArgumentException($"a share of {length} values for entries of {Length}");
    }
}
