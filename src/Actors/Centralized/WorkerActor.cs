using System.Diagnostics;
using Akka.Actor;
using Akka.Event;
using DistSgd.Actors.Protocol;
using DistSgd.Actors.Steps;
using DistSgd.Actors.Transport;
using DistSgd.Numerics.Compression;
using DistSgd.Numerics.Data;
using DistSgd.Numerics.Models;
using DistSgd.Numerics.Tensors;
using DistSgd.Numerics.Training;

namespace DistSgd.Actors.Centralized;

/// <summary>
/// The seed's centralized worker: registers with the master (through the singleton proxy), takes its
/// shard of the training set when it joins a run, and for every <see cref="ComputeGradient"/> computes
/// the gradient of its batch at the θ it was sent and replies with it.
/// </summary>
public sealed class WorkerActor : ReceiveActor, IWithTimers
{
    private sealed record Reregister;

    private readonly IActorRef _master;
    private readonly Dataset _train;
    private readonly int _threads;
    private readonly RunPlan? _expected;
    private readonly IActorRef? _reporter;
    private readonly double _slowdown;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private RunPlan? _plan;
    private int _index;
    private Model? _model;
    private ShardBatches? _batches;
    private float[] _features = [];
    private float[] _targets = [];
    private readonly ChunkSender _payloads;
    private readonly ChunkAssembler _assembler;
    private readonly DistSgdSettings _settings;
    private DirectDataPlane? _dataPlane;
    private string _masterEndpoint = "";
    private float[] _gradient = [];
    /// <summary>The run's encoding at this sender (null: dense float32); its error feedback lives as long as the run's data plane.</summary>
    private GradientCompressor? _compressor;
    private int _shardIndex = -1;
    private int _shardCount;
    /// <summary>This worker's batch in a balanced epoch (its units of the shard count); 0 = the run's batch on shard index of count.</summary>
    private int _shardWidth;
    /// <summary>The latest θ this worker was sent and the one before (a new master recovers from them).</summary>
    private ComputeGradient? _latest;
    private ComputeGradient? _previous;
    private IActorRef _joinedMaster = ActorRefs.Nobody;
    private readonly ComputeRequestCheck _check = new();
    private readonly DropLog _drops;
    private readonly NodeMeters _meters;
    /// <summary>This worker's track of the step trace (distsgd.step-trace, --trace), from its first join; or null.</summary>
    private StepTrace? _trace;
    /// <summary>Local SGD (the plan's sync-every &gt; 1): this worker's own optimizer and θ for a round's steps; null: one gradient per θ.</summary>
    private LocalRound? _round;
    /// <summary>Steps the latest θ was stepped for (a local-SGD round's; 1 otherwise): the master's next θ, or its update, is that many steps on.</summary>
    private int _latestSteps = 1;

    /// <param name="master">The master, usually a ClusterSingletonProxy.</param>
    /// <param name="train">This node's copy of the training set; the worker computes on its shard only.</param>
    /// <param name="threads">Threads of this worker's matrix kernels.</param>
    /// <param name="expected">
    /// The run this node was configured for (a `distsgd node` process describes the run itself), or null to
    /// take whatever run the master plans; a plan that differs (run id aside) is refused, naming the difference.
    /// </param>
    /// <param name="reporter">A local actor told when this worker refuses a run (<see cref="Steps.RunProgress.RunFailed"/>)
    /// or a run it joined ends (<see cref="RunEnded"/>), or null.</param>
    /// <param name="slowdown">Tests and benchmarks: each gradient takes this many times as long (<see cref="Slowdown"/>; 1 = off).</param>
    public WorkerActor(IActorRef master, Dataset train, int threads, RunPlan? expected = null, IActorRef? reporter = null, double slowdown = 1)
    {
        _slowdown = slowdown;
        _master = master;
        _train = train;
        _threads = threads;
        _settings = DistSgdSettings.Create(Context.System);
        _payloads = new ChunkSender(Context.System, _settings.AkkaChunkSize);
        _expected = expected;
        _reporter = reporter;
        _assembler = new ChunkAssembler(Context.System);
        _meters = NodeMeters.Of(Context.System, "worker");
        _drops = new DropLog(text => _log.Warning("{0}", text), meters: _meters);
        Receive<MessageChunk>(chunk =>
        {
            if (_assembler.Add(chunk, Sender) is { } whole)
                Self.Forward(whole);
        });
        Receive<Reregister>(_ => _master.Tell(new RegisterWorker(Self, Position())));
        Receive<JoinRun>(HandleJoin);
        Receive<RequestHeldParameters>(HandleRequestHeld);
        Receive<Terminated>(HandleMasterTerminated);
        Receive<ComputeGradient>(HandleCompute);
        Receive<RunEnded>(HandleRunEnded);
        // Info, not a warning: the master closes its connections at the end of every run, often before its
        // RunEnded arrives; a master that is really lost shows in cluster membership and the master's own log.
        Receive<DataConnectionLost>(m => _log.Info("data connection from the master closed ({0})", m.Reason));
    }

