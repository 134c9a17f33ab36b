using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using DistSgd.Actors.Membership;
using DistSgd.Actors.Protocol;
using DistSgd.Actors.Steps;
using DistSgd.Actors.Transport;
using DistSgd.Numerics.Training;

namespace DistSgd.Actors.Centralized;

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
/// <para>States (each a behaviour): <see cref="Registering"/> (workers register and accept the run) or
/// <see cref="Recovering"/> (θ of a run under way is taken from the workers), then <see cref="Stepping"/>, with
/// <see cref="Paused"/> on the minority side of a partition, and <see cref="Finished"/>. The workers are the
/// <see cref="WorkerRoster"/>'s, the replica and its position the <see cref="Replica"/>'s, the step the
/// <see cref="StepLoop"/>'s (with <see cref="MasterStep"/> as its <see cref="IStepExchange"/>), membership churn the
/// <see cref="ParticipantTracker{TId}"/>'s.</para>
/// </remarks>
public sealed class MasterActor : ReceiveActor, IWithTimers, IMasterControl
{
    private sealed record StartTimedOut;
    private sealed record RecoveryWaitOver;
    private sealed record RecheckEvicted(IActorRef Worker);

    /// <summary>How long a new master waits, after the first worker reports θ of its run, for the others to register.</summary>
    private static readonly TimeSpan RecoveryWait = TimeSpan.FromSeconds(1.5);

    private readonly MasterSetup _setup;
    private readonly RunPlan _plan;
    private readonly DistSgdSettings _settings;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Replica _replica;
    private readonly WorkerRoster _roster = new();
    private readonly ParticipantTracker<IActorRef> _tracker;
    private readonly PartitionSide _side = new();
    private readonly MajorityVerdict _majority = new();
    private readonly MasterStep _step;

    public MasterActor(MasterSetup setup)
    {
        _setup = setup;
        _plan = setup.Plan;
        _settings = DistSgdSettings.Create(Context.System);
        _replica = new Replica(_plan, setup.InitialParameters, setup.Optimizer, setup.Training,
                               Numerics.Tensors.MatrixKernels.Create(setup.EvaluationThreads), setup.Checkpoints)
        {
            Meters = NodeMeters.Of(Context.System, "master"),
        };
        _tracker = new ParticipantTracker<IActorRef>(_roster.At);
        _step = new MasterStep(setup, _settings, _replica, _roster, this, Context, MaxWorkers);
        Registering(new MasterRecovery(_plan.RunId));
    }

    public ITimerScheduler Timers { get; set; } = null!;

    /// <summary>Worker indices run from 0 to this − 1: the planned workers and as many replacements.</summary>
    private int MaxWorkers => 2 * _setup.WorkerCount;

    public static Props Props(MasterSetup setup) =>
        Akka.Actor.Props.Create(() => new MasterActor(setup)).WithDispatcher(DistSgdSettings.ComputeDispatcher);

