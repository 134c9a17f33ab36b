namespace DistSgd.Numerics.Data;

/// <summary>
/// The input preprocessing a model was trained with, saved in its model file so evaluation and
/// prediction see inputs the same way: x′ = (x·Scale − Mean) / Std, per feature (the standardisation
/// part only when statistics are present). Statistics always come from the training set.
/// </summary>
public sealed record FeatureTransform
{
    public FeatureTransform(float scale, float[]? mean = null, float[]? std = null)
    {
        if (!(scale > 0) || !float.IsFinite(scale))
            throw new ArgumentOutOfRangeException(nameof(scale), scale, "the input scale must be a finite number > 0");
        if ((mean is null) != (std is null) || (mean is not null && mean.Length != std!.Length))
            throw new ArgumentException("mean and standard deviation must both be given, with one value per feature");
        if (std is not null && std.Any(s => !(s > 0) || !float.IsFinite(s)))
            throw new ArgumentException("every standard deviation must be a finite number > 0");
        Scale = scale;
        Mean = mean;
        Std = std;
    }

    /// <summary>No change: scale 1, no standardisation.</summary>
    public static FeatureTransform Identity { get; } = new(1f);

    public float Scale { get; }
    public float[]? Mean { get; }
    public float[]? Std { get; }

    public bool IsIdentity => Scale == 1f && Mean is null;

    /// <summary>
    /// Scale by <paramref name="scale"/> and, when <paramref name="standardize"/>, fit per-feature mean and
    /// standard deviation on <paramref name="train"/> (a constant feature gets std 1, so it maps to 0, not NaN).
    /// </summary>
    public static FeatureTransform Fit(Dataset train, float scale, bool standardize)
    {
        if (!standardize)
            return new FeatureTransform(scale);
        int d = train.FeatureCount;
        var sum = new double[d];
        var sumSquares = new double[d];
        for (int i = 0; i < train.Count; i++)
        {
            var row = train.Row(i);
            for (int j = 0; j < d; j++)
            {
                double x = row[j] * (double)scale;
                sum[j] += x;
                sumSquares[j] += x * x;
            }
        }
        var mean = new float[d];
        var std = new float[d];
        for (int j = 0; j < d; j++)
        {
            double m = sum[j] / train.Count;
            double variance = Math.Max(0, sumSquares[j] / train.Count - m * m);
            double s = Math.Sqrt(variance);
            mean[j] = (float)m;
            std[j] = s > 1e-6 ? (float)s : 1f;
        }
        return new FeatureTransform(scale, mean, std);
    }

    /// <summary>A new data set with the transform applied to every row.</summary>
    public Dataset Apply(Dataset data)
    {
        if (Mean is not null && Mean.Length != data.FeatureCount)
            throw new ArgumentException($"{data.Name} has {data.FeatureCount} features, the transform was fitted on {Mean.Length}");
        var features = (float[])data.Features.Clone();
        ApplyInPlace(features, data.FeatureCount);
        return new Dataset(data.Name, features, data.FeatureCount, data.Targets, data.ClassCount);
    }

    /// <summary>Applies the transform to row-major rows of <paramref name="featureCount"/> values, in place.</summary>
    public void ApplyInPlace(Span<float> rows, int featureCount)
    {
        if (Scale != 1f)
            System.Numerics.Tensors.TensorPrimitives.Multiply(rows, Scale, rows);
        if (Mean is null)
            return;
        for (int start = 0; start < rows.Length; start += featureCount)
        {
            var row = rows.Slice(start, featureCount);
            System.Numerics.Tensors.TensorPrimitives.Subtract(row, Mean, row);
            System.Numerics.Tensors.TensorPrimitives.Divide(row, Std!, row);
        }
    }
}
