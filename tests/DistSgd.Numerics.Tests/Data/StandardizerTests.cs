using DistSgd.Numerics.Data;

namespace DistSgd.Numerics.Tests.Data;

public sealed class StandardizerTests
{
    // Feature 0 varies (mean 2, population σ √2), feature 1 is constant.
    private static Dataset Train() => new("train", [1f, 5f, 2f, 5f, 3f, 5f, 0f, 5f, 4f, 5f], 2, [0, 1, 0, 1, 0], 2);

    [Fact]
    public void Fit_computes_the_per_feature_mean_and_population_standard_deviation()
    {
        var standardizer = Standardizer.Fit(Train());

        Assert.Equal([2f, 5f], standardizer.Mean);
        Assert.Equal(MathF.Sqrt(2f), standardizer.Std[0], 6);
    }

    [Fact]
    public void A_constant_feature_gets_standard_deviation_one_and_maps_to_zero_not_NaN()
    {
        var standardized = Standardizer.Fit(Train()).Apply(Train());

        Assert.Equal(1f, Standardizer.Fit(Train()).Std[1]);
        Assert.All(Enumerable.Range(0, 5), i => Assert.Equal(0f, standardized.Row(i)[1]));
        Assert.DoesNotContain(standardized.Features, float.IsNaN);
    }

    [Fact]
    public void Standardised_training_features_have_mean_zero_and_standard_deviation_one()
    {
        var data = Synthetic.GaussianBlobs(1000, 3, 4, spread: 2, seed: 5);

        var standardized = Standardizer.Fit(data).Apply(data);

        for (int j = 0; j < 3; j++)
        {
            var column = Enumerable.Range(0, data.Count).Select(i => (double)standardized.Row(i)[j]).ToArray();
            Assert.Equal(0, column.Average(), 5);
            Assert.Equal(1, MathNet.Numerics.Statistics.Statistics.PopulationStandardDeviation(column), 5);
        }
    }

    [Fact]
    public void Test_data_is_transformed_with_the_training_statistics_only()
    {
        var standardizer = Standardizer.Fit(Train());
        var test = new Dataset("test", [6f, 7f], 2, [1f], 2);

        var standardized = standardizer.Apply(test);

        // (6 − 2)/√2 and (7 − 5)/1: the test set's own statistics (a single sample) play no part.
        Assert.Equal(4f / MathF.Sqrt(2f), standardized.Features[0], 5);
        Assert.Equal(2f, standardized.Features[1]);
        Assert.Equal([6f, 7f], test.Features);
        Assert.Equal([2f, 5f], standardizer.Mean);
    }

    [Fact]
    public void Saved_statistics_rebuild_a_standardiser_that_transforms_identically()
    {
        var fitted = Standardizer.Fit(Train());
        var rebuilt = new Standardizer(fitted.Mean, fitted.Std);
        var data = Train();

        rebuilt.ApplyInPlace(data);

        Assert.Equal(fitted.Apply(Train()).Features, data.Features);
    }

    [Fact]
    public void Refuses_a_data_set_of_another_dimension_and_a_zero_standard_deviation()
    {
        var standardizer = Standardizer.Fit(Train());

        var shape = Assert.Throws<ArgumentException>(() => standardizer.Apply(new Dataset("wide", [1f, 2f, 3f], 3, [0f], 1)));
        Assert.Contains("fitted on 2 features, found 3", shape.Message);
        Assert.Throws<ArgumentException>(() => new Standardizer([0f], [0f]));
    }
}
