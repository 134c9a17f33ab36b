using DistSgd.Numerics.Data;

namespace DistSgd.Numerics.Tests.Data;

public sealed class LibSvmReaderTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Reads_sparse_rows_as_dense_features_with_absent_entries_zero()
    {
        string path = _dir.WriteText("a.svm", "2 1:0.5 3:-1\n0 2:4 # a comment\n\n1\t1:1e1\t4:2\n");

        var data = LibSvmReader.Load(path);

        Assert.Equal((3, 4, 3), (data.Count, data.FeatureCount, data.ClassCount));
        Assert.Equal([0.5f, 0, -1, 0,   0, 4, 0, 0,   10, 0, 0, 2], data.Features);
        Assert.Equal([2f, 0f, 1f], data.Targets);
    }

    [Fact]
    public void Maps_the_binary_minus_one_plus_one_convention_to_classes_zero_and_one()
    {
        string path = _dir.WriteText("b.svm", "+1 1:1\n-1 1:2\n1 2:3\n");

        var data = LibSvmReader.Load(path);

        Assert.Equal([1f, 0f, 1f], data.Targets);
        Assert.Equal(2, data.ClassCount);
    }

    [Fact]
    public void Refuses_labels_that_mix_minus_one_with_class_indices()
    {
        string path = _dir.WriteText("c.svm", "-1 1:1\n1 1:1\n0 1:2\n");

        var e = Assert.Throws<DataFormatException>(() => LibSvmReader.Load(path));

        Assert.Equal(3, e.Line);
        Assert.Contains("line 1 has -1", e.Message);
    }

    [Fact]
    public void Reads_regression_targets_and_pads_to_a_declared_dimension()
    {
        string path = _dir.WriteText("d.svm", "-0.25 2:1\n3.5 1:2\n");

        var data = LibSvmReader.Load(path, new LibSvmOptions { Task = LearningTask.Regression, FeatureCount = 5 });

        Assert.Equal((2, 5, 0), (data.Count, data.FeatureCount, data.ClassCount));
        Assert.Equal([-0.25f, 3.5f], data.Targets);
        Assert.Equal(2f, data.Row(1)[0]);
    }

    [Fact]
    public void An_index_past_the_declared_dimension_is_reported_with_line_column_index_and_dimension()
    {
        string path = _dir.WriteText("e.svm", "0 1:1 4:1\n1 2:1 5:1\n");

        var e = Assert.Throws<DataFormatException>(() => LibSvmReader.Load(path, new LibSvmOptions { FeatureCount = 4 }));

        Assert.Equal(path, e.Path);
        Assert.Equal(2, e.Line);
        Assert.Equal(7, e.Column);
        Assert.Contains("index 5", e.Message);
        Assert.Contains("feature count 4", e.Message);
    }

    [Theory]
    [InlineData("0 3:1 2:1\n", 7, "above 3, found 2")]
    [InlineData("0 3:1 3:1\n", 7, "above 3, found 3")]
    public void A_non_ascending_index_is_reported(string text, int column, string detail)
    {
        string path = _dir.WriteText("f.svm", text);

        var e = Assert.Throws<DataFormatException>(() => LibSvmReader.Load(path));

        Assert.Equal((1, column), (e.Line, e.Column));
        Assert.Contains("ascend", e.Message);
        Assert.Contains(detail, e.Message);
    }

    [Theory]
    [InlineData("1 0:1\n", 3, "1-based")]
    [InlineData("1 -2:1\n", 3, "1-based")]
    [InlineData("1 1:1 7\n", 7, "expected index:value, found \"7\"")]
    [InlineData("1 x:1\n", 3, "feature index")]
    [InlineData("1 2:abc\n", 5, "expected a number after '2:', found \"abc\"")]
    [InlineData("yes 1:1\n", 1, "label")]
    [InlineData("0.5 1:1\n", 1, "class label")]
    public void A_malformed_token_is_reported_with_line_and_column(string text, int column, string detail)
    {
        string path = _dir.WriteText("g.svm", "0 1:1\n" + text);

        var e = Assert.Throws<DataFormatException>(() => LibSvmReader.Load(path));

        Assert.Equal((2, column), (e.Line, e.Column));
        Assert.Contains(detail, e.Message);
    }

    [Fact]
    public void A_file_without_samples_is_reported()
    {
        string path = _dir.WriteText("h.svm", "# only a comment\n\n");

        var e = Assert.Throws<DataFormatException>(() => LibSvmReader.Load(path));

        Assert.Contains("no samples", e.Message);
    }
}
