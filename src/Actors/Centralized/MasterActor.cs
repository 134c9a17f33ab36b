using System.Diagnostics;
using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using DistSgd.Actors.Protocol;
using DistSgd.Actors.Transport;
using DistSgd.Actors.Steps;
using DistSgd.Numerics.Data;
using DistSgd.Numerics.Models;
using DistSgd.Numerics.Optim;
using DistSgd.Numerics.Training;

namespace DistSgd.Actors.Centralized;

/// <summary>Everything the master of a centralized run starts from; local to the node hosting it.</summary>
/// <param name="WorkerCount">Workers to wait for before the first step.</param>
/// <param name="InitialParameters">θ₀, already initialised from the run's seed.</param>
/// <param name="Test">The held-out set evaluated after every epoch, or null.</param>
/// <param name="Reporter">The local actor told about epochs and the end of the run.</param>
/// <param name="Checkpoints">The checkpoint to resume from and where to write checkpoints, or null for neither.</param>
public sealed record MasterSetup(RunPlan Plan, int WorkerCount, float[] InitialParameters, SgdOptions Optimizer,
                                 TrainingOptions Training, Dataset? Test, IActorRef Reporter, int EvaluationThreads = 1,
                                 CheckpointSetup? Checkpoints = null);

/// <summary>
/// The seed's centralized master, run as a cluster singleton: owns θ and the optimizer state, broadcasts
/// θ each step to the step's participants, gathers one gradient from each, takes the average weighted by
/// sample count, updates θ, and goes on until the stop rule; then reports the final θ.
/// </summary>
/// <remarks>
/// Participants are the registered workers that are still members: one that becomes unreachable or is
/// removed stops being waited for, and a step never waits longer than distsgd.step-timeout.
/// </remarks>
public sealed class MasterActor : ReceiveActor, IWithTimers
{
    private sealed record StepTimedOut(long Step);
    private sealed record StartTimedOut;

    private readonly MasterSetup _setup;
    private readonly DistSgdSettings _settings;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly RunPlan _plan;
    private readonly float[] _parameters;
    private readonly float[] _average;
    private readonly SgdOptimizer _optimizer;
    private readonly Model _evaluator;
    private readonly EarlyStopping _stopping;
    private readonly StepGather _gather;
    private readonly Dictionary<IActorRef, int> _registered = new();
    private readonly SortedDictionary<int, IActorRef> _participants = new();
    private readonly HashSet<int> _accepted = new();
    private readonly List<EpochMetrics> _epochs = new();
    private readonly Stopwatch _runClock = new();
    private readonly ChunkSender _payloads;
    private readonly ChunkAssembler _assembler;
    private readonly DirectDataPlane? _direct;
    private readonly Dictionary<int, string> _endpoints = new();
    private readonly StepCheckpoints _checkpoints;
    private readonly DropLog _drops;
    private readonly ProgressMeter _meter;

    /// <summary>Times a step is asked again when no gradient at all arrived before the run fails.</summary>
    private const int MaxStepRetries = 2;

    private long _step;
    private int _stepRetries;
    private int _epoch = 1;
    private int _stepInEpoch;
    private long _stepStarted;
    private EpochTotals _epochTotals = new();
    private bool _finished;

    public MasterActor(MasterSetup setup)
    {
        _setup = setup;
        _plan = setup.Plan;
        _settings = DistSgdSettings.Create(Context.System);
        _parameters = (float[])setup.InitialParameters.Clone();
        _average = new float[_parameters.Length];
        _optimizer = new SgdOptimizer(setup.Optimizer, _parameters.Length);
        _evaluator = new Model(_plan.Spec, Numerics.Tensors.MatrixKernels.Create(setup.EvaluationThreads));
        _stopping = new EarlyStopping(setup.Training.Patience, setup.Training.MinDelta);
        _gather = new StepGather(_plan.RunId, _parameters.Length);
        _checkpoints = new StepCheckpoints(setup.Checkpoints, _parameters, _optimizer, _stopping, _epochs);
        if (_checkpoints.Resume() is { } resumed)
            (_step, _epoch, _stepInEpoch, _epochTotals) = (resumed.Step, resumed.Epoch, resumed.StepInEpoch, resumed.Totals);
        _drops = new DropLog(text => _log.Warning("{0}", text));
        _meter = new ProgressMeter(_plan.StepsPerEpoch);
        _payloads = new ChunkSender(Context.System, _settings.AkkaChunkSize);
        _assembler = new ChunkAssembler(Context.System) { MaxMessageBytes = DistSgdSerializer.LargestVectorMessage(_parameters.Length) };
        if (_settings.Transport == PayloadTransport.Direct)
        {
            var self = Self;
            _direct = new DirectDataPlane(DistSgdSettings.DataPlane(Context.System, _plan.RunId, _parameters.Length, FrameKind.GradientReply, setup.WorkerCount), m => self.Tell(m));
        }
        WaitingForWorkers();
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(MasterSetup setup) =>
        Akka.Actor.Props.Create(() => new MasterActor(setup)).WithDispatcher(DistSgdSettings.ComputeDispatcher);

    protected override void PreStart()
    {
        Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents,
                                              typeof(ClusterEvent.IReachabilityEvent), typeof(ClusterEvent.MemberRemoved));
        Timers.StartSingleTimer(nameof(StartTimedOut), new StartTimedOut(), _settings.StartTimeout);
        _log.Info("master of {0} waiting for {1} workers; payloads over {2}", _plan, _setup.WorkerCount,
                  _direct is null ? "Akka.Remote" : $"the direct data plane at {_direct.Endpoint}");
    }

