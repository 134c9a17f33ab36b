using System.Numerics.Tensors;

namespace DistSgd.Numerics.Data;

/// <summary>
/// Maps raw pixel intensities 0..<c>maxValue</c> to [0, 1]: x ← x / maxValue. A fixed scale, not fitted to
/// data, so train and test are scaled identically with nothing to save.
/// </summary>
public static class PixelScaling
{
    public const float MaxPixelValue = 255f;

    /// <summary>A new data set with scaled features; <paramref name="data"/> is left as it was.</summary>
    public static Dataset Apply(Dataset data, float maxValue = MaxPixelValue)
    {
        ArgumentNullException.ThrowIfNull(data);
        CheckMax(maxValue);
        var features = GC.AllocateUninitializedArray<float>(data.Features.Length);
        // Division, not multiplication by 1/maxValue, so that maxValue maps to exactly 1.
        TensorPrimitives.Divide(data.Features, maxValue, features);
        return new Dataset(data.Name, features, data.FeatureCount, data.Targets, data.ClassCount);
    }

    /// <summary>Scales <paramref name="data"/>'s features in place (no copy of a large set). The targets are untouched.</summary>
    public static void ApplyInPlace(Dataset data, float maxValue = MaxPixelValue)
    {
        ArgumentNullException.ThrowIfNull(data);
        CheckMax(maxValue);
        TensorPrimitives.Divide(data.Features, maxValue, data.Features);
    }

    private static void CheckMax(float maxValue)
    {
        if (!(maxValue > 0) || !float.IsFinite(maxValue))
            throw new ArgumentOutOfRangeException(nameof(maxValue), maxValue, "the maximum pixel value must be positive and finite");
    }
}
