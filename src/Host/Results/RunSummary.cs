using System.Runtime.InteropServices;
using DistSgd.Numerics.Training;

namespace DistSgd.Host.Results;

/// <summary>The parts of summary.json beyond the run's configuration: what software ran it, and the run's totals.</summary>
public static class RunSummary
{
    public static object Versions() => new
    {
        Distsgd = typeof(RunSummary).Assembly.GetName().Version?.ToString(),
        Dotnet = RuntimeInformation.FrameworkDescription,
        Akka = typeof(Akka.Actor.ActorSystem).Assembly.GetName().Version?.ToString(),
        Os = RuntimeInformation.OSDescription,
        Architecture = RuntimeInformation.ProcessArchitecture.ToString(),
        ProcessorCount = Environment.ProcessorCount,
    };

    /// <summary>
    /// How the run's gradients travelled and what that saved: the encoding, bytes per step as sent and received on the
    /// wire at the master or lead peer over the whole run, the float32 reference (<see cref="WireVolume"/>) and their ratio.
    /// </summary>
    public static object Wire(string hyperparameters, TrainingResult result, Settings.RunMode mode, int computeNodes, int parameterCount)
    {
        var encoding = Numerics.Compression.ShareEncoding.FromKeys(hyperparameters);
        long steps = result.Epochs.Sum(m => m.Communication?.Steps ?? 0);
        long bytes = result.Epochs.Sum(m => (m.Communication?.BytesSent ?? 0) + (m.Communication?.BytesReceived ?? 0));
        double perStep = steps > 0 ? (double)bytes / steps : 0;
        double fp32 = WireVolume.Fp32BytesPerStep(mode, computeNodes, parameterCount);
        double ratio = WireVolume.CompressionRatio(perStep, fp32);
        return new
        {
            Format = Numerics.Compression.ShareEncoding.Name(encoding.Precision),
            Compress = encoding.CompressName,
            Fp16Scale = encoding.Precision == Numerics.Compression.WirePrecision.Fp16 ? encoding.Fp16Scale : (float?)null,
            BytesPerStep = perStep,
            Fp32BytesPerStep = fp32,
            CompressionRatio = double.IsNaN(ratio) ? (double?)null : ratio,
        };
    }

    /// <summary>
    /// The run's totals: sums over every epoch of samples, training seconds and bytes (0 for a sequential run); steps and
    /// dropped messages are already counted from the run's start in each epoch's row, so the last epoch's value is the total.
    /// BytesSentPerStep is what the reporting node (the master, or the lead peer) sent per step it took part in: with the
    /// all-gather (N−1)·G, with an all-reduce about 2·(N−1)/N·G (G: a gradient's frame); null without communication.
    /// </summary>
    public static object Totals(TrainingResult result) => new
    {
        Steps = result.Epochs.Count > 0 ? result.Epochs[^1].Step : 0,
        Samples = result.Epochs.Sum(m => (long)Math.Round(m.SamplesPerSecond * m.Seconds)),
        EpochSeconds = result.Epochs.Sum(m => m.Seconds),
        BytesSent = result.Epochs.Sum(m => m.Communication?.BytesSent ?? 0),
        BytesReceived = result.Epochs.Sum(m => m.Communication?.BytesReceived ?? 0),
        BytesSentPerStep = BytesSentPerStep(result.Epochs),
        DroppedMessages = result.Epochs.Count > 0 ? result.Epochs[^1].Communication?.DroppedMessages ?? 0 : 0,
    };

    /// <summary>Σ bytes sent / Σ steps over the epochs with communication (each epoch's own steps); null when there are none.</summary>
    public static double? BytesSentPerStep(IReadOnlyList<EpochMetrics> epochs)
    {
        long steps = epochs.Sum(m => m.Communication?.Steps ?? 0);
        return steps > 0 ? (double)epochs.Sum(m => m.Communication?.BytesSent ?? 0) / steps : null;
    }

    /// <summary>
    /// The per-node lag report over the whole run: each participant's mean compute per step against the step's (the
    /// slowest participant's), how often the step waited for it, and its gradients that came too late to be used;
    /// null for a sequential run.
    /// </summary>
    public static object? NodeLag(TrainingResult result)
    {
        var breakdowns = result.Epochs.Select(m => m.Communication).OfType<StepTimeBreakdown>().ToList();
        var nodes = breakdowns.SelectMany(b => b.Nodes ?? []).ToList();
        if (nodes.Count == 0)
            return null;
        long steps = breakdowns.Sum(b => b.Steps);
        double stepCompute = steps > 0 ? breakdowns.Sum(b => b.ComputeSeconds) / steps : 0;
        return nodes.GroupBy(n => n.Id).OrderBy(g => g.Key).Select(g =>
        {
            long used = g.Sum(n => n.Steps);
            double perStep = used > 0 ? g.Sum(n => n.ComputeSeconds) / used : 0;
            return new
            {
                Node = g.Key,
                Steps = used,
                ComputeSecondsPerStep = perStep,
                StepComputeSecondsPerStep = stepCompute,
                ShareOfStep = stepCompute > 0 ? perStep / stepCompute : 0,
                SlowestSteps = g.Sum(n => n.SlowestSteps),
                LateGradients = g.Sum(n => n.LateGradients),
            };
        }).ToList();
    }
}