    protected override void PreRestart(Exception reason, object message)
    {
        _finished = true;   // a failure may have left a step half applied: no last checkpoint of this state
        base.PreRestart(reason, message);
    }

    protected override void PostStop()
    {
        // Stopped mid-run (SIGTERM, Ctrl+C, the singleton handed over): θ changes only when a step finishes, so this is a
        // step boundary, and a last checkpoint keeps every step taken.
        if (!_finished && _runClock.IsRunning)
            _checkpoints.Now(_step, _epoch, _stepInEpoch, _epochTotals);
        Cluster.Get(Context.System).Unsubscribe(Self);
        _direct?.Dispose();
    }

    // ---- phase 1: registration and joining ---------------------------------------------------------

    private void WaitingForWorkers()
    {
        Receive<RegisterWorker>(HandleRegister);
        Receive<JoinAccepted>(HandleJoinAccepted);
        Receive<JoinRefused>(m => Fail($"worker {m.WorkerIndex} refused to join: {m.Reason}"));
        Receive<StartTimedOut>(_ => Fail(
            $"only {_registered.Count} of {_setup.WorkerCount} workers registered and {_accepted.Count} joined within {_settings.StartTimeout.TotalSeconds:0}s (distsgd.start-timeout)"));
        Receive<ClusterEvent.UnreachableMember>(m => ForgetWorkersAt(m.Member.Address, "unreachable"));
        Receive<ClusterEvent.MemberRemoved>(m => ForgetWorkersAt(m.Member.Address, "removed"));
        Receive<ClusterEvent.IReachabilityEvent>(_ => { });
        Receive<Terminated>(m => ForgetWorker(m.ActorRef, "stopped"));
        Receive<GradientReply>(m => _gather.Offer(m));
        Receive<MessageChunk>(HandleChunk);
        Receive<DataConnectionLost>(_ => { });
    }

    private void HandleChunk(MessageChunk chunk)
    {
        if (_assembler.Add(chunk, Sender) is { } whole)
            Self.Forward(whole);
    }

    private void HandleRegister(RegisterWorker message)
    {
        if (_registered.ContainsKey(message.Worker) || _participants.Count > 0)
            return;
        _registered[message.Worker] = -1;
        Context.Watch(message.Worker);
        _setup.Reporter.Tell(new RunProgress.Note($"worker registered: {message.Worker.Path.Address} ({_registered.Count}/{_setup.WorkerCount})"));
        if (_registered.Count < _setup.WorkerCount)
            return;

        // Indices by address: the same cluster gives the same shards, whatever the registration order.
        int index = 0;
        foreach (var worker in _registered.Keys.OrderBy(w => w.Path.Address.ToString(), StringComparer.Ordinal).ThenBy(w => w.Path.ToString(), StringComparer.Ordinal).ToList())
        {
            _registered[worker] = index;
            _participants[index] = worker;
            worker.Tell(new JoinRun(_plan, index, _setup.WorkerCount, _direct?.Endpoint ?? ""));
            index++;
        }
    }

    private void HandleJoinAccepted(JoinAccepted message)
    {
        if (message.RunId != _plan.RunId || !_participants.ContainsKey(message.WorkerIndex))
            return;
        if (_direct is not null)
        {
            if (message.DataEndpoint.Length == 0)
            {
                Fail($"worker {message.WorkerIndex} at {Sender.Path.Address} joined without a data endpoint; this run's payloads use the direct transport");
                return;
            }
            _endpoints[message.WorkerIndex] = message.DataEndpoint;
        }
        _accepted.Add(message.WorkerIndex);
        if (_accepted.Count < _participants.Count)
            return;
        Timers.Cancel(nameof(StartTimedOut));
        _setup.Reporter.Tell(new RunProgress.Note($"run {_plan.RunId} started with {_participants.Count} workers"));
        _meter.Start(_participants.Select(p => (p.Key, "worker", p.Value.Path.Address.ToString())));
        Become(Stepping);
        _runClock.Start();
        BeginStep();
    }

