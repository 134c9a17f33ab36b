using System.Globalization;
using DistSgd.Host.Results;
using DistSgd.Host.Runs;
using DistSgd.Host.Tests.Results;

namespace DistSgd.Host.Tests.Runs;

public class BenchRunTests
{
    [Fact]
    public void Bench_compares_the_modes_on_a_tiny_data_set_and_writes_the_table_and_plots()
    {
        using var temp = new TempFolder();
        var outcome = CliRunner.Run("bench", "--dataset", "blobs", "--samples", "400", "--hidden", "8", "--epochs", "2",
                                    "--batch-size", "32", "--worker-counts", "2", "--transports", "direct", "--out", temp["bench"]);
        Assert.True(outcome.ExitCode == 0, outcome.Error + outcome.Output);
        ResultsFolderTests.AssertNoControlCodes(outcome.Output);

        var csv = File.ReadAllLines(Path.Combine(temp["bench"], BenchRun.CsvFileName));
        Assert.Equal(BenchRun.CsvHeader, csv[0]);
        var rows = csv.Skip(1).Select(l => l.Split(',')).ToList();
        Assert.Equal(["sequential", "centralized", "decentralized"], rows.Select(r => r[0]));
        Assert.Equal(["1", "2", "2"], rows.Select(r => r[2]));
        Assert.Equal(["32", "16", "16"], rows.Select(r => r[3]));   // the same global batch
        var header = BenchRun.CsvHeader.Split(',');
        double Value(string[] row, string column) => double.Parse(row[Array.IndexOf(header, column)], CultureInfo.InvariantCulture);
        Assert.Equal(1.0, Value(rows[0], "speedup"));
        foreach (var row in rows.Skip(1))
        {
            Assert.Equal(Value(row, "speedup") / 2, Value(row, "efficiency"), 12);
            Assert.True(Value(row, "bytes_per_step") > 0);
            Assert.InRange(Value(row, "final_test_accuracy"), 0.0, 1.0);
        }
        // Centralized and decentralized with the same workers and batch train the same model.
        Assert.Equal(Value(rows[1], "final_test_accuracy"), Value(rows[2], "final_test_accuracy"));

        string table = File.ReadAllText(Path.Combine(temp["bench"], BenchRun.TableFileName));
        Assert.Contains("| centralized 2×16, direct | 2 |", table);
        Assert.Contains(table.Trim(), outcome.Output);
        Assert.Equal((RunPlots.Width, RunPlots.Height), ResultsFolderTests.PngSize(Path.Combine(temp["bench"], BenchRun.SpeedupPlot)));
        ResultsFolderTests.PngSize(Path.Combine(temp["bench"], BenchRun.AccuracyPlot));
        Assert.True(File.Exists(Path.Combine(temp["bench"], "runs", "centralized-2-direct-1", RunFiles.ModelFileName)));
    }

    [Fact]
    public void Bench_refuses_a_global_batch_that_the_worker_counts_do_not_divide()
    {
        using var temp = new TempFolder();
        var outcome = CliRunner.Run("bench", "--dataset", "blobs", "--batch-size", "30", "--worker-counts", "1,4", "--out", temp["bench"]);
        Assert.Equal(2, outcome.ExitCode);
        Assert.Contains("--batch-size 30", outcome.Error);
        Assert.Contains("found 4", outcome.Error);
    }

    [Fact]
    public void Median_of_an_even_count_is_the_mean_of_the_middle_two() =>
        Assert.Equal(2.5, BenchRun.Median([4, 1, 2, 3]));
}
