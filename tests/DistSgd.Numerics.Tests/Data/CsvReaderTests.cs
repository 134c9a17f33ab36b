using DistSgd.Numerics.Data;

namespace DistSgd.Numerics.Tests.Data;

public sealed class CsvReaderTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Reads_a_headerless_file_with_the_label_in_the_first_column()
    {
        string path = _dir.WriteText("a.csv", "1,0.5,-2\n0,3,4e-1\r\n2,1.25,0\n");

        var data = CsvReader.Load(path);

        Assert.Equal((3, 2, 3), (data.Count, data.FeatureCount, data.ClassCount));
        Assert.Equal([0.5f, -2f, 3f, 0.4f, 1.25f, 0f], data.Features);
        Assert.Equal([1f, 0f, 2f], data.Targets);
        Assert.Equal(path, data.Name);
    }

    [Fact]
    public void Reads_a_header_and_a_label_in_the_last_column()
    {
        string path = _dir.WriteText("b.csv", "\uFEFFwidth,\"height, cm\",class\n1,2,0\n\n3,4,1");

        var data = CsvReader.Load(path, new CsvOptions { HasHeader = true, LabelColumn = -1 });

        Assert.Equal([1f, 2f, 3f, 4f], data.Features);
        Assert.Equal([0f, 1f], data.Targets);
        Assert.Equal(2, data.ClassCount);
    }

    [Fact]
    public void Reads_regression_targets_with_another_separator_and_a_middle_label_column()
    {
        string path = _dir.WriteText("c.tsv", "1\t-0.75\t2\n3\t\"1e3\"\t4\n");

        var data = CsvReader.Load(path, new CsvOptions
        {
            Separator = '\t', LabelColumn = 1, Task = LearningTask.Regression, Name = "tsv",
        });

        Assert.Equal([1f, 2f, 3f, 4f], data.Features);
        Assert.Equal([-0.75f, 1000f], data.Targets);
        Assert.Equal(0, data.ClassCount);
        Assert.Equal("tsv", data.Name);
    }

    [Fact]
    public void Uses_a_given_class_count_rather_than_the_largest_label()
    {
        string path = _dir.WriteText("d.csv", "0,1\n1,2\n");

        Assert.Equal(10, CsvReader.Load(path, new CsvOptions { ClassCount = 10 }).ClassCount);
    }

    [Fact]
    public void A_non_numeric_cell_is_reported_with_its_line_column_and_text()
    {
        string path = _dir.WriteText("e.csv", "label,x,y\n0,1,2\n1,2,abc\n");

        var e = Assert.Throws<DataFormatException>(() => CsvReader.Load(path, new CsvOptions { HasHeader = true }));

        Assert.Equal(path, e.Path);
        Assert.Equal(3, e.Line);
        Assert.Equal(3, e.Column);
        Assert.Contains("\"abc\"", e.Message);
        Assert.StartsWith($"{path}:3:3:", e.Message);
    }

    [Fact]
    public void An_empty_cell_is_reported_as_such()
    {
        string path = _dir.WriteText("f.csv", "0,1,2\n1,,2\n");

        var e = Assert.Throws<DataFormatException>(() => CsvReader.Load(path));

        Assert.Equal((2, 2), (e.Line, e.Column));
        Assert.Contains("empty cell", e.Message);
    }

    [Theory]
    [InlineData("0,1,2\n1,2\n", 2)]
    [InlineData("0,1,2\n1,2,3,4\n", 4)]
    public void A_ragged_row_is_reported_with_expected_and_found_column_counts(string text, int found)
    {
        string path = _dir.WriteText("g.csv", text);

        var e = Assert.Throws<DataFormatException>(() => CsvReader.Load(path));

        Assert.Equal(2, e.Line);
        Assert.Contains($"expected 3 columns, found {found}", e.Message);
    }

    [Theory]
    [InlineData("1.5,2\n")]
    [InlineData("-1,2\n")]
    public void A_classification_label_must_be_a_whole_number_at_least_zero(string text)
    {
        string path = _dir.WriteText("h.csv", text);

        var e = Assert.Throws<DataFormatException>(() => CsvReader.Load(path));

        Assert.Equal((1, 1), (e.Line, e.Column));
        Assert.Contains("class label", e.Message);
    }

    [Fact]
    public void A_label_beyond_the_given_class_count_is_reported()
    {
        string path = _dir.WriteText("i.csv", "0,1\n5,2\n");

        var e = Assert.Throws<DataFormatException>(() => CsvReader.Load(path, new CsvOptions { ClassCount = 3 }));

        Assert.Equal(2, e.Line);
        Assert.Contains("0..2", e.Message);
    }

    [Theory]
    [InlineData("")]
    [InlineData("\n  \n")]
    public void An_empty_file_is_reported(string text)
    {
        string path = _dir.WriteText("j.csv", text);

        var e = Assert.Throws<DataFormatException>(() => CsvReader.Load(path));

        Assert.Contains("empty", e.Message);
    }

    [Fact]
    public void A_header_without_data_is_reported()
    {
        string path = _dir.WriteText("k.csv", "label,x\n");

        var e = Assert.Throws<DataFormatException>(() => CsvReader.Load(path, new CsvOptions { HasHeader = true }));

        Assert.Contains("after the header", e.Message);
    }

    [Theory]
    [InlineData(3)]
    [InlineData(-4)]
    public void A_label_column_out_of_range_is_reported(int labelColumn)
    {
        string path = _dir.WriteText("l.csv", "0,1,2\n");

        var e = Assert.Throws<DataFormatException>(() => CsvReader.Load(path, new CsvOptions { LabelColumn = labelColumn }));

        Assert.Equal(1, e.Line);
        Assert.Contains($"label column {labelColumn} is out of range", e.Message);
        Assert.Contains("3 columns", e.Message);
    }

    [Fact]
    public void Reads_a_file_larger_than_the_read_buffer_with_every_value_in_place()
    {
        // 40 000 rows × 11 cells is about 1.5 MB, more than one buffer fill, so lines straddle fills.
        var text = new System.Text.StringBuilder();
        for (int i = 0; i < 40_000; i++)
        {
            text.Append(i % 7);
            for (int j = 0; j < 10; j++)
                text.Append(',').Append(i + j * 0.5);
            text.Append('\n');
        }
        string path = _dir.WriteText("big.csv", text.ToString());

        var data = CsvReader.Load(path);

        Assert.Equal((40_000, 10, 7), (data.Count, data.FeatureCount, data.ClassCount));
        Assert.Equal(39_999f + 4.5f, data.Row(39_999)[9]);
        Assert.Equal(12_345f, data.Row(12_345)[0]);
        Assert.Equal(12_345 % 7, data.Targets[12_345]);
    }
}
