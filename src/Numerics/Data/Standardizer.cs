using System.Numerics.Tensors;

namespace DistSgd.Numerics.Data;

/// <summary>
/// Per-feature standardisation x ← (x − μ) / σ, with μ and σ fitted on the training set only (fitting on
/// test data would leak it into the model). Save <see cref="Mean"/> and <see cref="Std"/> with a model and
/// rebuild with the constructor to transform new data the same way.
/// </summary>
public sealed class Standardizer
{
    // σ at or below this fraction of |μ| is float rounding noise around a constant, not a signal:
    // dividing by it would blow rounding errors up to unit scale (float32 epsilon ≈ 1.19e-7).
    private const double RelativeNoiseFloor = 1.2e-7;

    private readonly float[] _mean;
    private readonly float[] _std;

    /// <summary>Rebuilds a fitted standardiser from saved statistics. Every σ must be positive and finite.</summary>
    public Standardizer(float[] mean, float[] std)
    {
        ArgumentNullException.ThrowIfNull(mean);
        ArgumentNullException.ThrowIfNull(std);
        if (mean.Length == 0 || mean.Length != std.Length)
            throw new ArgumentException(
                $"expected one mean and one standard deviation per feature, found {mean.Length} means and {std.Length} deviations");
        int badMean = Array.FindIndex(mean, m => !float.IsFinite(m));
        if (badMean >= 0)
            throw new ArgumentException($"mean of feature {badMean} must be finite, found {mean[badMean]}", nameof(mean));
        int badStd = Array.FindIndex(std, s => !(s > 0) || !float.IsFinite(s));
        if (badStd >= 0)
            throw new ArgumentException($"standard deviation of feature {badStd} must be positive and finite, found {std[badStd]}", nameof(std));
        _mean = (float[])mean.Clone();
        _std = (float[])std.Clone();
    }

    /// <summary>Per-feature mean μ of the training set. Do not modify; it is the standardiser's state.</summary>
    public float[] Mean => _mean;

    /// <summary>Per-feature population standard deviation σ of the training set; 1 for a constant feature,
    /// so it maps to 0 instead of NaN. Do not modify.</summary>
    public float[] Std => _std;

    public int FeatureCount => _mean.Length;

    /// <summary>Fits μ_j = (1/n)·Σ x_ij and σ_j = √((1/n)·Σ (x_ij − μ_j)²), in double precision and two passes
    /// (the one-pass formula loses everything to cancellation when |μ| ≫ σ).</summary>
    public static Standardizer Fit(Dataset train)
    {
        ArgumentNullException.ThrowIfNull(train);
        int d = train.FeatureCount;
        int n = train.Count;
        if (n == 0)
            throw new ArgumentException($"{train.Name}: cannot fit a standardiser on an empty data set", nameof(train));

        var sum = new double[d];
        for (int i = 0; i < n; i++)
        {
            var row = train.Row(i);
            for (int j = 0; j < d; j++)
                sum[j] += row[j];
        }
        var mean = new double[d];
        for (int j = 0; j < d; j++)
            mean[j] = sum[j] / n;

        var squares = sum;
        Array.Clear(squares);
        for (int i = 0; i < n; i++)
        {
            var row = train.Row(i);
            for (int j = 0; j < d; j++)
            {
                double delta = row[j] - mean[j];
                squares[j] += delta * delta;
            }
        }

        var meanOut = new float[d];
        var stdOut = new float[d];
        for (int j = 0; j < d; j++)
        {
            double std = Math.Sqrt(squares[j] / n);
            meanOut[j] = (float)mean[j];
            stdOut[j] = std <= RelativeNoiseFloor * Math.Abs(mean[j]) || (float)std == 0 ? 1f : (float)std;
        }
        return new Standardizer(meanOut, stdOut);
    }

    /// <summary>A new, standardised data set; <paramref name="data"/> is left as it was.</summary>
    public Dataset Apply(Dataset data)
    {
        CheckShape(data);
        var features = GC.AllocateUninitializedArray<float>(data.Features.Length);
        Transform(data.Features, features, data.FeatureCount);
        return new Dataset(data.Name, features, data.FeatureCount, data.Targets, data.ClassCount);
    }

    /// <summary>Standardises <paramref name="data"/>'s features in place (no copy of a large set).</summary>
    public void ApplyInPlace(Dataset data)
    {
        CheckShape(data);
        Transform(data.Features, data.Features, data.FeatureCount);
    }

    private void Transform(ReadOnlySpan<float> source, Span<float> destination, int d)
    {
        for (int offset = 0; offset < source.Length; offset += d)
        {
            var row = destination.Slice(offset, d);
            TensorPrimitives.Subtract(source.Slice(offset, d), _mean, row);
            TensorPrimitives.Divide(row, _std, row);
        }
    }

    private void CheckShape(Dataset data)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (data.FeatureCount != FeatureCount)
            throw new ArgumentException(
                $"{data.Name}: the standardiser was fitted on {FeatureCount} features, found {data.FeatureCount}", nameof(data));
    }
}
