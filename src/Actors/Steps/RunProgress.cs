using DistSgd.Numerics.Training;

namespace DistSgd.Actors.Steps;

/// <summary>
/// What a run's coordinator (the master, or a peer) tells the local process hosting it. Local messages
/// only: they never cross the network, so they are not <see cref="Protocol.IDistSgdMessage"/>s.
/// </summary>
public static class RunProgress
{
    /// <summary>The time of day (UTC, to the millisecond) a note about a membership change starts with.</summary>
    public static string Now => DateTime.UtcNow.ToString("HH:mm:ss.fff", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>A worker joined or left; for the live view and the log.</summary>
    public sealed record Note(string Text);

    public sealed record EpochCompleted(EpochMetrics Metrics);

    /// <summary>
    /// Where the run is within its epoch, sent by the master or the lead peer at most every
    /// <see cref="ProgressMeter.DefaultInterval"/> (and by the host itself for a sequential run), for a live display.
    /// </summary>
    /// <param name="StepInEpoch">Steps finished in this epoch.</param>
    /// <param name="RunningLoss">Mean training loss of the epoch's samples so far.</param>
    /// <param name="SamplesPerSecond">Of the epoch so far.</param>
    /// <param name="Nodes">The participants (empty for a sequential run).</param>
    public sealed record StepProgress(int Epoch, long StepInEpoch, long StepsPerEpoch, double RunningLoss, double SamplesPerSecond,
                                      IReadOnlyList<NodeStatus> Nodes);

    /// <summary>One participant as the coordinator sees it.</summary>
    /// <param name="Role">worker or peer.</param>
    /// <param name="Steps">Steps it contributed a gradient to.</param>
    /// <param name="SamplesPerSecond">Its samples over its compute time, the rate it would reach alone.</param>
    /// <param name="MeanWaitSeconds">Mean over its steps of the step's wall time minus its compute time: what it spent
    /// waiting for the network and the slowest participant.</param>
    /// <param name="State">up, unreachable, removed or stopped.</param>
    public sealed record NodeStatus(int Id, string Role, string Address, long Steps, double SamplesPerSecond, double MeanWaitSeconds,
                                    string State)
    {
        /// <summary>Mean compute time of its gradients (the lag report).</summary>
        public double MeanComputeSeconds { get; init; }

        /// <summary>Mean compute time of the steps it took part in: the slowest participant's (what its own is compared with).</summary>
        public double MeanStepComputeSeconds { get; init; }

        /// <summary>Its gradients that came after their step had finished without them (backup workers).</summary>
        public long LateGradients { get; init; }
    }

    /// <summary>The run ended normally: the final θ and every epoch's metrics.</summary>
    public sealed record RunCompleted(float[] Parameters, TrainingResult Result);

    /// <summary>The run could not go on; <paramref name="Reason"/> is for the user.</summary>
    public sealed record RunFailed(string Reason);
}
