using MathNet.Numerics.Distributions;

namespace DistSgd.Numerics.Data;

/// <summary>A generated regression problem together with the parameters that generated it, so a test can
/// check that training recovers them.</summary>
public sealed record SyntheticRegression(Dataset Data, float[] TrueWeights, float TrueBias);

/// <summary>
/// Generated data sets with known structure, deterministic per seed: the same arguments give the same
/// floats, run after run (draws come from a <see cref="System.Random"/> seeded explicitly, whose sequence
/// .NET keeps stable for a given seed, through MathNet's distributions, in a fixed order).
/// </summary>
public static class Synthetic
{
    /// <summary>
    /// y = w·x + b + ε with x ~ N(0, I), w ~ N(0, I), b ~ N(0, 1) and ε ~ N(0, noiseStd²).
    /// </summary>
    public static SyntheticRegression LinearRegression(int count, int featureCount, double noiseStd, int seed)
    {
        CheckShape(count, featureCount);
        ArgumentOutOfRangeException.ThrowIfNegative(noiseStd);
        var random = new Random(seed);

        var draws = new double[featureCount];
        Normal.Samples(random, draws, 0, 1);
        var weights = Array.ConvertAll(draws, d => (float)d);
        float bias = (float)Normal.Sample(random, 0, 1);

        var features = new float[count * featureCount];
        var targets = new float[count];
        for (int i = 0; i < count; i++)
        {
            Normal.Samples(random, draws, 0, 1);
            var row = features.AsSpan(i * featureCount, featureCount);
            double y = bias;
            for (int j = 0; j < featureCount; j++)
            {
                row[j] = (float)draws[j];
                y += (double)weights[j] * row[j];
            }
            double noise = noiseStd > 0 ? Normal.Sample(random, 0, noiseStd) : 0;
            targets[i] = (float)(y + noise);
        }
        var data = new Dataset($"linear-regression(n={count}, d={featureCount}, noise={noiseStd}, seed={seed})",
                               features, featureCount, targets, classCount: 0);
        return new SyntheticRegression(data, weights, bias);
    }

    /// <summary>
    /// <paramref name="classCount"/> Gaussian blobs: class centres drawn uniformly from [−10, 10]^d (as
    /// scikit-learn's make_blobs does), each sample = its class centre + N(0, spread²·I). Sample i has class
    /// i mod classCount, so classes are balanced and interleaved (any contiguous shard sees every class).
    /// </summary>
    public static Dataset GaussianBlobs(int count, int featureCount, int classCount, double spread, int seed)
    {
        CheckShape(count, featureCount);
        ArgumentOutOfRangeException.ThrowIfLessThan(classCount, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(spread);
        var random = new Random(seed);

        var centres = new double[classCount * featureCount];
        ContinuousUniform.Samples(random, centres, -10, 10);

        var draws = new double[featureCount];
        var features = new float[count * featureCount];
        var targets = new float[count];
        for (int i = 0; i < count; i++)
        {
            int label = i % classCount;
            if (spread > 0)
                Normal.Samples(random, draws, 0, spread);
            var centre = centres.AsSpan(label * featureCount, featureCount);
            var row = features.AsSpan(i * featureCount, featureCount);
            for (int j = 0; j < featureCount; j++)
                row[j] = (float)(centre[j] + draws[j]);
            targets[i] = label;
        }
        return new Dataset($"gaussian-blobs(n={count}, d={featureCount}, k={classCount}, spread={spread}, seed={seed})",
                           features, featureCount, targets, classCount);
    }

    private static void CheckShape(int count, int featureCount)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(featureCount, 1);
        if ((long)count * featureCount > Array.MaxLength)
            throw new ArgumentOutOfRangeException(nameof(count), $"{count} × {featureCount} features do not fit in one array");
    }
}
