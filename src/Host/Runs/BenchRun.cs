using System.Globalization;
using System.Text;
using DistSgd.Host.Display;
using DistSgd.Host.Results;
using DistSgd.Host.Settings;
using DistSgd.Numerics.Models;
using DistSgd.Numerics.Training;

namespace DistSgd.Host.Runs;

/// <summary>One configuration's numbers: the median over the repeats.</summary>
public sealed record BenchRow(RunMode Mode, string Transport, int ComputeNodes, int BatchPerComputeNode, double SecondsPerEpoch, double SamplesPerSecond,
                              double Speedup, double Efficiency, double BytesPerStep, double FinalAccuracy, double FinalTestLoss,
                              double[] Time, double[] Accuracy, int Runs = 1, string Wire = "fp32")
{
    public string Name => Mode == RunMode.Sequential ? "sequential"
        : $"{Mode.Name()} {ComputeNodes}×{BatchPerComputeNode}, {Transport}" + (Wire == "fp32" ? "" : $", {Wire}");
}

/// <summary>
/// `distsgd bench`: trains sequential, centralized and decentralized (each distributed mode on every transport and
/// worker count) on the same data, seed and global batch with <see cref="TrainRun.Train"/>, and writes a comparison
/// (bench.md, bench.csv, speedup.png, accuracy-by-time.png) to the results folder.
/// </summary>
public static class BenchRun
{
    public const string TableFileName = "bench.md";
    public const string CsvFileName = "bench.csv";
    public const string SpeedupPlot = "speedup.png";
    public const string AccuracyPlot = "accuracy-by-time.png";

    public const string CsvHeader =
        "mode,transport,workers,batch_per_worker,seconds_per_epoch,samples_per_second,speedup,efficiency,bytes_per_step,final_test_accuracy,final_test_loss,wire";

    /// <param name="measure">Trains one configuration and returns its metrics; default in this process
    /// (<see cref="BenchChildRuns.Runner"/> runs each in a child process).</param>
    public static int Execute(BenchSettings bench, TextWriter output, CancellationToken cancellation = default,
                              Func<TrainSettings, TrainingResult>? measure = null)
    {
        string folder = bench.Base.Out;
        // The table and plots are rewritten after every round of repeats: a long bench that is stopped keeps what it measured.
        var rows = Measure(bench, output, cancellation, rows =>
        {
            AtomicFile.Write(Path.Combine(folder, TableFileName), Encoding.UTF8.GetBytes(Markdown(bench, rows)));
            AtomicFile.Write(Path.Combine(folder, CsvFileName), Encoding.UTF8.GetBytes(Csv(rows)));
            Plot(folder, rows);
        }, measure: measure);
        if (cancellation.IsCancellationRequested)
            return ExitCodes.TrainingFailed;
        output.WriteLine();
        output.Write(Markdown(bench, rows));
        output.WriteLine($"bench: results in {folder}/ ({TableFileName}, {CsvFileName}, {SpeedupPlot}, {AccuracyPlot}, runs/)");
        return ExitCodes.Ok;
    }

    /// <summary>The configurations in table order: sequential, then each mode × worker count × transport.</summary>
    public static IReadOnlyList<TrainSettings> Configurations(BenchSettings bench)
    {
        var b = bench.Base;
        // --wire, --compress and --sync-every describe how the distributed rows communicate: the sequential row sends
        // nothing, and local SGD is the decentralized mode's alone (the centralized rows average every step).
        var list = new List<TrainSettings> { b with { Mode = RunMode.Sequential, ComputeNodes = 1, Threads = b.ThreadsPerComputeNode, Transport = null,
                                                      Collective = null, Wire = null, Compress = null, SyncEvery = null } };
        foreach (var mode in new[] { RunMode.Centralized, RunMode.Decentralized })
            foreach (int workers in bench.ComputeNodeCounts)
                foreach (string transport in bench.Transports)
                {
                    if (b.BatchSize % workers != 0)
                        throw new UsageException($"--batch-size {b.BatchSize} is the global batch of every configuration: it must divide by each of --worker-counts, found {workers}");
                    // --collective is the decentralized rows' on the direct transport (the only one the all-reduces run on).
                    list.Add(b with { Mode = mode, ComputeNodes = workers, BatchSize = b.BatchSize / workers, Transport = transport,
                                      Collective = mode == RunMode.Decentralized && transport == "direct" ? b.Collective : null,
                                      SyncEvery = mode == RunMode.Decentralized ? b.SyncEvery : null });
                }
        return list;
    }

