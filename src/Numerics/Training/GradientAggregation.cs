using System.Numerics.Tensors;

namespace DistSgd.Numerics.Training;

/// <summary>
/// Combines the gradients of several workers or peers into one, the way both distributed modes of
/// the seed do: ḡ = Σᵢ wᵢ·gᵢ / Σᵢ wᵢ, with wᵢ the number of samples behind gᵢ (so with equal batches
/// it is the plain mean Σ gᵢ / N).
/// </summary>
/// <remarks>
/// The shares are summed in the order given, never in arrival order: callers pass them sorted by
/// worker or node id, so every replica computes bit-identical results. A share with weight 0 (a worker
/// whose shard ran out this step) is skipped and may have an empty gradient.
/// </remarks>
public static class GradientAggregation
{
    /// <summary>Writes the weighted average of <paramref name="gradients"/> into <paramref name="result"/>; returns Σ wᵢ.</summary>
    public static long WeightedAverage(IReadOnlyList<ReadOnlyMemory<float>> gradients, IReadOnlyList<int> weights, Span<float> result)
    {
        if (gradients.Count != weights.Count)
            throw new ArgumentException($"{gradients.Count} gradients but {weights.Count} weights");
        result.Clear();
        long total = 0;
        for (int i = 0; i < gradients.Count; i++)
        {
            int weight = weights[i];
            if (weight < 0)
                throw new ArgumentOutOfRangeException(nameof(weights), weight, $"share {i} has a negative sample count");
            if (weight == 0)
                continue;
            var gradient = gradients[i].Span;
            if (gradient.Length != result.Length)
                throw new ArgumentException($"share {i} has {gradient.Length} values, expected {result.Length}");
            // result ← result + wᵢ·gᵢ
            TensorPrimitives.MultiplyAdd(gradient, weight, result, result);
            total += weight;
        }
        if (total > 0)
            TensorPrimitives.Multiply(result, 1f / total, result);
        return total;
    }
}
