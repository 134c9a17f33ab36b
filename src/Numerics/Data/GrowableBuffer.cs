namespace DistSgd.Numerics.Data;

/// <summary>
/// An append-only buffer of unmanaged values that doubles as it grows (amortised O(1) per value, no boxing),
/// for readers that do not know the sample count until the end of the file.
/// </summary>
internal sealed class GrowableBuffer<T> where T : unmanaged
{
    private T[] _items;

    public GrowableBuffer(int initialCapacity = 1024) => _items = new T[Math.Max(initialCapacity, 16)];

    public int Count { get; private set; }

    public void Add(T value)
    {
        if (Count == _items.Length)
            Grow(Count + 1);
        _items[Count++] = value;
    }

    /// <summary>Appends <paramref name="length"/> zeroed values and returns them for the caller to fill.</summary>
    public Span<T> AppendZeroed(int length)
    {
        if (Count + length > _items.Length)
            Grow(Count + length);
        var span = _items.AsSpan(Count, length);
        span.Clear();
        Count += length;
        return span;
    }

    public ReadOnlySpan<T> AsSpan() => _items.AsSpan(0, Count);

    /// <summary>The values in an array of exactly <see cref="Count"/> elements (the backing array when it fits).</summary>
    public T[] ToArray() => Count == _items.Length ? _items : _items.AsSpan(0, Count).ToArray();

    private void Grow(int needed)
    {
        long capacity = Math.Max((long)_items.Length * 2, needed);
        if (needed > Array.MaxLength)
            throw new OutOfMemoryException($"more than {Array.MaxLength} values do not fit in one array");
        Array.Resize(ref _items, (int)Math.Min(capacity, Array.MaxLength));
    }
}
