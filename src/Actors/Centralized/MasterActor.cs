using System.Diagnostics;
using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using DistSgd.Actors.Membership;
using DistSgd.Actors.Protocol;
using DistSgd.Actors.Transport;
using DistSgd.Actors.Steps;
using DistSgd.Numerics.Data;
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
/// Participants are the registered workers that are still members: one that becomes unreachable, is removed or
/// whose data connection drops stops being waited for at once, and a step never waits longer than
/// distsgd.step-timeout. Each epoch's shards are cut among that epoch's participants (rank in worker-index order),
/// so a lost worker's data goes to the others from the next epoch; a worker that (re)joins takes part from the
/// next epoch. A master that starts while workers hold θ of its run (the singleton moved) recovers the run from
/// them (<see cref="MasterRecovery"/>). A master that sees itself on the minority side of a partition applies and
/// starts no step until the majority is back or the split brain resolver downs its node.
/// </remarks>
public sealed class MasterActor : ReceiveActor, IWithTimers, IStepExchange
{
    private sealed record StartTimedOut;
    private sealed record RecoveryWaitOver;
    private sealed record RecheckSuspect(IActorRef Worker);

    /// <summary>How long a new master waits, after the first worker reports θ of its run, for the others to register.</summary>
    private static readonly TimeSpan RecoveryWait = TimeSpan.FromSeconds(1.5);

    private readonly MasterSetup _setup;
    private readonly DistSgdSettings _settings;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly RunPlan _plan;
    private readonly Replica _replica;
    private readonly StepGather _gather;
    /// <summary>Made in PreStart: Akka sets <see cref="Timers"/> after the constructor.</summary>
    private StepLoop _loop = null!;
    private readonly ParticipantTracker<IActorRef> _tracker;
    private readonly Dictionary<IActorRef, int> _registered = new();
    private readonly SortedDictionary<int, IActorRef> _participants = new();
    private readonly HashSet<int> _accepted = new();
    private readonly ChunkSender _payloads;
    private readonly ChunkAssembler _assembler;
    private readonly DirectDataPlane? _dataPlane;
    private readonly Dictionary<int, string> _endpoints = new();
    /// <summary>Workers accepted while the run is under way: they take part from the next epoch.</summary>
    private readonly SortedDictionary<int, IActorRef> _joining = new();
    /// <summary>This epoch's shard of each participant (its rank among the epoch's participants).</summary>
    private readonly Dictionary<int, int> _shards = new();
    /// <summary>Workers whose data connection failed, not yet known to the cluster as unreachable: invited again if they turn out alive.</summary>
    private readonly Dictionary<IActorRef, Address> _suspects = new();
    private readonly MasterRecovery _recovery;
    private int _shardCount;
    private bool _recovering;
    private bool _pausedInMinority;
    private readonly DropLog _drops;
    private readonly ProgressMeter _meter;

    private bool _finished;

    public MasterActor(MasterSetup setup)
    {
        _setup = setup;
        _plan = setup.Plan;
        _settings = DistSgdSettings.Create(Context.System);
        _replica = new Replica(_plan, setup.InitialParameters, setup.Optimizer, setup.Training,
                               Numerics.Tensors.MatrixKernels.Create(setup.EvaluationThreads), setup.Checkpoints);
        int parameterCount = _replica.Parameters.Length;
        _gather = new StepGather(_plan.RunId, parameterCount);
        _tracker = new ParticipantTracker<IActorRef>(address => _registered.Keys.Where(w => w.Path.Address.Equals(address)).ToList());
        _drops = new DropLog(text => _log.Warning("{0}", text));
        _meter = new ProgressMeter(_plan.StepsPerEpoch);
        _payloads = new ChunkSender(Context.System, _settings.AkkaChunkSize);
        _assembler = new ChunkAssembler(Context.System) { MaxMessageBytes = DistSgdSerializer.LargestVectorMessage(parameterCount) };
        if (_settings.Transport == PayloadTransport.Direct)
        {
            var self = Self;
            _dataPlane = new DirectDataPlane(DistSgdSettings.DataPlane(Context.System, _plan.RunId, parameterCount, FrameKind.GradientReply, MaxWorkers), GradientReply.FromFrame, m => self.Tell(m));
        }
        _recovery = new MasterRecovery(_plan.RunId);
        WaitingForWorkers();
    }