    // ---- phase 2: synchronous steps ----------------------------------------------------------------

    private void Stepping()
    {
        Receive<GradientReply>(HandleGradient);
        Receive<StepTimedOut>(HandleStepTimeout);
        Receive<ClusterEvent.UnreachableMember>(m => ForgetWorkersAt(m.Member.Address, "unreachable"));
        Receive<ClusterEvent.MemberRemoved>(m => ForgetWorkersAt(m.Member.Address, "removed"));
        Receive<ClusterEvent.IReachabilityEvent>(_ => { });
        Receive<Terminated>(m => ForgetWorker(m.ActorRef, "stopped"));
        Receive<RegisterWorker>(_ => { });
        Receive<JoinAccepted>(_ => { });
        Receive<MessageChunk>(HandleChunk);
        Receive<DataConnectionLost>(HandleConnectionLost);
    }

    private void BeginStep()
    {
        if (_checkpoints.AtStepBoundary(_step, _epoch, _stepInEpoch, _epochTotals) is { } checkpoint)
            _setup.Reporter.Tell(new RunProgress.Note(checkpoint.Describe()));
        _gather.Begin(_step, _participants.Keys);
        _stepStarted = Stopwatch.GetTimestamp();
        Timers.StartSingleTimer(nameof(StepTimedOut), new StepTimedOut(_step), _settings.StepTimeout);
        if (_direct is not null)
        {
            SendParametersDirect();
            return;
        }
        // A fresh copy per step: messages to a worker on this node are not serialized, and θ changes in place.
        var message = new ComputeGradient(_plan.RunId, _step, _epoch, _stepInEpoch, (float[])_parameters.Clone());
        _payloads.Tell(_participants.Values, message, Self);
        _epochTotals.BytesSent += DistSgdSerializer.PayloadBytes(message) * _participants.Count;
    }

    /// <summary>
    /// θ to every participant over the data plane, in worker-index order; the send copies θ into the kernel before
    /// it returns, so no copy of θ is made. A worker that cannot be reached is lost for this step (like an
    /// unreachable member) and is sent to again, on a new connection, next step.
    /// </summary>
    private void SendParametersDirect()
    {
        var header = new FrameHeader(FrameKind.ComputeGradient, 0, _step, 0, _epoch, _stepInEpoch, 0, 0, 0, 0);
        List<int>? unreachable = null;
        foreach (int index in _participants.Keys)
        {
            if (_endpoints.TryGetValue(index, out var endpoint) && _direct!.Send(endpoint, header, _parameters))
                _epochTotals.BytesSent += FrameHeader.Size + (long)_parameters.Length * sizeof(float);
            else
                (unreachable ??= new List<int>()).Add(index);
        }
        if (unreachable is null)
            return;
        foreach (int index in unreachable)
        {
            _log.Warning("step {0}: the data connection to worker {1} failed; not waiting for it this step", _step, index);
            _gather.Forget(index);
        }
        // With nobody reached the step stays open: its timeout asks again rather than taking an empty step.
        if (_gather.IsComplete && _gather.Replies.Count > 0)
            FinishStep();
    }

    private void HandleConnectionLost(DataConnectionLost message)
    {
        _log.Warning("data connection from worker {0} closed ({1})", message.Sender, message.Reason);
        if (_gather.IsOpen && _gather.Forget(message.Sender) && _gather.IsComplete && _gather.Replies.Count > 0)
            FinishStep();
    }

    private void HandleGradient(GradientReply reply)
    {
        // On Akka, a reply must come from the actor of the worker it names; the data plane checked its frames' senders.
        bool fromParticipant = _direct is not null || (_participants.TryGetValue(reply.WorkerIndex, out var worker) && worker.Equals(Sender));
        var outcome = _gather.Offer(reply, fromParticipant);
        if (outcome == GatherOutcome.Accepted)
            _epochTotals.BytesReceived += DistSgdSerializer.PayloadBytes(reply);
        else
            _drops.Record(outcome, $"gradient of worker {reply.WorkerIndex} for step {reply.Step} (run {reply.RunId}, {reply.Gradient.Length} values) from {Sender.Path}");
        if (_gather.IsComplete)
            FinishStep();
    }

