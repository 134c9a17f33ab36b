using DistSgd.Numerics.Training;

namespace DistSgd.Actors.Steps;

/// <summary>
/// What a run's coordinator (the master, or a peer) tells the local process hosting it. Local messages
/// only: they never cross the network, so they are not <see cref="Protocol.IDistSgdMessage"/>s.
/// </summary>
public static class RunProgress
{
    /// <summary>A worker joined or left; for the live view and the log.</summary>
    public sealed record Note(string Text);

    public sealed record EpochCompleted(EpochMetrics Metrics);

    /// <summary>The run ended normally: the final θ and every epoch's metrics.</summary>
    public sealed record RunCompleted(float[] Parameters, TrainingResult Result);

    /// <summary>The run could not go on; <paramref name="Reason"/> is for the user.</summary>
    public sealed record RunFailed(string Reason);
}
