using System.Diagnostics;
using System.Globalization;
using DistSgd.Actors.Protocol;
using DistSgd.Numerics.Compression;
using DistSgd.Numerics.Data;
using DistSgd.Numerics.Models;
using DistSgd.Numerics.Optim;
using DistSgd.Numerics.Tensors;
using DistSgd.Numerics.Training;

namespace DistSgd.Actors.Steps;

/// <summary>
/// The replica of a run that a coordinator holds, the same for the centralized master and for every
/// decentralized peer: θ, the optimizer and its state, the stop rule, the evaluator, the checkpoints, where the run
/// stands (step, epoch, step in the epoch, steps per epoch), the open epoch's totals and the finished epochs'
/// metrics, and the run clock. It applies a gathered step, closes an epoch and produces the run's result; the
/// actor owns one and decides when. A plain class: no ActorSystem needed to test it.
/// </summary>
/// <remarks>
/// It owns the evaluator's matrix kernels (a <see cref="PackedKernels"/> with more than one thread owns a pool of
/// threads) and disposes them in <see cref="Dispose"/>, which the actor calls when it stops.
/// </remarks>
public sealed class Replica : IDisposable
{
    /// <summary>The plan's H, read once: <see cref="RunPlan.SyncEvery"/> parses the hyper-parameters (a split and its strings, 488 bytes) at every read.</summary>
    private readonly int _syncEvery;
    private float[] _parametersBefore = [];
    private float[] _velocityBefore = [];
    private readonly Model _evaluator;
    private readonly StepCheckpoints _checkpoints;
    private readonly List<EpochMetrics> _epochs = new();
    private readonly Stopwatch _runClock = new();

    /// <param name="plan">The run.</param>
    /// <param name="initialParameters">θ₀ (copied).</param>
    /// <param name="optimizer">The run's optimizer options (without momentum here when the senders apply it: <see cref="ShareEncoding.ReceiverOptions"/>).</param>
    /// <param name="training">The stop rule's options.</param>
    /// <param name="evaluationKernels">The evaluator's kernels; the replica owns them and disposes them.</param>
    /// <param name="checkpoints">The checkpoint to resume from and where to write checkpoints, or null for neither.</param>
    public Replica(RunPlan plan, float[] initialParameters, SgdOptions optimizer, TrainingOptions training,
                   IMatrixKernels evaluationKernels, CheckpointSetup? checkpoints)
    {
        Plan = plan;
        Parameters = (float[])initialParameters.Clone();
        _syncEvery = plan.SyncEvery;
        Optimizer = new SgdOptimizer(plan.Wire.ReceiverOptions(optimizer, _syncEvery), Parameters.Length);
        _evaluator = new Model(plan.Spec, evaluationKernels);
        Stopping = new EarlyStopping(training.Patience, training.MinDelta);
        _checkpoints = new StepCheckpoints(checkpoints, Parameters, Optimizer, Stopping, _epochs);
        StepsPerEpoch = plan.StepsPerEpoch;
        if (_checkpoints.Resume() is { } resumed)
            (Step, Epoch, StepInEpoch, Totals) = (resumed.Step, resumed.Epoch, resumed.StepInEpoch, resumed.Totals);
    }

    public RunPlan Plan { get; }

    /// <summary>θ, changed in place by each step.</summary>
    public float[] Parameters { get; }

    public SgdOptimizer Optimizer { get; }

    /// <summary>The stop rule (early stopping on the training loss).</summary>
    public EarlyStopping Stopping { get; }

    /// <summary>The next step to take (the run's step number; θ holds the result of the steps before it).</summary>
    public long Step { get; private set; }

    /// <summary>The open epoch, from 1.</summary>
    public int Epoch { get; private set; } = 1;

    /// <summary>Steps of the open epoch already taken.</summary>
    public int StepInEpoch { get; private set; }

    /// <summary>Steps of the open epoch: the largest shard's batch count among this epoch's participants.</summary>
    public int StepsPerEpoch { get; set; }

    /// <summary>The open epoch's sums (loss, samples, times, bytes).</summary>
    public EpochTotals Totals { get; private set; } = new();

    /// <summary>Where this replica's steps are counted live (<see cref="RunMeters"/>), or null: every epoch's totals report there.</summary>
    public NodeMeters? Meters
    {
        get => Totals.Meters;
        set => Totals.Meters = value;
    }

    /// <summary>The finished epochs' metrics, in order.</summary>
    public IReadOnlyList<EpochMetrics> Epochs => _epochs;

    /// <summary>True from the first step until the run is over (a run that never started or that ended has nothing to checkpoint).</summary>
    public bool IsRunning => _runClock.IsRunning;