    /// <param name="onRound">Called with the rows so far after every round of repeats.</param>
    /// <param name="train">Trains one configuration (<see cref="TrainRun.Train"/>; a test can watch what it returns).</param>
    public static IReadOnlyList<BenchRow> Measure(BenchSettings bench, TextWriter output, CancellationToken cancellation,
                                                  Action<IReadOnlyList<BenchRow>>? onRound = null,
                                                  Func<TrainSettings, TrainOutcome>? train = null,
                                                  Func<TrainSettings, TrainingResult>? measure = null)
    {
        train ??= settings => TrainOne(settings, cancellation);
        measure ??= settings => MetricsOf(train, settings);
        var configurations = Configurations(bench);
        // Only each run's metrics are kept: its outcome also holds the data set (Fashion-MNIST: 0.4 GB a run), and a bench
        // of 39 runs that kept them was killed for memory.
        var runs = configurations.Select(_ => new List<TrainingResult>()).ToList();
        // Repeats interleave (every configuration once, then again): a change in the machine's load spreads over all of them.
        for (int r = 1; r <= bench.Repeat && !cancellation.IsCancellationRequested; r++)
        {
            for (int i = 0; i < configurations.Count && !cancellation.IsCancellationRequested; i++)
            {
                var c = configurations[i];
                var result = measure(RunSettings(bench, c, r));
                runs[i].Add(result);
                var (seconds, rate, _) = Steady(result.Epochs);
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"bench: {Label(c)} (run {r}/{bench.Repeat}): {seconds:F2} s/epoch, {rate:N0} samples/s, test accuracy {Final(result, m => m.TestAccuracy) * 100:F2}%"));
            }
            if (!cancellation.IsCancellationRequested)
                onRound?.Invoke(Rows(configurations, runs));
        }
        return Rows(configurations, runs);
    }

    /// <summary>Trains one configuration as `train --quiet` would, showing nothing (in this process, or in a bench child).</summary>
    public static TrainOutcome TrainOne(TrainSettings settings, CancellationToken cancellation) =>
        TrainRun.Train(settings, new RunDisplay.FinalLineOnly(TextWriter.Null), cancellation);

    /// <summary>Every run of the bench: each configuration's settings for each round, with its own results folder.</summary>
    public static IEnumerable<(TrainSettings Settings, int Round)> Runs(BenchSettings bench)
    {
        var configurations = Configurations(bench);
        for (int r = 1; r <= bench.Repeat; r++)
            foreach (var c in configurations)
                yield return (RunSettings(bench, c, r), r);
    }

    private static TrainSettings RunSettings(BenchSettings bench, TrainSettings c, int round) =>
        c with
        {
            Out = Path.Combine(bench.Base.Out, "runs", $"{Slug(c)}-{round}"), Quiet = true, Json = false,
            // --trace: each distributed configuration's trace in its own run folder, under the name given.
            TraceFile = c.TraceFile is { } trace && c.Mode.IsDistributed()
                ? Path.Combine(bench.Base.Out, "runs", $"{Slug(c)}-{round}", Path.GetFileName(trace))
                : null,
        };

    /// <summary>Trains and keeps only the metrics; in a frame of its own, so that no local of <see cref="Measure"/> (a Debug build
    /// keeps every temporary to the method's end) holds the run's data into the next run.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static TrainingResult MetricsOf(Func<TrainSettings, TrainOutcome> train, TrainSettings settings) => train(settings).Result;

    /// <summary>Each configuration's medians over the runs it has so far.</summary>
    private static List<BenchRow> Rows(IReadOnlyList<TrainSettings> configurations, List<List<TrainingResult>> runs)
    {
        var rows = new List<BenchRow>();
        double sequential = double.NaN;
        for (int i = 0; i < configurations.Count; i++)
        {
            if (runs[i].Count == 0)
                continue;
            var c = configurations[i];
            var steady = runs[i].Select(r => Steady(r.Epochs)).ToList();
            double seconds = Median(steady.Select(s => s.Seconds));
            if (c.Mode == RunMode.Sequential)
                sequential = seconds;
            double speedup = sequential / seconds;
            var first = runs[i][0];
            rows.Add(new BenchRow(c.Mode, c.Mode == RunMode.Sequential ? "-" : c.Transport!, c.ComputeNodes, c.BatchSize, seconds,
                                  Median(steady.Select(s => s.Rate)), speedup, speedup / c.ComputeNodes, Median(steady.Select(s => s.BytesPerStep)),
                                  Median(runs[i].Select(r => Final(r, m => m.TestAccuracy))),
                                  Median(runs[i].Select(r => Final(r, m => m.TestLoss))),
                                  RunPlots.CumulativeSeconds(first.Epochs), first.Epochs.Select(m => m.TestAccuracy * 100).ToArray(), runs[i].Count,
                                  WireOf(c)));
        }
        return rows;
    }

    /// <summary>How a configuration's gradients travel, from its flags ("fp32", "bf16 topk:0.01 H=4"); a --config file's keys are not seen here.</summary>
    public static string WireOf(TrainSettings c)
    {
        if (c.Mode == RunMode.Sequential)
            return "-";
        var parts = new List<string> { c.Wire ?? "fp32" };
        if (c.Compress is { } compress && compress != "none")
            parts.Add(compress);
        if (c.SyncEvery > 1)
            parts.Add($"H={c.SyncEvery}");
        return string.Join(' ', parts);
    }

    /// <summary>
    /// Seconds per epoch, samples/s and bytes per step over the epochs after the first (which carries the JIT warm-up and the
    /// first connections), or of the first when there is only one.
    /// </summary>
    public static (double Seconds, double Rate, double BytesPerStep) Steady(IReadOnlyList<EpochMetrics> epochs)
    {
        var measured = epochs.Count > 1 ? epochs.Skip(1).ToList() : epochs.ToList();
        if (measured.Count == 0)
            return (double.NaN, double.NaN, double.NaN);
        double seconds = measured.Sum(m => m.Seconds);
        double samples = measured.Sum(m => m.SamplesPerSecond * m.Seconds);
        long steps = measured.Sum(m => m.Communication?.Steps ?? 0);
        long bytes = measured.Sum(m => (m.Communication?.BytesSent ?? 0) + (m.Communication?.BytesReceived ?? 0));
        return (seconds / measured.Count, samples / seconds, steps > 0 ? (double)bytes / steps : 0);
    }

    public static string Markdown(BenchSettings bench, IReadOnlyList<BenchRow> rows)
    {
        var b = bench.Base;
        var text = new StringBuilder();
        text.AppendLine(string.Create(CultureInfo.InvariantCulture,
            $"Global batch {b.BatchSize}, {b.Epochs} epochs, seed {b.Seed}; median of {(rows.Count > 0 ? rows.Min(r => r.Runs) : 0)} run(s) each; s/epoch and samples/s over epochs 2+ (epoch 1 when only one); " +
            $"bytes per step sent + received at the master or lead peer."));
        text.AppendLine();
        text.AppendLine("| run | workers | s/epoch | samples/s | speedup | efficiency | MB/step | test accuracy |");
        text.AppendLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (var r in rows)
            text.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {r.Name} | {r.ComputeNodes} | {r.SecondsPerEpoch:F3} | {r.SamplesPerSecond:N0} | {r.Speedup:F2}× | {r.Efficiency * 100:F0}% | {r.BytesPerStep / 1e6:F3} | {(double.IsFinite(r.FinalAccuracy) ? $"{r.FinalAccuracy * 100:F2}%" : "-")} |"));
        return text.ToString();
    }

    public static string Csv(IReadOnlyList<BenchRow> rows)
    {
        var text = new StringBuilder().AppendLine(CsvHeader);
        foreach (var r in rows)
            text.AppendLine(string.Join(',', r.Mode.Name(), r.Transport, r.ComputeNodes.ToString(CultureInfo.InvariantCulture),
                r.BatchPerComputeNode.ToString(CultureInfo.InvariantCulture), RunFiles.Number(r.SecondsPerEpoch), RunFiles.Number(r.SamplesPerSecond),
                RunFiles.Number(r.Speedup), RunFiles.Number(r.Efficiency), RunFiles.Number(r.BytesPerStep), RunFiles.Number(r.FinalAccuracy), RunFiles.Number(r.FinalTestLoss), r.Wire));
        return text.ToString();
    }

    /// <summary>Speedup against workers (one line per mode and transport, sequential at 1) and test accuracy against training
    /// time (the largest worker count of each mode and transport, and sequential).</summary>
    private static void Plot(string folder, IReadOnlyList<BenchRow> rows)
    {
        var distributed = rows.Where(r => r.Mode != RunMode.Sequential).GroupBy(r => $"{r.Mode.Name()}, {r.Transport}").ToList();
        double[] counts = rows.Select(r => (double)r.ComputeNodes).Distinct().Order().ToArray();
        RunPlots.Save(Path.Combine(folder, SpeedupPlot), "Speedup over sequential (same global batch)", "workers", "speedup (×)",
            distributed.Select(g => (g.Key, g.Select(r => (double)r.ComputeNodes).ToArray(), g.Select(r => r.Speedup).ToArray()))
                       .Append(("ideal (= workers)", counts, counts)),
            xTicks: counts);
        var curves = rows.Where(r => r.Mode == RunMode.Sequential)
            .Concat(distributed.Select(g => g.OrderBy(r => r.ComputeNodes).Last()))
            .Select(r => (r.Name, r.Time, r.Accuracy));
        RunPlots.Save(Path.Combine(folder, AccuracyPlot), "Test accuracy by training time", "training time (s)", "test accuracy (%)", curves);
    }

    private static string Label(TrainSettings c) =>
        c.Mode == RunMode.Sequential ? "sequential" : $"{c.Mode.Name()} {c.ComputeNodes} × {c.BatchSize}, {c.Transport}";

    private static string Slug(TrainSettings c) =>
        c.Mode == RunMode.Sequential ? "sequential" : $"{c.Mode.Name()}-{c.ComputeNodes}-{c.Transport}";

    private static double Final(TrainingResult result, Func<EpochMetrics, double> value) =>
        result.Epochs.Count > 0 ? value(result.Epochs[^1]) : double.NaN;

    public static double Median(IEnumerable<double> values)
    {
        var sorted = values.Where(v => !double.IsNaN(v)).Order().ToList();
        if (sorted.Count == 0)
            return double.NaN;
        int mid = sorted.Count / 2;
        return sorted.Count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }
}