    public ITimerScheduler Timers { get; set; } = null!;

    /// <summary>Worker indices run from 0 to this − 1: the planned workers and as many replacements.</summary>
    private int MaxWorkers => 2 * _setup.WorkerCount;

    public static Props Props(MasterSetup setup) =>
        Akka.Actor.Props.Create(() => new MasterActor(setup)).WithDispatcher(DistSgdSettings.ComputeDispatcher);

    protected override void PreStart()
    {
        _loop = new StepLoop(_replica, this, Timers, _settings.StepTimeout);
        Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents,
                                              typeof(ClusterEvent.IReachabilityEvent), typeof(ClusterEvent.MemberRemoved));
        Timers.StartSingleTimer(nameof(StartTimedOut), new StartTimedOut(), _settings.StartTimeout);
        _log.Info("master of {0} waiting for {1} workers; payloads over {2}", _plan, _setup.WorkerCount,
                  _dataPlane is null ? "Akka.Remote" : $"the direct data plane at {_dataPlane.Endpoint}");
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
        if (!_finished && _replica.IsRunning)
            _replica.CheckpointNow();
        Cluster.Get(Context.System).Unsubscribe(Self);
        _dataPlane?.Dispose();
        _replica.Dispose();
    }

    // ---- phase 1: registration and joining ---------------------------------------------------------

    private void WaitingForWorkers()
    {
        Receive<RegisterWorker>(HandleRegister);
        Receive<JoinAccepted>(HandleJoinAccepted);
        Receive<JoinRefused>(m => Fail($"worker {m.WorkerIndex} refused to join: {m.Reason}"));
        Receive<StartTimedOut>(_ => Fail(
            $"only {_registered.Count} of {_setup.WorkerCount} workers registered and {_accepted.Count} joined within {_settings.StartTimeout.TotalSeconds:0}s (distsgd.start-timeout)"));
        Receive<RecoveryWaitOver>(_ => RequestHeldParameters());
        Receive<HeldParameters>(HandleHeldParameters);
        Receive<ClusterEvent.UnreachableMember>(HandleMembership);
        Receive<ClusterEvent.MemberRemoved>(HandleMembership);
        Receive<ClusterEvent.IReachabilityEvent>(_ => { });
        Receive<Terminated>(m => ForgetWorker(m.ActorRef, LossCause.Stopped.Describe()));
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
        if (_registered.ContainsKey(message.Worker) || _participants.Count > 0 || _recovering)
            return;
        if (_recovery.Offer(message.Worker, message.Position))
        {
            // A worker holds θ of this run: it is under way and this master is its successor.
            _registered[message.Worker] = -1;
            Context.Watch(message.Worker);
            if (_recovery.Positions.Count == 1)
            {
                _log.Warning("run {0} is under way (worker {1} holds θ of step {2}): recovering it from the workers",
                             _plan.RunId, message.Position!.WorkerIndex, message.Position.Step);
                Timers.StartSingleTimer(nameof(RecoveryWaitOver), new RecoveryWaitOver(), RecoveryWait);
            }
            if (_recovery.Positions.Count >= _setup.WorkerCount)
                RequestHeldParameters();
            return;
        }
        if (_recovery.IsUnderWay)
            return;   // a worker that has not yet joined this run joins it later, as a replacement
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
            worker.Tell(new JoinRun(_plan, index, _setup.WorkerCount, _dataPlane?.Endpoint ?? ""));
            index++;
        }
    }

    private void HandleJoinAccepted(JoinAccepted message)
    {
        if (_recovering && _joining.ContainsKey(message.WorkerIndex))
        {
            HandleJoinUnderWay(message);
            return;
        }
        if (message.RunId != _plan.RunId || !_participants.ContainsKey(message.WorkerIndex))
            return;
        if (_dataPlane is not null)
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
        _setup.Reporter.Tell(new RunProgress.Note(_recovering
            ? $"{Now} run {_plan.RunId} recovered at step {_replica.Step} (epoch {_replica.Epoch}, step {_replica.StepInEpoch} of {_replica.StepsPerEpoch}) with {_participants.Count} workers; training again"
            : $"run {_plan.RunId} started with {_participants.Count} workers"));
        _meter.Start(_participants.Select(p => (p.Key, "worker", p.Value.Path.Address.ToString())));
        Become(Stepping);
        _replica.Start();
        _loop.Begin();
    }

    /// <summary>Steps of an epoch cut into <paramref name="shards"/> shards: the largest shard's batch count (the plan's with every planned worker).</summary>
    private int StepsPerEpoch(int shards) =>
        shards == _setup.WorkerCount ? _plan.StepsPerEpoch : ShardBatches.StepsPerEpoch(_plan.TrainCount, shards, _plan.BatchSizePerWorker);

    private static string Now => DateTime.UtcNow.ToString("HH:mm:ss.fff", System.Globalization.CultureInfo.InvariantCulture);

    // ---- taking over a run under way (the singleton moved) --------------------------------------------

    /// <summary>Asks the worker with the highest step for the θ it holds.</summary>
    private void RequestHeldParameters()
    {
        Timers.Cancel(nameof(RecoveryWaitOver));
        if (_recovery.Source is not { } source)
        {
            Fail("every worker that held θ of the run was lost before this master could recover it");
            return;
        }
        _recovering = true;
        _log.Info("recovering θ of step {0} from worker {1} at {2}", source.Position.Step, source.Position.WorkerIndex, source.Worker.Path.Address);
        source.Worker.Tell(new RequestHeldParameters(_plan.RunId));
    }

    /// <summary>
    /// θ of the source's step (and of the step before) arrived: θ, the step, the epoch's position and the momentum
    /// (rebuilt from the two θ, <see cref="MomentumRecovery"/>) are restored, and the workers are asked to join again.
    /// Workers that were computing in this epoch keep their shard until it ends; the others take part from the next.
    /// </summary>
    private void HandleHeldParameters(HeldParameters message)
    {
        if (!_recovering || !_recovery.Accept(message, _replica.Parameters.Length) || !_recovery.IsComplete)
            return;
        var source = _recovery.Source!.Value.Position;
        _recovery.Parameters.CopyTo(_replica.Parameters, 0);
        var velocity = new float[_setup.Optimizer.Momentum > 0 ? _replica.Parameters.Length : 0];
        string momentum = velocity.Length == 0 ? "no momentum to recover"
            : _recovery.Previous is { } previous
              && MomentumRecovery.TryVelocity(_setup.Optimizer, previous, _replica.Parameters, _setup.Optimizer.Schedule.RateAt(source.Step - 1, _setup.Optimizer.LearningRate), velocity)
                ? $"momentum rebuilt from θ of steps {source.Step - 1} and {source.Step}"
                : "momentum restarts from 0 (the source did not hold two consecutive θ, or Nesterov momentum)";
        _replica.Optimizer.Restore(new Numerics.Optim.SgdState(source.Step, velocity));
        _replica.MoveTo(source.Step, source.Epoch, source.StepInEpoch);
        _shardCount = source.ShardCount;
        _replica.StepsPerEpoch = StepsPerEpoch(_shardCount);
        _setup.Reporter.Tell(new RunProgress.Note($"{Now} new master: θ of step {_replica.Step} recovered from worker {source.WorkerIndex}; {momentum}"));

        foreach (var (worker, position) in _recovery.Positions)
        {
            _registered[worker] = position.WorkerIndex;
            bool inThisEpoch = position.Epoch == _replica.Epoch && position.ShardCount == _shardCount && position.ShardIndex >= 0;
            if (inThisEpoch)
            {
                _participants[position.WorkerIndex] = worker;
                _shards[position.WorkerIndex] = position.ShardIndex;
            }
            else
            {
                _joining[position.WorkerIndex] = worker;
            }
        }
        if (_participants.Count == 0)
        {
            // Nobody can finish this epoch's shards (its metrics are lost): the next epoch starts with whoever is here.
            foreach (var (index, worker) in _joining)
                _participants[index] = worker;
            _joining.Clear();
            _replica.NextEpoch();
            _shardCount = 0;
        }
        foreach (var (index, worker) in _participants.Concat(_joining))
            worker.Tell(new JoinRun(_plan, index, _shardCount, _dataPlane?.Endpoint ?? ""));
        // Joins of the workers that are not in this epoch are handled while stepping, like any replacement.
        foreach (var index in _joining.Keys)
            _accepted.Remove(index);
    }

    // ---- phase 2: synchronous steps ----------------------------------------------------------------

    private void Stepping()
    {
        Receive<GradientReply>(HandleGradient);
        Receive<StepLoop.StepTimedOut>(m => _loop.HandleTimeout(m));
        Receive<ClusterEvent.UnreachableMember>(HandleMembership);
        Receive<ClusterEvent.MemberRemoved>(HandleMembership);
        Receive<ClusterEvent.ReachableMember>(HandleMembership);
        Receive<ClusterEvent.IReachabilityEvent>(_ => { });
        Receive<Terminated>(m => ForgetWorker(m.ActorRef, LossCause.Stopped.Describe()));
        Receive<RegisterWorker>(HandleRegisterUnderWay);
        Receive<JoinAccepted>(HandleJoinUnderWay);
        Receive<JoinRefused>(m => ForgetWorker(Sender, $"refused to join: {m.Reason}"));
        Receive<MessageChunk>(HandleChunk);
        Receive<DataConnectionLost>(HandleConnectionLost);
        Receive<HeldParameters>(_ => { });
        Receive<RecheckSuspect>(HandleRecheckSuspect);
    }

    /// <summary>
    /// A worker whose data connection dropped or refused θ is taken out of the run at once, without waiting for the
    /// failure detector (a crashed process closes its sockets within milliseconds): it is not waited for in this
    /// step, and the next epoch's shards are cut without it. The caller finishes the step if it is complete.
    /// If the cluster still counts it reachable a little later, it was a blip: it is invited back (next epoch).
    /// </summary>
    private void Suspect(int index, string why)
    {
        if (!_participants.TryGetValue(index, out var worker) && !_joining.TryGetValue(index, out worker))
            return;
        _registered.Remove(worker);
        _participants.Remove(index);
        _joining.Remove(index);
        _accepted.Remove(index);
        _suspects[worker] = worker.Path.Address;
        _setup.Reporter.Tell(new RunProgress.Note($"{Now} step {_replica.Step}: worker {index} at {worker.Path.Address} {why}; not waited for, its shard goes to the others from the next epoch"));
        Timers.StartSingleTimer(("recheck", worker), new RecheckSuspect(worker), _settings.DirectFrameTimeout);
        if (_participants.Count == 0 && !_finished && OnMajoritySide())
            Fail($"every worker was lost (the last, worker {index}, {why})");
    }

    private void HandleRecheckSuspect(RecheckSuspect message)
    {
        if (!_suspects.TryGetValue(message.Worker, out var address) || _finished)
            return;
        var state = Cluster.Get(Context.System).State;
        bool up = state.Members.Any(m => m.Address.Equals(address) && m.Status == MemberStatus.Up);
        if (!up)
        {
            _suspects.Remove(message.Worker);
            return;
        }
        if (state.Unreachable.Any(m => m.Address.Equals(address)))
        {
            Timers.StartSingleTimer(("recheck", message.Worker), message, _settings.DirectFrameTimeout);
            return;
        }
        _suspects.Remove(message.Worker);
        HandleRegisterUnderWay(new RegisterWorker(message.Worker));
    }

    /// <summary>A worker that registers while the run is under way (a new node, a restarted one) is invited; it takes part from the next epoch.</summary>
    private void HandleRegisterUnderWay(RegisterWorker message)
    {
        if (_registered.ContainsKey(message.Worker) || _finished)
            return;
        var used = _registered.Values.ToHashSet();
        int index = message.Position is { } p && p.RunId == _plan.RunId && p.WorkerIndex >= 0 && p.WorkerIndex < MaxWorkers && !used.Contains(p.WorkerIndex)
            ? p.WorkerIndex
            : Enumerable.Range(0, MaxWorkers).FirstOrDefault(i => !used.Contains(i), -1);
        if (index < 0)
            return;   // as many workers as the run takes
        _registered[message.Worker] = index;
        Context.Watch(message.Worker);
        message.Worker.Tell(new JoinRun(_plan, index, _shardCount, _dataPlane?.Endpoint ?? ""));
    }

    private void HandleJoinUnderWay(JoinAccepted message)
    {
        if (message.RunId != _plan.RunId || !_registered.TryGetValue(Sender, out int index) || index != message.WorkerIndex
            || _participants.ContainsKey(index))
            return;
        if (_dataPlane is not null)
        {
            if (message.DataEndpoint.Length == 0)
                return;
            _endpoints[index] = message.DataEndpoint;
        }
        _joining[index] = Sender;
        _setup.Reporter.Tell(new RunProgress.Note($"{Now} worker {index} at {Sender.Path.Address} joined the run under way; it takes part from epoch {_replica.Epoch + 1}"));
    }

    /// <summary>The epoch's shards: the participants (and the workers that joined meanwhile), by rank in index order.</summary>
    private void StartEpoch()
    {
        _meter.Start(_joining.Select(p => (p.Key, "worker", p.Value.Path.Address.ToString())));
        foreach (var (index, worker) in _joining)
            _participants[index] = worker;
        _joining.Clear();
        bool changed = _shardCount != 0 && _shardCount != _participants.Count;
        _shards.Clear();
        int rank = 0;
        foreach (int index in _participants.Keys)
            _shards[index] = rank++;
        _shardCount = _participants.Count;
        _replica.StepsPerEpoch = StepsPerEpoch(_shardCount);
        if (changed)
            _setup.Reporter.Tell(new RunProgress.Note(
                $"{Now} epoch {_replica.Epoch}: the training set is cut into {_shardCount} shards for workers {string.Join(", ", _participants.Keys)} ({_replica.StepsPerEpoch} steps)"));
    }

    /// <summary>
    /// False on the minority side of a partition (keep-majority's rule: more than half the members reachable, or
    /// exactly half including the lowest address): there the split brain resolver downs this node, and a master on
    /// the other side takes over, so this one must not change θ meanwhile.
    /// </summary>
    private bool OnMajoritySide()
    {
        var state = Cluster.Get(Context.System).State;
        if (ClusterMajority.IsOnMajoritySide(state.Members.Where(m => m.Status is MemberStatus.Up or MemberStatus.Leaving or MemberStatus.WeaklyUp).Select(m => m.Address),
                                             state.Unreachable.Select(m => m.Address).Concat(_tracker.UnreachableMembers)))
        {
            if (_pausedInMinority)
                _setup.Reporter.Tell(new RunProgress.Note($"{Now} the majority of the cluster is reachable again: stepping resumes at step {_replica.Step}"));
            _pausedInMinority = false;
            return true;
        }
        if (!_pausedInMinority)
        {
            _log.Warning("step {0}: this master sees only a minority of the cluster; it stops updating θ until the majority is back or its node is downed", _replica.Step);
            _setup.Reporter.Tell(new RunProgress.Note($"{Now} master on the minority side of a partition: no update of θ until the majority is back"));
        }
        _pausedInMinority = true;
        return false;
    }

    // ---- the master's side of the step loop (StepLoop) ------------------------------------------------

    StepGather? IStepExchange.Open()
    {
        if (_finished || !OnMajoritySide())
            return null;
        if (_replica.StepInEpoch == 0 || _shardCount == 0)
            StartEpoch();
        if (_replica.CheckpointIfDue() is { } checkpoint)
            _setup.Reporter.Tell(new RunProgress.Note(checkpoint.Describe()));
        _gather.Begin(_replica.Step, _participants.Keys);
        return _gather;
    }

    /// <summary>θ to every participant: over the data plane, or in a <see cref="ComputeGradient"/> over Akka.</summary>
    void IStepExchange.Broadcast()
    {
        if (_dataPlane is not null)
        {
            SendParametersDirect();
            return;
        }
        // A fresh copy per step: messages to a worker on this node are not serialized, and θ changes in place.
        var theta = _replica.CopyOfParameters();
        foreach (var (index, worker) in _participants)
        {
            var message = new ComputeGradient(_plan.RunId, _replica.Step, _replica.Epoch, _replica.StepInEpoch, theta, _shards[index], _shardCount);
            _payloads.Tell(worker, message, Self);
            _replica.Totals.BytesSent += DistSgdSerializer.PayloadBytes(message);
        }
    }

    bool IStepExchange.AfterBegin() => true;

    void IStepExchange.AskAgain(IReadOnlyCollection<int> missing)
    {
        _log.Warning("step {0}: no gradient within {1}; asking workers {2} again", _replica.Step, _settings.StepTimeout, string.Join(", ", missing));
        _loop.Begin();
    }

    string IStepExchange.NothingArrived(IReadOnlyCollection<int> missing) =>
        $"no worker answered step {_replica.Step} within {StepLoop.MaxStepRetries + 1} × distsgd.step-timeout ({_settings.StepTimeout.TotalSeconds:0}s); waiting for workers {string.Join(", ", missing)}";

    bool IStepExchange.GoOnWithout(IReadOnlyCollection<int> missing)
    {
        _log.Warning("step {0}: workers {1} did not answer within {2}; going on with {3} gradients",
                     _replica.Step, string.Join(", ", missing), _settings.StepTimeout, _gather.Replies.Count);
        return true;
    }

    /// <summary>On the minority side the gathered gradients are not applied: the step is asked again once the majority is back.</summary>
    bool IStepExchange.BeforeApply(StepGather gather) => OnMajoritySide();

    void IStepExchange.AfterApply(StepGather gather, double wallSeconds, bool diverged)
    {
        if (_dataPlane is not null)
        {
            // The step's gradients are averaged and applied: their arrays take the next step's frames.
            foreach (var reply in gather.Replies)
                _dataPlane.Return(reply.Gradient);
        }
        if (diverged)
            return;
        long next = _replica.Step + 1;
        if (_meter.StepDone(gather.Replies, wallSeconds, _replica.Totals, _replica.Epoch, _replica.StepInEpoch + 1) is { } progress)
            _setup.Reporter.Tell(progress);
        // The optimizer's step is the master's, empty steps included, so a successor knows η of every step from its number.
        if (_replica.Optimizer.State.Step != next)
            _replica.Optimizer.Restore(new Numerics.Optim.SgdState(next, _replica.Optimizer.State.Velocity));
    }

    /// <summary>Evaluates, reports and applies the stop rule; true when the run goes on.</summary>
    bool IStepExchange.EndEpoch()
    {
        var (metrics, plateau) = _replica.CloseEpoch(_setup.Test, _replica.Step, _gather.DroppedTotal + (_dataPlane?.BadFrames ?? 0),
                                                     DroppedMessages.ByKind(_gather.Dropped, _dataPlane?.BadFrames ?? 0));
        _setup.Reporter.Tell(new RunProgress.EpochCompleted(metrics));
        if (plateau || _replica.AtEpochLimit)
        {
            Finish(plateau ? StopReason.LossPlateau : StopReason.EpochLimit);
            return false;
        }
        _replica.NextEpoch();
        return true;
    }

    void IStepExchange.Fail(string reason) => Fail(reason);

    /// <summary>
    /// θ to every participant over the data plane, in worker-index order; the send copies θ into the kernel before
    /// it returns, so no copy of θ is made. A worker that cannot be reached is lost for this step (like an
    /// unreachable member) and is sent to again, on a new connection, next step.
    /// </summary>
    private void SendParametersDirect()
    {
        List<int>? unreachable = null;
        foreach (int index in _participants.Keys)
        {
            var header = new FrameHeader(FrameKind.ComputeGradient, 0, _replica.Step, 0, _replica.Epoch, _replica.StepInEpoch, _shardCount, 0, 0, 0, (ushort)_shards[index]);
            if (_endpoints.TryGetValue(index, out var endpoint) && _dataPlane!.Send(endpoint, header, _replica.Parameters))
                _replica.Totals.BytesSent += FrameHeader.Size + (long)_replica.Parameters.Length * sizeof(float);
            else
                (unreachable ??= new List<int>()).Add(index);
        }
        if (unreachable is null)
            return;
        foreach (int index in unreachable)
        {
            _log.Warning("step {0}: the data connection to worker {1} failed; not waiting for it", _replica.Step, index);
            _gather.Forget(index);
            Suspect(index, "could not be sent θ");
        }
        // With nobody reached the step stays open: its timeout asks again rather than taking an empty step.
        if (_gather.IsComplete && _gather.Replies.Count > 0)
            _loop.Finish();
    }

    private void HandleConnectionLost(DataConnectionLost message)
    {
        _log.Warning("data connection from worker {0} closed ({1})", message.Sender, message.Reason);
        if (!_gather.IsOpen || !_gather.Forget(message.Sender))
            return;
        Suspect(message.Sender, "dropped its data connection");
        if (_gather.IsComplete && _gather.Replies.Count > 0)
            _loop.Finish();
    }

    private void HandleGradient(GradientReply reply)
    {
        // On Akka, a reply must come from the actor of the worker it names; the data plane checked its frames' senders.
        bool fromParticipant = _dataPlane is not null || (_participants.TryGetValue(reply.WorkerIndex, out var worker) && worker.Equals(Sender));
        var outcome = _gather.Offer(reply, fromParticipant);
        if (outcome == GatherOutcome.Accepted)
            _replica.Totals.BytesReceived += DistSgdSerializer.PayloadBytes(reply);
        else
            _drops.Record(outcome, $"gradient of worker {reply.WorkerIndex} for step {reply.Step} (run {reply.RunId}, {reply.Gradient.Length} values) from {Sender.Path}");
        _loop.TryFinish();
    }

    private void Finish(StopReason reason)
    {
        _finished = true;
        Timers.CancelAll();
        // The reporter first: a worker on this node passes RunEnded to the same reporter, which must see the result before it.
        _setup.Reporter.Tell(new RunProgress.RunCompleted(_replica.CopyOfParameters(), _replica.Result(reason)));
        foreach (var worker in _registered.Keys)
            worker.Tell(new RunEnded(_plan.RunId));
        _dataPlane?.Dispose();
        Become(Finished);
    }

    private void Fail(string reason)
    {
        if (_finished)
            return;
        _finished = true;
        Timers.CancelAll();
        _log.Error("run {0} failed: {1}", _plan.RunId, reason);
        _setup.Reporter.Tell(new RunProgress.RunFailed(reason));
        foreach (var worker in _registered.Keys)
            worker.Tell(new RunEnded(_plan.RunId));
        _dataPlane?.Dispose();
        Become(Finished);
    }

    private void Finished()
    {
        ReceiveAny(_ => { });
    }

    // ---- membership ---------------------------------------------------------------------------------

    /// <summary>
    /// A cluster event, through the <see cref="ParticipantTracker{TId}"/>: the workers on an unreachable or removed
    /// member are forgotten; those forgotten as unreachable that are reachable again are invited back (they still run,
    /// nothing was wrong but the network) and take part from the next epoch.
    /// </summary>
    private void HandleMembership(ClusterEvent.IClusterDomainEvent clusterEvent)
    {
        if (_tracker.On(clusterEvent) is not { } change)
            return;
        if (change.Cause == LossCause.Removed)
            foreach (var suspect in _suspects.Where(s => s.Value.Equals(change.Member)).Select(s => s.Key).ToList())
                _suspects.Remove(suspect);
        foreach (var lost in change.Lost)
            ForgetWorker(lost.Id, lost.Describe());
        foreach (var worker in change.Regained)
            HandleRegisterUnderWay(new RegisterWorker(worker));
        if (!_replica.IsRunning || _finished || (change.Cause is null && change.Regained.Count == 0))
            return;
        if (_pausedInMinority)
            _loop.Begin();   // a removal or a member back may have given this side the majority
        else if (change.Cause == LossCause.Unreachable && _gather.IsOpen)
            OnMajoritySide();
    }

    private void ForgetWorker(IActorRef worker, string why)
    {
        _suspects.Remove(worker);
        if (!_registered.Remove(worker, out int index))
            return;
        _recovery.Forget(worker);
        _setup.Reporter.Tell(new RunProgress.Note($"{Now} worker {index} at {worker.Path.Address} {why}" +
                                                  (_replica.IsRunning && !_finished ? $" at step {_replica.Step}; not waited for" : "")));
        if (_recovering && !_replica.IsRunning && _recovery.Source is { } source && !_recovery.IsComplete)
            source.Worker.Tell(new RequestHeldParameters(_plan.RunId));
        if (index < 0)
            return;
        _joining.Remove(index);
        _meter.SetState(index, why);
        _participants.Remove(index);
        _accepted.Remove(index);
        // Cut off from every worker by a partition: wait (stepping nothing) to be downed or to see the majority again.
        if (_participants.Count == 0 && !_finished && _replica.IsRunning && !OnMajoritySide())
            return;
        if (_participants.Count == 0 && !_finished && _replica.IsRunning)
        {
            Fail($"every worker was lost (the last, worker {index}, {why})");
            return;
        }
        if (_gather.IsOpen && _gather.Forget(index) && _gather.IsComplete)
            _loop.Finish();
    }
}
