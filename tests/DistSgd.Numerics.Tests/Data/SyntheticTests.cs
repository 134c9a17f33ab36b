using DistSgd.Numerics.Data;

namespace DistSgd.Numerics.Tests.Data;

public sealed class SyntheticTests
{
    [Fact]
    public void Linear_regression_data_is_the_same_for_the_same_seed_and_differs_for_another()
    {
        var a = Synthetic.LinearRegression(200, 5, noiseStd: 0.1, seed: 7);
        var b = Synthetic.LinearRegression(200, 5, noiseStd: 0.1, seed: 7);
        var c = Synthetic.LinearRegression(200, 5, noiseStd: 0.1, seed: 8);

        Assert.Equal(a.Data.Features, b.Data.Features);
        Assert.Equal(a.Data.Targets, b.Data.Targets);
        Assert.Equal(a.TrueWeights, b.TrueWeights);
        Assert.Equal(a.TrueBias, b.TrueBias);
        Assert.NotEqual(a.Data.Features, c.Data.Features);
    }

    [Fact]
    public void Noiseless_linear_regression_targets_are_exactly_the_true_linear_function()
    {
        var (data, weights, bias) = Synthetic.LinearRegression(50, 4, noiseStd: 0, seed: 3);

        Assert.Equal(0, data.ClassCount);
        Assert.Equal(4, weights.Length);
        for (int i = 0; i < data.Count; i++)
        {
            double y = bias;
            for (int j = 0; j < 4; j++)
                y += (double)weights[j] * data.Row(i)[j];
            Assert.Equal((float)y, data.Targets[i]);
        }
    }

    [Fact]
    public void Linear_regression_noise_has_the_requested_standard_deviation()
    {
        var (data, weights, bias) = Synthetic.LinearRegression(20_000, 3, noiseStd: 0.5, seed: 11);

        var residuals = Enumerable.Range(0, data.Count).Select(i =>
            data.Targets[i] - (bias + weights[0] * data.Row(i)[0] + weights[1] * data.Row(i)[1] + weights[2] * data.Row(i)[2]));

        Assert.Equal(0.5, MathNet.Numerics.Statistics.Statistics.StandardDeviation(residuals.Select(r => (double)r)), 0.02);
    }

    [Fact]
    public void Gaussian_blobs_are_deterministic_balanced_and_each_sample_is_nearest_its_own_class_mean()
    {
        var data = Synthetic.GaussianBlobs(300, 2, classCount: 3, spread: 0.5, seed: 42);
        var again = Synthetic.GaussianBlobs(300, 2, classCount: 3, spread: 0.5, seed: 42);

        Assert.Equal(data.Features, again.Features);
        Assert.Equal((300, 2, 3), (data.Count, data.FeatureCount, data.ClassCount));
        Assert.All(Enumerable.Range(0, 3), k => Assert.Equal(100, data.Targets.Count(t => t == k)));

        // Centres are spread over [-10, 10]² and blobs have σ = 0.5, so classes separate cleanly.
        var means = Enumerable.Range(0, 3).Select(k =>
        {
            var rows = Enumerable.Range(0, data.Count).Where(i => data.Targets[i] == k).ToList();
            return (X: rows.Average(i => data.Row(i)[0]), Y: rows.Average(i => data.Row(i)[1]));
        }).ToArray();
        int misplaced = Enumerable.Range(0, data.Count).Count(i =>
        {
            var (x, y) = (data.Row(i)[0], data.Row(i)[1]);
            int nearest = Enumerable.Range(0, 3).MinBy(k => Math.Pow(x - means[k].X, 2) + Math.Pow(y - means[k].Y, 2));
            return nearest != (int)data.Targets[i];
        });
        Assert.True(misplaced <= 3, $"{misplaced} of 300 samples are nearer another class's mean");
    }
}
