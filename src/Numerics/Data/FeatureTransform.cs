namespace DistSgd.Numerics.Data;

/// <summary>
/// The input preprocessing a model was trained with, saved in its model file so evaluation and
/// prediction see inputs the same way: pixel scaling x ← x / <see cref="PixelMax"/> (1 = none), then,
/// when present, the <see cref="Standardizer"/> fitted on the (scaled) training set.
/// </summary>
public sealed record FeatureTransform
{
    public FeatureTransform(float pixelMax = 1f, Standardizer? standardizer = null)
    {
        if (!(pixelMax > 0) || !float.IsFinite(pixelMax))
            throw new ArgumentOutOfRangeException(nameof(pixelMax), pixelMax, "the pixel maximum must be a finite number > 0");
        PixelMax = pixelMax;
        Standardizer = standardizer;
    }

    /// <summary>No change.</summary>
    public static FeatureTransform Identity { get; } = new();

    /// <summary>Divisor of the pixel scaling; 1 when the inputs are not scaled.</summary>
    public float PixelMax { get; }

    public Standardizer? Standardizer { get; }

    /// <summary>Scales by 1/<paramref name="pixelMax"/> and, when asked, fits a standardiser on the scaled training set.</summary>
    public static FeatureTransform Fit(Dataset train, float pixelMax, bool standardize)
    {
        var scaled = pixelMax == 1f ? train : PixelScaling.Apply(train, pixelMax);
        return new FeatureTransform(pixelMax, standardize ? Standardizer.Fit(scaled) : null);
    }

    /// <summary>A new data set with the transform applied; <paramref name="data"/> is left as it was.</summary>
    public Dataset Apply(Dataset data)
    {
        var result = PixelMax == 1f
            ? new Dataset(data.Name, (float[])data.Features.Clone(), data.FeatureCount, data.Targets, data.ClassCount)
            : PixelScaling.Apply(data, PixelMax);
        Standardizer?.ApplyInPlace(result);
        return result;
    }

}
