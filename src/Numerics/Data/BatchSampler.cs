namespace DistSgd.Numerics.Data;

// Provisional: replaced by the data branch's BatchSampler on merge.
public sealed class BatchSampler(int count, int seed)
{
    private readonly int[] _order = new int[count];

    public ReadOnlySpan<int> EpochOrder(int epoch)
    {
        for (int i = 0; i < _order.Length; i++)
            _order[i] = i;
        var random = new Random(unchecked(seed * 1_000_003 + epoch));
        random.Shuffle(_order);
        return _order;
    }

    public static void GatherBatch(Dataset data, ReadOnlySpan<int> indices, Span<float> features, Span<float> targets)
    {
        int d = data.FeatureCount;
        for (int i = 0; i < indices.Length; i++)
        {
            data.Row(indices[i]).CopyTo(features.Slice(i * d, d));
            targets[i] = data.Targets[indices[i]];
        }
    }
}
