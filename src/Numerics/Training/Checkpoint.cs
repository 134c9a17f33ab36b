using DistSgd.Numerics.Optim;

namespace DistSgd.Numerics.Training;

/// <summary>
/// The sums of the epoch in progress at a checkpoint, so that a resumed epoch reports the same training loss
/// (and, as far as they carry over, the same timings and byte counts) as an uninterrupted one.
/// </summary>
/// <param name="Steps">Steps of the epoch already taken.</param>
/// <param name="Samples">Samples behind those steps.</param>
/// <param name="LossSum">Σ of the per-sample training loss over those samples (the epoch's loss is LossSum / samples).</param>
/// <param name="LearningRate">The learning rate of the last step taken.</param>
public sealed record EpochProgress(long Steps, long Samples, double LossSum, double LearningRate,
                                   double ComputeSeconds = 0, double ImbalanceSeconds = 0, double CommunicationSeconds = 0,
                                   double UpdateSeconds = 0, long BytesSent = 0, long BytesReceived = 0)
{
    public static readonly EpochProgress Empty = new(0, 0, 0, 0);
}

/// <summary>
/// Everything a run needs to continue bit-identically from a step boundary: θ, the optimizer state, where it is
/// (global step, epoch, step within the epoch), the stop rule's state, the sums of the epoch in progress and the
/// metrics of the epochs done. The data order needs nothing more: an epoch's order depends only on (seed, epoch)
/// (<see cref="Data.BatchSampler"/>, <see cref="ShardBatches"/>), so batch <see cref="StepInEpoch"/> of
/// <see cref="Epoch"/> is the same batch after a restart.
/// </summary>
/// <param name="Identity">
/// What run this is, as ordered "key=value" pairs separated by ';' (mode, model, batch, seed, epochs, data
/// fingerprint, hyper-parameters): resuming with a different one is refused, naming each difference
/// (<see cref="RunIdentity.Differences"/>).
/// </param>
/// <param name="Step">Optimizer steps taken (the next step to take).</param>
/// <param name="Epoch">The epoch the next step belongs to (1-based).</param>
/// <param name="StepInEpoch">Steps of <paramref name="Epoch"/> already taken (0 at an epoch's start).</param>
/// <param name="BestLoss">The stop rule's lowest loss so far (<see cref="EarlyStopping.Best"/>).</param>
/// <param name="EpochsWithoutImprovement">The stop rule's count (<see cref="EarlyStopping.EpochsWithoutImprovement"/>).</param>
/// <param name="Progress">The sums of the steps of <paramref name="Epoch"/> already taken.</param>
/// <param name="Epochs">The metrics of every finished epoch.</param>
/// <param name="ScheduleReplans">
/// The re-plans of the learning-rate schedule so far, oldest first (<see cref="LearningRateSchedule.Replans"/>; null or
/// empty: none): a membership change re-planned it, and the resumed run goes on with the same rates.
/// </param>
/// <param name="Balance">With --balance speed, the batch plan in effect and the timings towards the next; null without.</param>
public sealed record Checkpoint(string Identity, long Step, int Epoch, int StepInEpoch, float[] Parameters, SgdState Optimizer,
                                double BestLoss, int EpochsWithoutImprovement, EpochProgress Progress,
                                IReadOnlyList<EpochMetrics> Epochs, IReadOnlyList<ScheduleReplan>? ScheduleReplans = null,
                                BalanceState? Balance = null)
{
    /// <summary>The schedule's re-plans (<see cref="ScheduleReplans"/>), empty when there are none.</summary>
    public IReadOnlyList<ScheduleReplan> Replans => ScheduleReplans ?? [];

    /// <summary>
    /// The run's state at a step boundary. With <paramref name="copy"/> θ and the velocity are copied (the run goes on
    /// changing them); without, the record shares the run's arrays, for a caller that writes it before the next step.
    /// </summary>
    public static Checkpoint Capture(string identity, long step, int epoch, int stepInEpoch, float[] parameters,
                                     SgdOptimizer optimizer, EarlyStopping stopping, EpochProgress progress,
                                     IEnumerable<EpochMetrics> epochs, bool copy = true)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(optimizer);
        ArgumentNullException.ThrowIfNull(stopping);
        var velocity = optimizer.State.Velocity;
        return new Checkpoint(identity, step, epoch, stepInEpoch, copy ? (float[])parameters.Clone() : parameters,
                              new SgdState(optimizer.State.Step, copy ? (float[])velocity.Clone() : velocity),
                              stopping.Best, stopping.EpochsWithoutImprovement, progress, epochs.ToList(), optimizer.Schedule.Replans);
    }

    /// <summary>
    /// Puts θ, the optimizer state (with the schedule's re-plans) and the stop rule's state back; the caller takes the
    /// position and sums from the record.
    /// </summary>
    public void RestoreInto(Span<float> parameters, SgdOptimizer optimizer, EarlyStopping stopping)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        ArgumentNullException.ThrowIfNull(stopping);
        if (parameters.Length != Parameters.Length)
            throw new ArgumentException($"the checkpoint holds {Parameters.Length} parameters, the model {parameters.Length}");
        Parameters.CopyTo(parameters);
        optimizer.Restore(Optimizer);
        optimizer.RestoreReplans(Replans);
        stopping.Restore(BestLoss, EpochsWithoutImprovement);
    }

    /// <summary>"step 120 (epoch 3, step 7 of the epoch)", for messages.</summary>
    public string Position => $"step {Step} (epoch {Epoch}, {StepInEpoch} steps into it)";
}

/// <summary>A run's identity as ordered "key=value" pairs separated by ';', and what differs between two of them.</summary>
public static class RunIdentity
{
    /// <summary>Joins pairs into the identity form.</summary>
    public static string Of(IEnumerable<(string Key, string Value)> pairs) =>
        string.Join(';', pairs.Select(p => $"{p.Key}={p.Value}"));

    /// <summary>
    /// One "key: value here vs value there" per key whose values differ (a key missing on one side reads "(unset)"),
    /// in the order the keys first appear; empty when both describe the same run.
    /// </summary>
    public static IReadOnlyList<string> Differences(string mine, string theirs, string here = "here", string there = "there")
    {
        var left = Pairs(mine);
        var right = Pairs(theirs);
        var differences = new List<string>();
        foreach (string key in left.Keys.Concat(right.Keys).Distinct())
        {
            string a = left.GetValueOrDefault(key, "(unset)");
            string b = right.GetValueOrDefault(key, "(unset)");
            if (a != b)
                differences.Add($"{key}: {a} {here} vs {b} {there}");
        }
        return differences;
    }

    private static Dictionary<string, string> Pairs(string text)
    {
        var pairs = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string part in text.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int equals = part.IndexOf('=');
            if (equals > 0)
                pairs[part[..equals]] = part[(equals + 1)..];
            else
                pairs[part] = "";
        }
        return pairs;
    }
}