    public ITimerScheduler Timers { get; set; } = null!;

    /// <summary>Dropped compute requests (another run, before joining, not from the master, malformed); for tests and metrics.</summary>
    public long Dropped => _check.DroppedTotal;

    public static Props Props(IActorRef master, Dataset train, int threads = 1, RunPlan? expected = null, IActorRef? reporter = null,
                              double slowdown = 1) =>
        Akka.Actor.Props.Create(() => new WorkerActor(master, train, threads, expected, reporter, slowdown)).WithDispatcher(DistSgdSettings.ComputeDispatcher);

    protected override void PreStart()
    {
        _master.Tell(new RegisterWorker(Self));
        Timers.StartPeriodicTimer(nameof(Reregister), new Reregister(), TimeSpan.FromSeconds(1));
    }

    /// <summary>Where this worker stands in the run it joined, for a new master; null before any run.</summary>
    private WorkerPosition? Position() =>
        _plan is null ? null
            : new WorkerPosition(_plan.RunId, _index, _latest?.Step ?? -1, _latest?.Epoch ?? 0, _latest?.StepInEpoch ?? 0,
                                 _shardIndex, _shardCount, _previous is not null && _latest is not null && _previous.Step == _latest.Step - 1);

    /// <summary>
    /// The master this worker joined stopped (its node was downed or left): register again, with this worker's position,
    /// until the singleton's new incarnation answers (<see cref="JoinRun"/>). θ stays held for it.
    /// </summary>
    private void HandleMasterTerminated(Terminated message)
    {
        if (!message.ActorRef.Equals(_joinedMaster) || _plan is null)
            return;
        _joinedMaster = ActorRefs.Nobody;
        _log.Warning("the master of {0} stopped at step {1}; registering with its successor", _plan.RunId, _latest?.Step ?? -1);
        Self.Tell(new Reregister());
        Timers.StartPeriodicTimer(nameof(Reregister), new Reregister(), TimeSpan.FromSeconds(1));
    }

    /// <summary>A recovering master asks for θ: the step before first (when held), then the latest.</summary>
    private void HandleRequestHeld(RequestHeldParameters message)
    {
        if (_plan?.RunId != message.RunId || _latest is null)
            return;
        if (_previous is not null && _previous.Step == _latest.Step - 1)
            _payloads.Tell(Sender, new HeldParameters(message.RunId, _previous.Step, _previous.Parameters), Self);
        _payloads.Tell(Sender, new HeldParameters(message.RunId, _latest.Step, _latest.Parameters), Self);
    }

    /// <summary>The process id of worker 0's track in a step trace (peers use their node ids, the master 1000).</summary>
    public const int WorkerTraceProcess = 2000;

    protected override void PostStop()
    {
        _trace?.WriteOrWarn(_settings, _log);
        _meters.Dispose();
        _dataPlane?.Dispose();
        DisposeModel();
    }

    /// <summary>The model's kernels own worker threads (a <see cref="PackedKernels"/> with more than one thread).</summary>
    private void DisposeModel()
    {
        (_model?.Kernels as IDisposable)?.Dispose();
        _model = null;
    }