    /// <summary>True when the open epoch has taken all its steps.</summary>
    public bool EpochIsDone => StepInEpoch >= StepsPerEpoch;

    /// <summary>True when the open epoch is the plan's last.</summary>
    public bool AtEpochLimit => Epoch >= Plan.Epochs;

    /// <summary>Starts the run clock: the first step begins.</summary>
    public void Start() => _runClock.Start();

    /// <summary>The run is over (finished, failed, or its coordinator restarts): <see cref="IsRunning"/> is false from now on.</summary>
    public void Stop() => _runClock.Stop();

    /// <summary>
    /// Applies the gathered step: ḡ = Σ nᵢ·gᵢ / Σ nᵢ in participant order, θ ← optimizer(θ, ḡ), the step added to the
    /// epoch's totals (<see cref="StepUpdate.Apply"/>). Does not advance the step: <see cref="Advance"/> does.
    /// </summary>
    public StepUpdate.Outcome Apply(StepGather gather, double wallSeconds) => RoundStart is { } start
        ? StepUpdate.AverageModels(gather, start, Optimizer, Parameters, Totals, wallSeconds, Epoch, Step, _parametersBefore, _velocityBefore)
        : _syncEvery > 1
            // A local step of a round keeps no copy: the state before the round's last averaging step stays (a peer's undo).
            ? StepUpdate.Apply(gather, Optimizer, Parameters, Totals, wallSeconds, Epoch, Step)
            : StepUpdate.Apply(gather, Optimizer, Parameters, Totals, wallSeconds, Epoch, Step, _parametersBefore, _velocityBefore);

    /// <summary>
    /// Local SGD (<see cref="LocalSgd"/>): when set, the open step ends a round, its contributions are the participants'
    /// changes over the round and <see cref="Apply"/> sets θ ← this round start + their weighted average (each node took
    /// the step's optimizer update itself); null: the step averages gradients.
    /// </summary>
    public float[]? RoundStart { get; set; }

    /// <summary>
    /// From now on every <see cref="Apply"/> copies θ and the optimizer's velocity as they were before its update into
    /// these arrays, in the update's own pass over memory (a decentralized peer's <c>StepUndo</c>); empty arrays: no copy.
    /// </summary>
    public void KeepStateBeforeEachStep(float[] parameters, float[] velocity)
    {
        if (parameters.Length != 0 && parameters.Length != Parameters.Length || velocity.Length != 0 && velocity.Length != Optimizer.State.Velocity.Length)
            throw new ArgumentException($"the copies before a step need {Parameters.Length} and {Optimizer.State.Velocity.Length} values; found {parameters.Length} and {velocity.Length}");
        (_parametersBefore, _velocityBefore) = (parameters, velocity);
    }

    /// <summary>The step is taken: on to the next one of the epoch.</summary>
    public void Advance()
    {
        Step++;
        StepInEpoch++;
    }

    /// <summary>Goes on at <paramref name="step"/> in the same epoch (step numbers the survivors of a peer loss skipped).</summary>
    public void SkipTo(long step) => Step = step;

    /// <summary>Puts the run at a position recovered from elsewhere (a new master taking over from the workers).</summary>
    public void MoveTo(long step, int epoch, int stepInEpoch) => (Step, Epoch, StepInEpoch) = (step, epoch, stepInEpoch);

    /// <summary>θ on <paramref name="test"/>; null without a test set.</summary>
    public Score? Evaluate(Dataset? test)
    {
        if (test is null)
            return null;
        long started = StepTrace.Now;
        var score = _evaluator.Evaluate(Parameters, test.Features, test.Targets, test.Count);
        Trace?.Add(StepPhase.Evaluation, Step, started, StepTrace.Now);
        return score;
    }

    /// <summary>Where the evaluations and checkpoints are recorded (the step loop's trace), or null.</summary>
    public StepTrace? Trace { get; set; }

    /// <summary>
    /// Closes the open epoch: its metrics (θ scored on <paramref name="test"/> when given, <paramref name="steps"/> as
    /// the step count reported) are recorded, the stop rule observes its training loss, and a new epoch's totals begin.
    /// The epoch number is not advanced: <see cref="NextEpoch"/> does, unless the run stops.
    /// </summary>
    /// <returns>The metrics, and whether the stop rule saw a plateau.</returns>
    public (EpochMetrics Metrics, bool Plateau) CloseEpoch(Dataset? test, long steps, long droppedMessages,
                                                           IReadOnlyDictionary<string, long>? droppedByKind)
    {
        var metrics = Totals.ToMetrics(Epoch, steps, Evaluate(test), test is { IsClassification: true }, droppedMessages, droppedByKind);
        _epochs.Add(metrics);
        bool plateau = Stopping.Observe(Totals.TrainLoss);
        Totals = new EpochTotals { Meters = Totals.Meters };
        return (metrics, plateau);
    }

