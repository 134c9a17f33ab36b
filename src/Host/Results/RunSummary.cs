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
    /// </summary>
    public static object Totals(TrainingResult result) => new
    {
        Steps = result.Epochs.Count > 0 ? result.Epochs[^1].Step : 0,
        Samples = result.Epochs.Sum(m => (long)Math.Round(m.SamplesPerSecond * m.Seconds)),
        EpochSeconds = result.Epochs.Sum(m => m.Seconds),
        BytesSent = result.Epochs.Sum(m => m.Communication?.BytesSent ?? 0),
        BytesReceived = result.Epochs.Sum(m => m.Communication?.BytesReceived ?? 0),
        DroppedMessages = result.Epochs.Count > 0 ? result.Epochs[^1].Communication?.DroppedMessages ?? 0 : 0,
    };
}