    private void HandleStepTimeout(StepTimedOut message)
    {
        if (message.Step != _step || !_gather.IsOpen)
            return;
        var missing = string.Join(", ", _gather.WaitingFor);
        if (_gather.Replies.Count == 0)
        {
            if (++_stepRetries > MaxStepRetries)
            {
                Fail($"no worker answered step {_step} within {MaxStepRetries + 1} × distsgd.step-timeout ({_settings.StepTimeout.TotalSeconds:0}s); waiting for workers {missing}");
                return;
            }
            _log.Warning("step {0}: no gradient within {1}; asking workers {2} again", _step, _settings.StepTimeout, missing);
            BeginStep();
            return;
        }
        _log.Warning("step {0}: workers {1} did not answer within {2}; going on with {3} gradients",
                     _step, missing, _settings.StepTimeout, _gather.Replies.Count);
        FinishStep();
    }

    private void FinishStep()
    {
        Timers.Cancel(nameof(StepTimedOut));
        _gather.Close();
        double wall = Stopwatch.GetElapsedTime(_stepStarted).TotalSeconds;
        var outcome = StepUpdate.Apply(_gather, _average, _optimizer, _parameters, _epochTotals, wall, _epoch, _step);
        if (_direct is not null)
        {
            // The step's gradients are averaged and applied: their arrays take the next step's frames.
            foreach (var reply in _gather.Replies)
                _direct.Return(reply.Gradient);
        }
        if (outcome.Divergence is not null)
        {
            Fail(outcome.Divergence);
            return;
        }

        _step++;
        _stepInEpoch++;
        _stepRetries = 0;
        if (_meter.StepDone(_gather.Replies, wall, _epochTotals, _epoch, _stepInEpoch) is { } progress)
            _setup.Reporter.Tell(progress);
        if (_stepInEpoch == _plan.StepsPerEpoch)
        {
            if (EndEpoch())
                return;
        }
        BeginStep();
    }

    /// <summary>Evaluates, reports and applies the stop rule; true when the run is over.</summary>
    private bool EndEpoch()
    {
        var score = _setup.Test is { } test ? _evaluator.Evaluate(_parameters, test.Features, test.Targets, test.Count) : (Score?)null;
        var metrics = _epochTotals.ToMetrics(_epoch, _step, score, _setup.Test is { IsClassification: true },
                                             _gather.DroppedTotal + (_direct?.BadFrames ?? 0),
                                             DroppedMessages.ByKind(_gather.Dropped, _direct?.BadFrames ?? 0));
        _epochs.Add(metrics);
        _setup.Reporter.Tell(new RunProgress.EpochCompleted(metrics));
        _epochTotals = new EpochTotals();

        bool plateau = _stopping.Observe(metrics.TrainLoss);
        if (plateau || _epoch >= _plan.Epochs)
        {
            Finish(plateau ? StopReason.LossPlateau : StopReason.EpochLimit);
            return true;
        }
        _epoch++;
        _stepInEpoch = 0;
        return false;
    }

    private void Finish(StopReason reason)
    {
        _finished = true;
        Timers.CancelAll();
        foreach (var worker in _participants.Values)
            worker.Tell(new RunEnded(_plan.RunId));
        _direct?.Dispose();
        _setup.Reporter.Tell(new RunProgress.RunCompleted((float[])_parameters.Clone(),
            new TrainingResult(_epochs.ToList(), reason, _runClock.Elapsed.TotalSeconds)));
        Become(Finished);
    }

    private void Fail(string reason)
    {
        if (_finished)
            return;
        _finished = true;
        Timers.CancelAll();
        foreach (var worker in _participants.Values)
            worker.Tell(new RunEnded(_plan.RunId));
        _direct?.Dispose();
        _log.Error("run {0} failed: {1}", _plan.RunId, reason);
        _setup.Reporter.Tell(new RunProgress.RunFailed(reason));
        Become(Finished);
    }

    private void Finished()
    {
        ReceiveAny(_ => { });
    }

    // ---- membership ---------------------------------------------------------------------------------

    private void ForgetWorkersAt(Address address, string why)
    {
        foreach (var worker in _registered.Keys.Where(w => w.Path.Address.Equals(address)).ToList())
            ForgetWorker(worker, why);
    }

    private void ForgetWorker(IActorRef worker, string why)
    {
        if (!_registered.Remove(worker, out int index))
            return;
        _setup.Reporter.Tell(new RunProgress.Note($"worker {index} at {worker.Path.Address} {why}"));
        if (index < 0)
            return;
        _meter.SetState(index, why);
        _participants.Remove(index);
        _accepted.Remove(index);
        if (_participants.Count == 0 && !_finished && _runClock.IsRunning)
        {
            Fail($"every worker was lost (the last, worker {index}, {why})");
            return;
        }
        if (_gather.IsOpen && _gather.Forget(index) && _gather.IsComplete)
            FinishStep();
    }
}