    /// <summary>
    /// Steps the run has left from <see cref="Step"/>: the rest of the open epoch and every epoch after it up to the
    /// plan's last, each of <see cref="StepsPerEpoch"/> steps (the shards the open epoch was cut into).
    /// </summary>
    public long RemainingSteps => (long)(Plan.Epochs - Epoch) * StepsPerEpoch + Math.Max(0, StepsPerEpoch - StepInEpoch);

    /// <summary>
    /// Re-plans the learning-rate schedule over <see cref="RemainingSteps"/> when the run's length in steps changed
    /// under it (a membership change cut the training set into a different number of shards): from the optimizer's
    /// next step the rest of the schedule is spread over the steps that remain, so it still ends at its final rate
    /// after the last epoch's last step, going on from the rate reached (<see cref="LearningRateSchedule.Replan"/>).
    /// Nothing changes when the schedule already ends there (every fault-free epoch), or has no length (constant).
    /// </summary>
    /// <returns>A note saying what changed, or null when nothing did.</returns>
    public string? ReplanSchedule()
    {
        long remaining = RemainingSteps;
        if (!Optimizer.Replan(remaining))
            return null;
        double rate = Optimizer.CurrentLearningRate;
        return string.Create(CultureInfo.InvariantCulture,
            $"epoch {Epoch}: the learning-rate schedule is re-planned over the {remaining} steps that remain ({StepsPerEpoch} per epoch), from lr {rate:G4} at step {Optimizer.State.Step} to its final rate at step {Optimizer.State.Step + remaining}");
    }

    /// <summary>On to the next epoch, at its first step.</summary>
    public void NextEpoch()
    {
        Epoch++;
        StepInEpoch = 0;
    }

    /// <summary>The checkpoints' part of --balance speed: what each checkpoint keeps, and what the resumed one held.</summary>
    public StepCheckpoints Checkpoints => _checkpoints;

    /// <summary>A checkpoint at the boundary before <see cref="Step"/> when the schedule says one is due; what was written, or null.</summary>
    public CheckpointWritten? CheckpointIfDue() => Traced(_checkpoints.AtStepBoundary(Step, Epoch, StepInEpoch, Totals));

    /// <summary>A checkpoint of the boundary before <see cref="Step"/> now (a coordinator stopped between steps).</summary>
    public CheckpointWritten? CheckpointNow() => Traced(_checkpoints.Now(Step, Epoch, StepInEpoch, Totals));

    /// <summary>A checkpoint written is a span of the trace, from its start (measured by the writer) to now.</summary>
    private CheckpointWritten? Traced(CheckpointWritten? written)
    {
        if (written is { } w && Trace is { } trace)
        {
            long now = StepTrace.Now;
            trace.Add(StepPhase.Checkpoint, Step, now - (long)(w.Seconds * System.Diagnostics.Stopwatch.Frequency), now);
        }
        return written;
    }

    /// <summary>
    /// The replica as it stands, a step boundary, as a checkpoint with copies of θ and the velocity: what a late peer of a
    /// decentralized run adopts (<see cref="Adopt"/>; decision 0097).
    /// </summary>
    public Checkpoint Capture() =>
        Checkpoint.Capture("", Step, Epoch, StepInEpoch, Parameters, Optimizer, Stopping, Totals.ToProgress(), _epochs, copy: true)
            with { Balance = _checkpoints.Balance?.Invoke() };

    /// <summary>
    /// Takes over another replica's state (<see cref="Capture"/>): θ, the optimizer state with the schedule's re-plans, the
    /// stop rule, the finished epochs' metrics and the position. A late peer of a decentralized run adopts the lead's so,
    /// and from then on applies the same steps to the same bits.
    /// </summary>
    public void Adopt(Checkpoint state)
    {
        state.RestoreInto(Parameters, Optimizer, Stopping);
        _epochs.Clear();
        _epochs.AddRange(state.Epochs);
        (Step, Epoch, StepInEpoch) = (state.Step, state.Epoch, state.StepInEpoch);
        Totals = new EpochTotals(state.Progress) { Meters = Totals.Meters };
    }

    /// <summary>A copy of θ (for a message or a result: θ keeps changing in place).</summary>
    public float[] CopyOfParameters() => (float[])Parameters.Clone();

    /// <summary>The run's result so far, stopped for <paramref name="reason"/>.</summary>
    public TrainingResult Result(StopReason reason) => new(_epochs.ToList(), reason, _runClock.Elapsed.TotalSeconds);

    /// <summary>Disposes the evaluator's kernels (their worker threads).</summary>
    public void Dispose() => (_evaluator.Kernels as IDisposable)?.Dispose();
}