    private void HandleJoin(JoinRun message)
    {
        var plan = message.Plan;
        string? problem = DataMismatch(plan);
        if (problem is not null)
        {
            _log.Error("refusing {0}: {1}", plan, problem);
            Sender.Tell(new JoinRefused(plan.RunId, message.WorkerIndex, problem));
            _reporter?.Tell(new Steps.RunProgress.RunFailed($"this worker refused {plan.RunId}: {problem}"));
            return;
        }
        Timers.Cancel(nameof(Reregister));
        if (!Sender.Equals(_joinedMaster))
        {
            if (!_joinedMaster.IsNobody())
                Context.Unwatch(_joinedMaster);
            _joinedMaster = Sender;
            Context.Watch(Sender);
        }
        if (_plan?.RunId != plan.RunId)
            (_latest, _previous) = (null, null);
        if (_plan?.RunId != plan.RunId || _model is null)
        {
            DisposeModel();
            _model = new Model(plan.Spec, MatrixKernels.Create(_threads));
            _features = new float[plan.BatchSizePerWorker * plan.Spec.InputCount];
            _targets = new float[plan.BatchSizePerWorker];
            // Local SGD: its velocity is this worker's own from round to round, kept when a new master takes the run over.
            _round = plan.SyncEvery > 1
                ? new LocalRound(LocalSgd.OptimizerFromKeys(plan.Hyperparameters, (long)plan.Epochs * plan.StepsPerEpoch, plan.StepsPerEpoch), plan.Spec.ParameterCount)
                : null;
        }
        _plan = plan;
        _index = message.WorkerIndex;
        _check.Join(plan.RunId, plan.Spec.ParameterCount);
        _assembler.MaxMessageBytes = WireFormat.LargestVectorMessage(plan.Spec.ParameterCount);
        // A worker joining a run under way computes on the shard its first ComputeGradient names.
        if (message.WorkerIndex < message.WorkerCount)
            UseShard(message.WorkerIndex, message.WorkerCount);
        _log.Info("joined {0} as worker {1} of {2}: shard of {3} samples", plan, message.WorkerIndex, message.WorkerCount, _batches?.ShardSize ?? 0);
        _trace ??= StepTrace.Start(_settings, WorkerTraceProcess + message.WorkerIndex, $"worker {message.WorkerIndex}", 1);
        string endpoint = OpenDataPlane(message);
        if (_trace is { } trace && _dataPlane is not null)
            _dataPlane.FrameReceived = (sender, step, headerAt, completeAt) => trace.Received(sender, step, headerAt, completeAt);
        Sender.Tell(new JoinAccepted(plan.RunId, message.WorkerIndex, endpoint, _dataPlane?.Key));
    }

    /// <summary>
    /// The master's transport decides the run's: with a master data endpoint this worker listens for θ on its own
    /// data plane (one per run) and returns its endpoint; otherwise payloads stay on Akka and the endpoint is empty.
    /// </summary>
    private string OpenDataPlane(JoinRun message)
    {
        _masterEndpoint = message.MasterEndpoint;
        if (_masterEndpoint.Length == 0)
        {
            _dataPlane?.Dispose();
            _dataPlane = null;
            return "";
        }
        _dataPlane?.Dispose();
        var self = Self;
        _dataPlane = new DirectDataPlane(DistSgdSettings.DataPlane(Context.System, message.Plan.RunId, message.Plan.Spec.ParameterCount, FrameKind.ComputeGradient, 1, message.Plan.Wire), ComputeGradient.FromFrame, m => self.Tell(m));
        _dataPlane.LogRefusals(text => _log.Warning("{0}", text));
        // The master is node 0 of this plane: its θ connections, and the answers to this worker's, prove its key.
        if (DataPlaneHandshake.IsKey(message.MasterKey))
            _dataPlane.Trust(0, _masterEndpoint, message.MasterKey!);
        if (_gradient.Length != message.Plan.Spec.ParameterCount)
            _gradient = new float[message.Plan.Spec.ParameterCount];
        var plan = message.Plan;
        var wire = plan.Wire;
        // Top-k with momentum correction: this worker applies the run's momentum to its gradients, the master steps without.
        double momentum = wire.SendersApplyMomentum(plan.SyncEvery)
            ? LocalSgd.OptimizerFromKeys(plan.Hyperparameters, (long)plan.Epochs * plan.StepsPerEpoch, plan.StepsPerEpoch).Momentum : 0;
        _compressor = wire.IsIdentity ? null : new GradientCompressor(wire, plan.Spec.ParameterCount, momentum);
        return _dataPlane.Endpoint;
    }