    protected override void PreStart()
    {
        _step.UseTimers(Timers);
        Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents,
                                              typeof(ClusterEvent.IReachabilityEvent), typeof(ClusterEvent.MemberRemoved));
        Timers.StartSingleTimer(nameof(StartTimedOut), new StartTimedOut(), _settings.StartTimeout);
        _log.Info("master of {0} waiting for {1} workers; payloads over {2}", _plan, _setup.WorkerCount,
                  _step.UsesDataPlane ? $"the direct data plane at {_step.DataEndpoint}" : "Akka.Remote");
    }

    protected override void PreRestart(Exception reason, object message)
    {
        _replica.Stop();   // a failure may have left a step half applied: no last checkpoint of this state
        base.PreRestart(reason, message);
    }

    protected override void PostStop()
    {
        // Stopped mid-run (SIGTERM, Ctrl+C, the singleton handed over): θ changes only when a step finishes, so this is a
        // step boundary, and a last checkpoint keeps every step taken.
        if (_replica.IsRunning)
            _replica.CheckpointNow();
        Cluster.Get(Context.System).Unsubscribe(Self);
        _step.WriteTrace();
        _step.Dispose();
        _replica.Meters?.Dispose();
        _replica.Dispose();
    }

    /// <summary>Tells the reporter a membership note (a worker registered, joined, lost; the partition side changed), also an instant of the trace.</summary>
    private void Membership(RunProgress.Note note)
    {
        _step.Loop?.Trace?.Instant(note.Text);
        _setup.Reporter.Tell(note);
    }

    // ---- states ---------------------------------------------------------------------------------------

    /// <summary>Workers register; once all planned ones have, each gets its index and is asked to join.</summary>
    private void Registering(MasterRecovery recovery)
    {
        Starting(worker => recovery.Forget(worker));
        Receive<RegisterWorker>(m => HandleRegister(m, recovery));
        Receive<JoinAccepted>(m => HandleJoinAccepted(m, recovered: false));
        Receive<RecoveryWaitOver>(_ => RequestHeldParameters(recovery));
        Receive<HeldParameters>(_ => { });
    }

    /// <summary>The run is under way (the singleton moved): θ is taken from the worker that holds the latest, then the workers join again.</summary>
    private void Recovering(MasterRecovery recovery)
    {
        Starting(worker =>
        {
            recovery.Forget(worker);
            if (recovery is { IsComplete: false, Source: { } source })
                source.Worker.Tell(new RequestHeldParameters(_plan.RunId));   // the source may have changed
        });
        Receive<RegisterWorker>(_ => { });
        Receive<JoinAccepted>(m =>
        {
            if (_roster.Joining.ContainsKey(m.WorkerIndex))
                HandleJoinUnderWay(m);
            else
                HandleJoinAccepted(m, recovered: true);
        });
        Receive<HeldParameters>(m => HandleHeldParameters(m, recovery));
        Receive<RecoveryWaitOver>(_ => { });
    }

    /// <summary>What <see cref="Registering"/> and <see cref="Recovering"/> share: the start's timeout, refusals and losses.</summary>
    private void Starting(Action<IActorRef> forgotten)
    {
        Receive<JoinRefused>(m => Fail($"worker {m.WorkerIndex} refused to join: {m.Reason}"));
        Receive<StartTimedOut>(_ => Fail(
            $"only {_roster.Registered.Count} of {_setup.WorkerCount} workers registered and {_roster.AcceptedCount} joined within {_settings.StartTimeout.TotalSeconds:0}s (distsgd.start-timeout)"));
        Receive<ClusterEvent.UnreachableMember>(m => Membership(m, forgotten));
        Receive<ClusterEvent.MemberRemoved>(m => Membership(m, forgotten));
        Receive<ClusterEvent.IReachabilityEvent>(_ => { });
        Receive<Terminated>(m => ForgetWorker(new(m.ActorRef, LossCause.Stopped), forgotten));
        Receive<GradientReply>(_step.OfferEarly);
        Receive<DataConnectionLost>(_ => { });
        Common();
    }

    /// <summary>Synchronous steps (the <see cref="StepLoop"/>).</summary>
    private void Stepping()
    {
        UnderWay();
        Receive<ClusterEvent.IClusterDomainEvent>(m =>
        {
            if (Membership(m)?.Cause == LossCause.Unreachable && _step.IsGathering && _replica.IsRunning)
                FollowMajority();
        });
    }

    /// <summary>On the minority side of a partition: θ does not change; a membership change may give this side the majority back.</summary>
    private void Paused()
    {
        UnderWay();
        Receive<ClusterEvent.IClusterDomainEvent>(m =>
        {
            if (Membership(m) is { } change && (change.Cause is not null || change.Regained.Count > 0) && _replica.IsRunning)
                _step.Loop.Begin();
        });
    }

    /// <summary>What <see cref="Stepping"/> and <see cref="Paused"/> share: gradients, timeouts, losses and (re)joins under way.</summary>
    private void UnderWay()
    {
        Receive<GradientReply>(m => _step.Offer(m, Sender));
        Receive<StepLoop.StepTimedOut>(m => _step.Loop.HandleTimeout(m));
        Receive<Terminated>(m => ForgetWorker(new(m.ActorRef, LossCause.Stopped)));
        Receive<RegisterWorker>(HandleRegisterUnderWay);
        Receive<JoinAccepted>(HandleJoinUnderWay);
        Receive<JoinRefused>(m => ForgetWorker(new(Sender, LossCause.Refused, m.Reason)));
        Receive<DataConnectionLost>(_step.ConnectionLost);
        Receive<HeldParameters>(_ => { });
        Receive<RecheckEvicted>(HandleRecheckEvicted);
        Common();
    }

    private void Finished() => ReceiveAny(_ => { });

    /// <summary>Handled alike in every state but <see cref="Finished"/>.</summary>
    private void Common()
    {
        Receive<MessageChunk>(chunk =>
        {
            if (_step.Reassemble(chunk, Sender) is { } whole)
                Self.Forward(whole);
        });
        // The step timer stays armed between steps (StepLoop.RestartTimeout): outside the steps it has nothing to time.
        Receive<StepLoop.StepTimedOut>(_ => { });
    }

    // ---- registration and joining -------------------------------------------------------------------

    private void HandleRegister(RegisterWorker message, MasterRecovery recovery)
    {
        if (_roster.IsRegistered(message.Worker) || _roster.Participants.Count > 0)
            return;
        if (recovery.Offer(message.Worker, message.Position))
        {
            // A worker holds θ of this run: it is under way and this master is its successor.
            _roster.Register(message.Worker);
            Context.Watch(message.Worker);
            if (recovery.Positions.Count == 1)
            {
                _log.Warning("run {0} is under way (worker {1} holds θ of step {2}): recovering it from the workers",
                             _plan.RunId, message.Position!.WorkerIndex, message.Position.Step);
                Timers.StartSingleTimer(nameof(RecoveryWaitOver), new RecoveryWaitOver(), RecoveryWait);
            }
            if (recovery.Positions.Count >= _setup.WorkerCount)
                RequestHeldParameters(recovery);
            return;
        }
        if (recovery.IsUnderWay)
            return;   // a worker that has not yet joined this run joins it later, as a replacement
        _roster.Register(message.Worker);
        Context.Watch(message.Worker);
        Membership(new RunProgress.Note($"worker registered: {message.Worker.Path.Address} ({_roster.Registered.Count}/{_setup.WorkerCount})"));
        if (_roster.Registered.Count < _setup.WorkerCount)
            return;
        foreach (var (index, worker) in _roster.NumberByAddress())
            Invite(worker, index, _setup.WorkerCount);
    }

    /// <summary>Asks <paramref name="worker"/> to take part as worker <paramref name="index"/>, telling it where (and with which key) the master's data plane is.</summary>
    private void Invite(IActorRef worker, int index, int shardCount) =>
        worker.Tell(new JoinRun(_plan, index, shardCount, _step.DataEndpoint, _step.DataKey));

    /// <param name="recovered">Whether the run was recovered from the workers (it goes on) rather than started.</param>
    private void HandleJoinAccepted(JoinAccepted message, bool recovered)
    {
        if (message.RunId != _plan.RunId || !_roster.Participants.ContainsKey(message.WorkerIndex))
            return;
        if (_step.UsesDataPlane && !_step.Trust(message))
        {
            Fail($"worker {message.WorkerIndex} at {Sender.Path.Address} joined without a data endpoint and key; this run's payloads use the direct transport");
            return;
        }
        _roster.Accept(message.WorkerIndex, _step.UsesDataPlane ? message.DataEndpoint : null);
        if (!_roster.AllAccepted)
            return;
        Timers.Cancel(nameof(StartTimedOut));
        _setup.Reporter.Tell(new RunProgress.Note(recovered
            ? $"{RunProgress.Now} run {_plan.RunId} recovered at step {_replica.Step} (epoch {_replica.Epoch}, step {_replica.StepInEpoch} of {_replica.StepsPerEpoch}) with {_roster.Participants.Count} workers; training again"
            : $"run {_plan.RunId} started with {_roster.Participants.Count} workers"));
        _step.Started();
        Become(Stepping);
        _replica.Start();
        _step.Loop.Begin();
    }

    /// <summary>A worker that registers while the run is under way (a new node, a restarted one) is invited; it takes part from the next epoch.</summary>
    private void HandleRegisterUnderWay(RegisterWorker message)
    {
        if (_roster.IsRegistered(message.Worker))
            return;
        int? held = message.Position is { } p && p.RunId == _plan.RunId ? p.WorkerIndex : null;
        if (_roster.FreeIndex(held, MaxWorkers) is not { } index)
            return;   // as many workers as the run takes
        _roster.Register(message.Worker, index);
        Context.Watch(message.Worker);
        Invite(message.Worker, index, _roster.ShardCount);
    }

    private void HandleJoinUnderWay(JoinAccepted message)
    {
        if (message.RunId != _plan.RunId || (_step.UsesDataPlane && !DataPlaneHandshake.IsKey(message.DataKey))
            || !_roster.JoinUnderWay(Sender, message.WorkerIndex, _step.UsesDataPlane ? message.DataEndpoint : null)
            || (_step.UsesDataPlane && !_step.Trust(message)))
            return;
        Membership(new RunProgress.Note($"{RunProgress.Now} worker {message.WorkerIndex} at {Sender.Path.Address} joined the run under way; it takes part from epoch {_replica.Epoch + 1}"));
    }

    // ---- taking over a run under way (the singleton moved) --------------------------------------------

    /// <summary>Asks the worker with the highest step for the θ it holds.</summary>
    private void RequestHeldParameters(MasterRecovery recovery)
    {
        Timers.Cancel(nameof(RecoveryWaitOver));
        if (recovery.Source is not { } source)
        {
            Fail("every worker that held θ of the run was lost before this master could recover it");
            return;
        }
        Become(() => Recovering(recovery));
        _log.Info("recovering θ of step {0} from worker {1} at {2}", source.Position.Step, source.Position.WorkerIndex, source.Worker.Path.Address);
        source.Worker.Tell(new RequestHeldParameters(_plan.RunId));
    }

    /// <summary>
    /// θ of the source's step (and of the step before) arrived: the replica takes the run over
    /// (<see cref="MasterRecovery.RestoreInto"/>), and the workers are asked to join again. Workers that were
    /// computing in this epoch keep their shard until it ends; the others take part from the next.
    /// </summary>
    private void HandleHeldParameters(HeldParameters message, MasterRecovery recovery)
    {
        if (!recovery.Accept(message, _replica.Parameters.Length) || !recovery.IsComplete)
            return;
        var source = recovery.Source!.Value.Position;
        string momentum = recovery.RestoreInto(_replica, _setup.Optimizer);
        _replica.StepsPerEpoch = _step.StepsPerEpoch(source.ShardCount);
        _setup.Reporter.Tell(new RunProgress.Note($"{RunProgress.Now} new master: θ of step {_replica.Step} recovered from worker {source.WorkerIndex}; {momentum}"));
        // Nobody can finish this epoch's shards (its metrics are lost): the next epoch starts with whoever is here.
        if (!_roster.Recover(recovery.Positions.Select(p => (p.Key, p.Value)), _replica.Epoch, source.ShardCount))
            _replica.NextEpoch();   // the next epoch's start re-plans the schedule for its shards
        else
            _step.ReplanSchedule();
        foreach (var (index, worker) in _roster.Participants.Concat(_roster.Joining))
            Invite(worker, index, _roster.ShardCount);
    }

    // ---- membership ---------------------------------------------------------------------------------

    /// <summary>
    /// True on the majority side of a partition (keep-majority's rule: more than half the members reachable, or
    /// exactly half including the lowest address), as this master's own events and the cluster's state tell.
    /// </summary>
    private bool SeesMajority()
    {
        return _majority.Of(Cluster.Get(Context.System).State, _tracker.UnreachableMembers, _tracker.UnreachableVersion);
    }

    /// <summary>
    /// Moves between <see cref="Stepping"/> and <see cref="Paused"/> as the side of a partition this master is on
    /// changes, and says whether it may change θ: on the minority side the split brain resolver downs its node and a
    /// master on the other side takes over, so this one must not change θ meanwhile.
    /// </summary>
    public bool FollowMajority()
    {
        bool majority = SeesMajority();
        switch (_side.Observe(majority))
        {
            case SideChange.LostMajority:
                _log.Warning("step {0}: this master sees only a minority of the cluster; it stops updating θ until the majority is back or its node is downed", _replica.Step);
                Membership(new RunProgress.Note($"{RunProgress.Now} master on the minority side of a partition: no update of θ until the majority is back"));
                Become(Paused);
                break;
            case SideChange.RegainedMajority:
                Membership(new RunProgress.Note($"{RunProgress.Now} the majority of the cluster is reachable again: stepping resumes at step {_replica.Step}"));
                Become(Stepping);
                break;
        }
        return majority;
    }

    /// <summary>
    /// A cluster event, through the <see cref="ParticipantTracker{TId}"/>: the workers on an unreachable or removed
    /// member are forgotten; those forgotten as unreachable that are reachable again are invited back (they still run,
    /// nothing was wrong but the network) and take part from the next epoch.
    /// </summary>
    private MembershipChange<IActorRef>? Membership(ClusterEvent.IClusterDomainEvent clusterEvent, Action<IActorRef>? forgotten = null)
    {
        if (_tracker.On(clusterEvent) is not { } change)
            return null;
        if (change.Cause == LossCause.Removed)
            _roster.ForgetEvictedAt(change.Member);
        foreach (var lost in change.Lost)
            ForgetWorker(lost, forgotten);
        foreach (var worker in change.Regained)
            HandleRegisterUnderWay(new RegisterWorker(worker));
        return change;
    }

    private void ForgetWorker(ParticipantLost<IActorRef> lost, Action<IActorRef>? forgotten = null)
    {
        var worker = lost.Id;
        if (_roster.Forget(worker) is not { } index)
            return;
        string why = lost.Describe();
        Membership(new RunProgress.Note($"{RunProgress.Now} worker {index} at {worker.Path.Address} {why}" +
                                                  (_replica.IsRunning ? $" at step {_replica.Step}; not waited for" : "")));
        forgotten?.Invoke(worker);
        if (index == WorkerRoster.NoIndex)
            return;
        // Cut off from every worker by a partition: wait (stepping nothing) to be downed or to see the majority again.
        if (_roster.Participants.Count == 0 && _replica.IsRunning)
        {
            _step.Lost(index, why, gathering: false);
            if (FollowMajority())
                Fail($"every worker was lost (the last, worker {index}, {why})");
            return;
        }
        _step.Lost(index, why);
    }

    /// <summary>
    /// A worker whose data connection dropped or refused θ is evicted at once, without waiting for the failure
    /// detector (a crashed process closes its sockets within milliseconds): it is not waited for in this step, and
    /// the next epoch's shards are cut without it. The caller finishes the step if it is complete. If the cluster
    /// still counts it reachable a little later, it was a blip: it is invited back (next epoch).
    /// </summary>
    public void Evict(int index, LossCause cause)
    {
        if (_roster.Evict(index) is not { } worker)
            return;
        string why = cause.Describe();
        Membership(new RunProgress.Note($"{RunProgress.Now} step {_replica.Step}: worker {index} at {worker.Path.Address} {why}; not waited for, its shard goes to the others from the next epoch"));
        Timers.StartSingleTimer(("recheck", worker), new RecheckEvicted(worker), _settings.DirectFrameTimeout);
        if (_roster.Participants.Count == 0 && FollowMajority())
            Fail($"every worker was lost (the last, worker {index}, {why})");
    }

    private void HandleRecheckEvicted(RecheckEvicted message)
    {
        if (_roster.EvictedAt(message.Worker) is not { } address)
            return;
        var state = Cluster.Get(Context.System).State;
        if (!state.Members.Any(m => m.Address.Equals(address) && m.Status == MemberStatus.Up))
        {
            _roster.ForgetEvicted(message.Worker);
            return;
        }
        if (state.Unreachable.Any(m => m.Address.Equals(address)))
        {
            Timers.StartSingleTimer(("recheck", message.Worker), message, _settings.DirectFrameTimeout);
            return;
        }
        _roster.ForgetEvicted(message.Worker);
        HandleRegisterUnderWay(new RegisterWorker(message.Worker));
    }

    // ---- the end ------------------------------------------------------------------------------------

    public void Finish(StopReason reason)
    {
        // The reporter first: a worker on this node passes RunEnded to the same reporter, which must see the result before it.
        _setup.Reporter.Tell(new RunProgress.RunCompleted(_replica.CopyOfParameters(), _replica.Result(reason)));
        End();
    }

    public void Fail(string reason)
    {
        _log.Error("run {0} failed: {1}", _plan.RunId, reason);
        _setup.Reporter.Tell(new RunProgress.RunFailed(reason));
        End();
    }

    /// <summary>The run is over: the workers are told, nothing is waited for any more, and only <see cref="Finished"/> is left.</summary>
    private void End()
    {
        Timers.CancelAll();
        _replica.Stop();
        // Also the workers lost as unreachable or evicted and not removed: one that was only paused (SIGSTOP, a long GC)
        // finds the RunEnded in its socket when it runs again, and exits 0 instead of failing alone (decision 0063).
        foreach (var worker in _roster.Registered.Concat(_roster.Evicted).Concat(_tracker.LostAsUnreachable).Distinct().ToList())
            worker.Tell(new RunEnded(_plan.RunId));
        _roster.Clear();
        _step.Dispose();
        Become(Finished);
    }
}
