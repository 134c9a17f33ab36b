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