    /// <summary>
    /// This epoch's shard: rank <paramref name="index"/> of <paramref name="count"/> participants (ShardBatches), or in a
    /// balanced epoch units <paramref name="index"/> to <paramref name="index"/> + <paramref name="width"/> − 1 of
    /// <paramref name="count"/> with a batch of <paramref name="width"/> (<see cref="ShardBatches.ForUnits"/>).
    /// </summary>
    private void UseShard(int index, int count, int width = 0)
    {
        if (_batches is not null && index == _shardIndex && count == _shardCount && width == _shardWidth)
            return;
        _batches = width > 0 ? ShardBatches.ForUnits(_train, index, width, count, _plan!.Seed)
                             : new ShardBatches(_train, index, count, _plan!.BatchSizePerWorker, _plan.Seed);
        if (_features.Length < _batches.BatchSize * _plan.Spec.InputCount)
        {
            _features = new float[_batches.BatchSize * _plan.Spec.InputCount];
            _targets = new float[_batches.BatchSize];
        }
        if (_shardCount > 0)
            _log.Info("now computing on shard {0} of {1} ({2} samples, batch {3})", index, count, _batches.ShardSize, _batches.BatchSize);
        (_shardIndex, _shardCount, _shardWidth) = (index, count, width);
    }

    /// <summary>
    /// Whether the request's shard fits this node's training set: a shard index below the count, or in a balanced epoch
    /// units inside the count, no more units than samples; none at all only for a worker that already has one.
    /// </summary>
    private bool ShardFits(ComputeGradient message)
    {
        if (message.ShardCount <= 0)
            return _batches is not null;
        if (message.BatchSize == 0)
            return (uint)message.ShardIndex < (uint)message.ShardCount;
        return message.BatchSize > 0 && message.ShardIndex >= 0 && message.ShardCount <= _train.Count
               && (long)message.ShardIndex + message.BatchSize <= message.ShardCount;
    }

    private void HandleCompute(ComputeGradient message)
    {
        if (message.IsUpdate && !TakeUpdate(ref message))
            return;
        // On the direct transport θ comes from this node's data plane (no sender); on Akka from the master that sent JoinRun.
        bool fromMaster = Sender.Equals(_joinedMaster) || (_dataPlane is not null && Sender.IsNobody());
        var outcome = _check.Judge(message, fromMaster);
        // A shard outside the epoch's count, or none at all (a worker that joined under way gets its shard with its first step).
        if (outcome == GatherOutcome.Accepted && !ShardFits(message))
            outcome = GatherOutcome.NotParticipant;
        if (outcome != GatherOutcome.Accepted || _model is null || _plan is null)
        {
            _dataPlane?.Return(message.Parameters);
            _drops.Record(outcome, $"θ for step {message.Step} (run {message.RunId}, {message.Parameters.Length} values) from {Sender.Path}");
            return;
        }
        if (message.ShardCount > 0)
            UseShard(message.ShardIndex, message.ShardCount, message.BatchSize);
        // Held for a successor master; the θ that falls out of the two held goes back to the data plane.
        if (_previous is { } old && !ReferenceEquals(old.Parameters, message.Parameters))
            _dataPlane?.Return(old.Parameters);
        (_previous, _latest) = (_latest, message);
        _meters.Received(WireFormat.PayloadBytes(message));
        long started = Stopwatch.GetTimestamp();
        if (_round is not null)
        {
            TakeRound(_round, message, started);
            return;
        }
        int rows = _batches!.Gather(message.Epoch, message.StepInEpoch, _features, _targets);
        if (_dataPlane is not null)
        {
            ReplyDirect(message, rows, started);
            return;
        }
        if (rows == 0)
        {
            Sender.Tell(new GradientReply(message.RunId, message.Step, _index, 0, 0, 0, []));
            return;
        }
        // A fresh array per reply: remoting serializes it later, on another thread.
        var gradient = new float[_model.ParameterCount];
        float loss = _model.LossAndGradient(message.Parameters, _features.AsSpan(0, rows * _plan.Spec.InputCount),
                                            _targets.AsSpan(0, rows), rows, gradient);
        Slowdown.After(_slowdown, started);
        long computed = Stopwatch.GetTimestamp();
        double seconds = Stopwatch.GetElapsedTime(started, computed).TotalSeconds;
        var reply = new GradientReply(message.RunId, message.Step, _index, rows, (double)loss * rows, seconds, gradient);
        _meters.Step(rows, reply.LossSum, seconds, 0);
        _meters.Sent(WireFormat.PayloadBytes(reply));
        _payloads.Tell(Sender, reply, Self);
        Traced(message.Step, started, computed);
    }

