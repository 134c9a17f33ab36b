namespace DistSgd.Numerics.Data;

/// <summary>
/// An in-memory data set: <see cref="Count"/> samples of <see cref="FeatureCount"/> float32 features,
/// stored row-major in one flat array, and one target per sample.
/// </summary>
/// <remarks>
/// Classification when <see cref="ClassCount"/> &gt; 0: each target is a class index in
/// [0, ClassCount) stored as a float (exact for any realistic class count). Regression when
/// <see cref="ClassCount"/> = 0: each target is the real-valued response.
/// </remarks>
public sealed class Dataset
{
    public Dataset(string name, float[] features, int featureCount, float[] targets, int classCount)
    {
        ArgumentNullException.ThrowIfNull(features);
        ArgumentNullException.ThrowIfNull(targets);
        if (featureCount <= 0)
            throw new ArgumentOutOfRangeException(nameof(featureCount), featureCount, "a data set needs at least one feature");
        if (classCount < 0)
            throw new ArgumentOutOfRangeException(nameof(classCount), classCount, "the class count cannot be negative");
        if (features.Length != (long)targets.Length * featureCount)
            throw new ArgumentException(
                $"{name}: {features.Length} feature values do not make {targets.Length} samples of {featureCount} features");
        Name = name;
        Features = features;
        FeatureCount = featureCount;
        Targets = targets;
        ClassCount = classCount;
    }

    /// <summary>Where the data came from (a file, a generator), for messages and results.</summary>
    public string Name { get; }

    /// <summary>Row-major Count × FeatureCount features.</summary>
    public float[] Features { get; }

    public int FeatureCount { get; }

    /// <summary>One target per sample: the class index (classification) or the response (regression).</summary>
    public float[] Targets { get; }

    /// <summary>Number of classes; 0 for regression.</summary>
    public int ClassCount { get; }

    public int Count => Targets.Length;

    public bool IsClassification => ClassCount > 0;

    /// <summary>The features of sample <paramref name="index"/>.</summary>
    public ReadOnlySpan<float> Row(int index) => Features.AsSpan(index * FeatureCount, FeatureCount);

    /// <summary>A new data set holding the given samples, in the given order.</summary>
    public Dataset Select(ReadOnlySpan<int> indices, string? name = null)
    {
        var features = new float[indices.Length * FeatureCount];
        var targets = new float[indices.Length];
        for (int i = 0; i < indices.Length; i++)
        {
            Row(indices[i]).CopyTo(features.AsSpan(i * FeatureCount, FeatureCount));
            targets[i] = Targets[indices[i]];
        }
        return new Dataset(name ?? Name, features, FeatureCount, targets, ClassCount);
    }
}
