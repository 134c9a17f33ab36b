using DistSgd.Numerics.Optim;
using DistSgd.Numerics.Training;

namespace DistSgd.Actors.Steps;

/// <summary>What a run's coordinator is given for checkpoints; local to its node.</summary>
/// <param name="ResumeFrom">The checkpoint to continue from (already checked against this run's identity), or null to start at θ₀.</param>
/// <param name="Writer">Where and when to write checkpoints, or null for none.</param>
public sealed record CheckpointSetup(Checkpoint? ResumeFrom, CheckpointWriter? Writer);

/// <summary>
/// Checkpoints for a coordinator that holds the run's state (the centralized master, every decentralized peer):
/// puts a checkpoint's state back at the start, and captures and writes the state at step boundaries when the
/// schedule says so. The actor owns one and calls it; the state objects are the actor's own, shared by reference.
/// </summary>
public sealed class StepCheckpoints
{
    private readonly CheckpointSetup? _setup;
    private readonly float[] _parameters;
    private readonly SgdOptimizer _optimizer;
    private readonly EarlyStopping _stopping;
    private readonly List<EpochMetrics> _epochs;

    public StepCheckpoints(CheckpointSetup? setup, float[] parameters, SgdOptimizer optimizer, EarlyStopping stopping, List<EpochMetrics> epochs)
    {
        _setup = setup;
        _parameters = parameters;
        _optimizer = optimizer;
        _stopping = stopping;
        _epochs = epochs;
    }

    /// <summary>What --balance speed keeps in each checkpoint (<see cref="BalanceState"/>), or null without balancing.</summary>
    public Func<BalanceState?>? Balance { get; set; }

    /// <summary>The balance the checkpoint to resume from holds, or null.</summary>
    public BalanceState? ResumedBalance => _setup?.ResumeFrom?.Balance;

    /// <summary>Where a resumed run goes on: the next step, its epoch, the steps of that epoch already taken and their sums.</summary>
    public sealed record Position(long Step, int Epoch, int StepInEpoch, EpochTotals Totals);

    /// <summary>
    /// Restores θ, the optimizer, the stop rule and the finished epochs' metrics from the checkpoint to resume from and
    /// returns where the run goes on; null (and nothing changed) when the run starts fresh.
    /// </summary>
    public Position? Resume()
    {
        var checkpoint = _setup?.ResumeFrom;
        _setup?.Writer?.Schedule.Start(checkpoint?.Step ?? 0);
        if (checkpoint is null)
            return null;
        checkpoint.RestoreInto(_parameters, _optimizer, _stopping);
        _epochs.Clear();
        _epochs.AddRange(checkpoint.Epochs);
        return new Position(checkpoint.Step, checkpoint.Epoch, checkpoint.StepInEpoch, new EpochTotals(checkpoint.Progress));
    }

    /// <summary>
    /// At the boundary before <paramref name="step"/> (θ and the optimizer hold the result of the steps before it):
    /// writes a checkpoint when one is due. Returns what was written or failed, or null.
    /// </summary>
    public CheckpointWritten? AtStepBoundary(long step, int epoch, int stepInEpoch, EpochTotals totals)
    {
        // Asked first so that a step with nothing to write allocates nothing (the capture below is a closure).
        if (_setup?.Writer is not { } writer || !writer.Schedule.Due(step, stepInEpoch == 0))
            return null;
        return Write(writer, step, epoch, stepInEpoch, totals);
    }

    /// <summary>
    /// A checkpoint of the boundary before <paramref name="step"/> now, whatever the schedule says: for a coordinator that
    /// is being stopped between steps (θ changes only when a step finishes, so between steps its state is a boundary).
    /// </summary>
    public CheckpointWritten? Now(long step, int epoch, int stepInEpoch, EpochTotals totals) =>
        _setup?.Writer?.WriteNow(step, Capture(step, epoch, stepInEpoch, totals));

    private CheckpointWritten? Write(CheckpointWriter writer, long step, int epoch, int stepInEpoch, EpochTotals totals) =>
        writer.AtStepBoundary(step, stepInEpoch == 0, Capture(step, epoch, stepInEpoch, totals));

    private Func<string, Checkpoint> Capture(long step, int epoch, int stepInEpoch, EpochTotals totals) => identity =>
        Checkpoint.Capture(identity, step, epoch, stepInEpoch, _parameters, _optimizer, _stopping, totals.ToProgress(), _epochs, copy: false)
            with { Balance = Balance?.Invoke() };
}