    /// <summary>
    /// An update of θ (<see cref="ParameterUpdates"/>) becomes θ of its step, added to the θ this worker holds of the step
    /// before; false, dropped and counted, when it holds none or the sum differs from the master's.
    /// </summary>
    private bool TakeUpdate(ref ComputeGradient message)
    {
        if (_latest is { } held && held.RunId == message.RunId && held.Step + _latestSteps == message.Step
            && ParameterUpdates.Apply(held.Parameters, message.Parameters, message.Checksum))
        {
            message = message with { IsUpdate = false, Checksum = 0 };
            return true;
        }
        _dataPlane?.Return(message.Parameters);
        _drops.Record(GatherOutcome.NotParticipant,
                      $"update of θ for step {message.Step} (run {message.RunId}): this worker does not hold the master's θ of step {message.Step - _latestSteps}");
        return false;
    }

    /// <summary>
    /// The gradient to the master's data endpoint. One reused buffer: the send hands the bytes to the kernel
    /// before it returns. A failed send is not retried; the master counts this worker lost for the step.
    /// </summary>
    private void ReplyDirect(ComputeGradient message, int rows, long started)
    {
        float loss = 0;
        if (rows > 0)
            loss = _model!.LossAndGradient(message.Parameters, _features.AsSpan(0, rows * _plan!.Spec.InputCount),
                                           _targets.AsSpan(0, rows), rows, _gradient);
        SendDirect(message, rows, (double)loss * rows, started);
    }

    /// <summary>
    /// Sends what <see cref="_gradient"/> holds (a gradient, or a local-SGD round's change) as the reply to
    /// <paramref name="message"/>, made what the wire delivers first; one that is not finite goes as a non-finite reply.
    /// </summary>
    private void SendDirect(ComputeGradient message, int rows, double lossSum, long started)
    {
        double sentLossSum = rows == 0 || _compressor is null || _compressor.Compress(_gradient) ? lossSum : double.NaN;
        Slowdown.After(_slowdown, started);
        long computed = Stopwatch.GetTimestamp();
        double seconds = Stopwatch.GetElapsedTime(started, computed).TotalSeconds;
        _meters.Step(rows, lossSum, seconds, 0);
        var header = new FrameHeader(FrameKind.GradientReply, 0, message.Step, _index, message.Epoch, message.StepInEpoch,
                                     rows, sentLossSum, seconds, 0);
        if (_dataPlane!.Send(_masterEndpoint, header, rows > 0 ? _gradient : ReadOnlySpan<float>.Empty))
            _meters.Sent(_dataPlane.LastFrameBytes);   // the frame as encoded (distsgd.wire, distsgd.compress)
        else
            _log.Warning("step {0}: could not send the gradient to the master at {1}", message.Step, _masterEndpoint);
        Traced(message.Step, started, computed);
    }

