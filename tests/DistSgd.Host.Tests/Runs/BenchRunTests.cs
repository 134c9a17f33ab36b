using System.Globalization;
using DistSgd.Host.Results;
using DistSgd.Host.Runs;
using DistSgd.Host.Settings;
using DistSgd.Host.Tests.Results;

namespace DistSgd.Host.Tests.Runs;

public class BenchRunTests
{
    /// <summary>
    /// From the distsgd program each configuration runs in a child process (in-process, Akka.NET kept every terminated
    /// simulated cluster and its data reachable: 21 GB for the default bench): the table comes from the children's epochs.
    /// </summary>
    [Fact]
    public void Bench_from_the_program_runs_each_configuration_in_a_child_process()
    {
        using var temp = new TempFolder();
        using var bench = NodeProcess.Start(["bench", "--dataset", "blobs", "--samples", "400", "--hidden", "8", "--epochs", "2",
                                             "--batch-size", "32", "--worker-counts", "2", "--transports", "direct", "--out", temp["bench"]]);
        Assert.True(bench.WaitForExit(TimeSpan.FromSeconds(120)) == 0, bench.Output);
        foreach (string run in new[] { "sequential-1", "centralized-2-direct-1", "decentralized-2-direct-1" })
            Assert.True(File.Exists(Path.Combine(temp["bench"], "runs", run, BenchChildRuns.EpochsFileName)), $"{run}: no {BenchChildRuns.EpochsFileName}\n{bench.Output}");
        var csv = File.ReadAllLines(Path.Combine(temp["bench"], BenchRun.CsvFileName));
        Assert.Equal(4, csv.Length);
        var header = BenchRun.CsvHeader.Split(',');
        foreach (var row in csv.Skip(1).Select(l => l.Split(',')))
        {
            double rate = double.Parse(row[Array.IndexOf(header, "samples_per_second")], CultureInfo.InvariantCulture);
            double accuracy = double.Parse(row[Array.IndexOf(header, "final_test_accuracy")], CultureInfo.InvariantCulture);
            Assert.True(rate > 0 && accuracy is > 0 and <= 1, string.Join(',', row));
        }
        Assert.Contains("| centralized 2×16, direct | 2 |", bench.Output);
    }

    [Fact]
    public void Bench_with_wire_flags_compresses_the_distributed_rows_and_names_how()
    {
        using var temp = new TempFolder();
        var outcome = CliRunner.Run("bench", "--dataset", "blobs", "--samples", "400", "--hidden", "8", "--epochs", "2", "--batch-size", "32",
                                    "--worker-counts", "2", "--transports", "direct", "--wire", "bf16", "--sync-every", "2", "--out", temp["bench"]);
        Assert.True(outcome.ExitCode == 0, outcome.Error + outcome.Output);
        var header = BenchRun.CsvHeader.Split(',');
        var rows = File.ReadAllLines(Path.Combine(temp["bench"], BenchRun.CsvFileName)).Skip(1).Select(l => l.Split(',')).ToList();
        // Sequential sends nothing; local SGD is the decentralized rows' alone.
        Assert.Equal(["-", "bf16", "bf16 H=2"], rows.Select(r => r[Array.IndexOf(header, "wire")]));
        Assert.Contains("| decentralized 2×16, direct, bf16 H=2 |", outcome.Output);
    }

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
    public void Bench_keeps_only_the_metrics_of_its_runs_not_their_data()
    {
        using var temp = new TempFolder();
        var settings = BlobsSettings.Create(temp["bench"], RunMode.Centralized, samples: 200, hidden: [], epochs: 1, batchSize: 16) with { Quiet = true };
        var data = new List<WeakReference>();
        var aliveAtStart = new List<int>();
        var rows = BenchRun.Measure(new BenchSettings(settings, [1], 1, ["direct"]), TextWriter.Null, CancellationToken.None, train: s =>
        {
            // While bench runs, the runs before this one must be gone: a bench that kept every run's outcome held
            // 0.4 GB per Fashion-MNIST run and was killed for memory after 30 runs.
            aliveAtStart.Add(AliveAfterCollecting(data));
            return TrainAndWatch(s, data);
        });
        Assert.Equal(3, rows.Count);
        Assert.Equal([0, 0, 0], aliveAtStart);
    }

    /// <summary>Collects until every watched object is gone, for at most 10 s (a finalizer may hold one briefly).</summary>
    private static int AliveAfterCollecting(List<WeakReference> watched)
    {
        for (var waited = System.Diagnostics.Stopwatch.StartNew(); watched.Any(d => d.IsAlive) && waited.Elapsed < TimeSpan.FromSeconds(10);)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            Thread.Sleep(50);
        }
        return watched.Count(d => d.IsAlive);
    }

    // Not inlined, so that the outcome stays in no local of the caller's frame.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static TrainOutcome TrainAndWatch(TrainSettings settings, List<WeakReference> data)
    {
        // Every configuration trains sequentially here: this watches what bench keeps, not what a cluster's nodes keep.
        var outcome = TrainRun.Train(settings with { Mode = RunMode.Sequential }, new DistSgd.Host.Display.RunDisplay.FinalLineOnly(TextWriter.Null));
        data.Add(new WeakReference(outcome.Run.Train));
        return outcome;
    }

    [Fact]
    public void Median_of_an_even_count_is_the_mean_of_the_middle_two() =>
        Assert.Equal(2.5, BenchRun.Median([4, 1, 2, 3]));
}