    /// <summary>
    /// Local SGD (decision 0091): the round that θ of <paramref name="message"/> opens, on this worker's shard with its own
    /// optimizer (<see cref="LocalRound"/>); the reply is the change over the round and the round's samples and loss.
    /// The round's length follows from the position alone, as the master's does (<see cref="LocalSgd.RoundSteps"/>).
    /// </summary>
    private void TakeRound(LocalRound round, ComputeGradient message, long started)
    {
        var plan = _plan!;
        int stepsPerEpoch = ShardBatches.StepsPerEpoch(plan.TrainCount, _shardCount, plan.BatchSizePerWorker);
        int steps = _latestSteps = LocalSgd.RoundSteps(message.StepInEpoch, stepsPerEpoch, plan.SyncEvery);
        long remaining = (long)(plan.Epochs - message.Epoch) * stepsPerEpoch + Math.Max(0, stepsPerEpoch - message.StepInEpoch);
        var change = _dataPlane is null ? new float[plan.Spec.ParameterCount] : _gradient;   // over Akka: remoting serializes it later
        var (rows, lossSum) = round.Run(message.Parameters, message.Step, remaining, steps, _model!, _batches!, message.Epoch,
                                        message.StepInEpoch, _features, _targets, change);
        if (_dataPlane is not null)
        {
            SendDirect(message, rows, lossSum, started);
            return;
        }
        Slowdown.After(_slowdown, started);
        long computed = Stopwatch.GetTimestamp();
        double seconds = Stopwatch.GetElapsedTime(started, computed).TotalSeconds;
        var reply = new GradientReply(message.RunId, message.Step, _index, rows, lossSum, seconds, rows > 0 ? change : []);
        _meters.Step(rows, lossSum, seconds, 0);
        _meters.Sent(WireFormat.PayloadBytes(reply));
        _payloads.Tell(Sender, reply, Self);
        Traced(message.Step, started, computed);
    }

    /// <summary>The step's spans on this worker's track: compute, then send (handing the gradient to the transport).</summary>
    private void Traced(long step, long started, long computed)
    {
        if (_trace is not { } trace)
            return;
        long sent = Stopwatch.GetTimestamp();
        trace.Add(StepPhase.Compute, step, started, computed);
        trace.Add(StepPhase.Send, step, computed, sent);
        trace.Add(StepPhase.Step, step, started, sent, value: -1);   // the worker's allocations are not measured
    }

    private void HandleRunEnded(RunEnded message)
    {
        if (_plan?.RunId != message.RunId)
            return;
        _dataPlane?.Dispose();
        _dataPlane = null;
        _log.Info("run {0} ended", message.RunId);
        _plan = null;
        _batches = null;
        (_latest, _previous, _shardIndex, _shardCount, _shardWidth) = (null, null, -1, 0, 0);
        if (!_joinedMaster.IsNobody())
            Context.Unwatch(_joinedMaster);
        _joinedMaster = ActorRefs.Nobody;
        _check.Leave();
        _reporter?.Tell(message);
    }

    /// <summary>Why this node's data cannot serve the plan, or null when it can.</summary>
    private string? DataMismatch(RunPlan plan)
    {
        if (_expected is not null && _expected.Differences(plan, "on this node", "at the master") is { Count: > 0 } differences)
            return "the master runs a different run configuration: " + string.Join("; ", differences);
        if (plan.SyncEvery > 1 || plan.Wire.SendersApplyMomentum(plan.SyncEvery))
        {
            try
            {
                LocalSgd.OptimizerFromKeys(plan.Hyperparameters, plan.Epochs, 1);
            }
            catch (Exception e) when (e is FormatException or ArgumentException)
            {
                return plan.SyncEvery > 1
                    ? $"local SGD (sync-every = {plan.SyncEvery}) steps with the run's optimizer, which its hyper-parameters do not give: {e.Message}"
                    : $"{plan.Wire.CompressName} applies the run's momentum at this worker, which its hyper-parameters do not give: {e.Message}";
            }
        }
        return plan.DataMismatch(_train);
    }
}
