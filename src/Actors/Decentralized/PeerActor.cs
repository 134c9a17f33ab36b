using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Tools.PublishSubscribe;
using Akka.Event;
using DistSgd.Actors.Collectives;
using DistSgd.Actors.Membership;
using DistSgd.Actors.Protocol;
using DistSgd.Actors.Steps;
using DistSgd.Actors.Transport;
using DistSgd.Numerics.Cost;
using DistSgd.Numerics.Tensors;
using DistSgd.Numerics.Training;

namespace DistSgd.Actors.Decentralized;

/// <summary>
/// The seed's decentralized peer, one per node: holds a full replica (θ and optimizer state), computes the
/// gradient of its shard's batch, publishes it on the run's topic, gathers every participant's share of the
/// step, averages them in node-id order and updates its replica. No master: every peer runs the same steps
/// on the same numbers, so the replicas stay bit-identical, and a hash per epoch proves it.
/// </summary>
/// <remarks>
/// <para>A state machine: <see cref="Joining"/> (the <see cref="StartBarrier"/>), <see cref="Stepping"/>,
/// <see cref="Verifying"/> (the epoch-end <see cref="HashRound"/>), <see cref="Resyncing"/>, <see cref="Agreeing"/>
/// (the <see cref="MembershipAgreement"/> after a peer loss) and <see cref="Finished"/>; each behaviour receives only
/// what its phase handles, and <see cref="Common"/> what every phase handles. The actor does the start barrier's I/O
/// and routes each phase's messages to the class that handles them: <see cref="PeerStep"/> (its side of the
/// <see cref="StepLoop"/>), <see cref="EpochEndRound"/> (the hash round and resync) and <see cref="PeerLossRound"/>
/// (the agreement), which share the run's state in a <see cref="PeerRun"/> and ask the actor for what only it can
/// do through <see cref="IPeerControl"/>. The decisions are the pure classes beside them.</para>
/// <para><b>Start barrier.</b> After its SubscribeAck a peer publishes <see cref="PeerReady"/> every
/// distsgd.ready-interval; every peer acknowledges each one it receives with a direct <see cref="PeerReadyAck"/>.
/// A peer starts when it has received PeerReady from all expected peers and an acknowledgement from each of them.</para>
/// <para><b>Steps.</b> A step waits for every participant's share. Shares of the next steps are held in a
/// <see cref="StepBuffer"/>; stale, foreign, duplicate, malformed ones are dropped and counted.</para>
/// <para><b>Peer loss.</b> A participant that becomes unreachable or is removed, whose data connection closes, or
/// that sends nothing within distsgd.step-timeout is suspected: the survivors stop stepping and agree, through
/// <see cref="MembershipReport"/>s, on who is left and on exactly which shares the contested step uses, redoing it
/// where a replica applied other shares (<see cref="DecisionPlan"/>, <see cref="StepUndo"/>), so the replicas stay
/// bit-identical. From the next epoch the survivors re-shard the training set among themselves. A minority side
/// of a partition stops instead; a peer the others count as lost stops too.</para>
/// <para><b>Epoch end.</b> Every peer publishes a <see cref="ParameterHash"/> and waits for every participant's.
/// When they differ the mismatch is logged as an error and reported, and every replica whose hash differs from the
/// agreed source's adopts that source's <see cref="ReplicaResync"/>. The stop decision is the source's vote, so all
/// peers stop at the same epoch. The lead peer (lowest node id still participating) evaluates on the test set and
/// reports the epoch and the run's result.</para>
/// </remarks>
public sealed class PeerActor : ReceiveActor, IWithTimers, IPeerControl
{
    private readonly PeerSetup _setup;
    private readonly RunPlan _plan;
    private readonly DistSgdSettings _settings;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly IActorRef _mediator;
    private readonly string _topic;
    private readonly string _selfAddress;
    private readonly PeerRun _run;
    private readonly ParticipantTracker<int> _tracker;
    /// <summary>Made in PreStart (Akka sets <see cref="Timers"/> after the constructor), as are the two below.</summary>
    private PeerStep _step = null!;
    private EpochEndRound _epochEnd = null!;
    private PeerLossRound _loss = null!;
    private LatePeers _late = null!;
    /// <summary>Whether stopping the actor writes a checkpoint: only between steps (Stepping, or Agreeing in the steps).</summary>
    private bool _checkpointOnStop;

    public PeerActor(PeerSetup setup)
    {
        _setup = setup;
        _plan = setup.Plan;
        _settings = DistSgdSettings.Create(Context.System);
        _mediator = setup.Mediator ?? DistributedPubSub.Get(Context.System).Mediator;
        _topic = DecentralizedDeployment.Topic(_plan.RunId);
        _selfAddress = Cluster.Get(Context.System).SelfAddress.ToString();
        var replica = new Replica(_plan, setup.InitialParameters, setup.Optimizer, setup.Training,
                                  MatrixKernels.Create(setup.EvaluationThreads), setup.Checkpoints)
        {
            Meters = NodeMeters.Of(Context.System, "peer"),
        };
        int parameterCount = replica.Parameters.Length;
        // Local SGD: a faster peer may send the next averaging step's share up to H steps ahead of a slower one.
        var buffer = new StepBuffer(_plan.RunId, parameterCount, LocalSgd.BufferWindow(StepBuffer.DefaultWindow, _plan.SyncEvery)) { FirstStep = replica.Step };
        var drops = new DropLog(text => _log.Warning("{0}", text), meters: replica.Meters);
        var undo = new StepUndo(parameterCount, replica.Optimizer.State.Velocity.Length);
        replica.KeepStateBeforeEachStep(undo.ParametersBefore, undo.VelocityBefore);
        var self = Self;
        bool reduces = _plan.Collective.Reduces();
        var direct = _settings.Transport != PayloadTransport.Direct ? null
            // Late peers take new node ids (decision 0097): the data plane accepts every id this run can give out.
            : new DirectDataPlane(DistSgdSettings.DataPlane(Context.System, _plan.RunId, parameterCount, reduces ? FrameKind.CollectivePart : FrameKind.GradientShare,
                                                            PeerAdmission.NodeIdLimitFor(setup.PeerCount), _plan.Wire),
                                  reduces ? CollectivePart.FromFrame : GradientShare.FromFrame, m => self.Tell(m));
        direct?.LogRefusals(text => _log.Warning("{0}", text));
        var shares = new ShareExchange(_mediator, _topic, direct, parameterCount, AllReduceFor(_plan, direct, parameterCount, _settings.Link ?? LinkRate.Unlimited, _log), _plan.Wire,
                                       _plan.Wire.SenderMomentum(setup.Optimizer.Momentum, _plan.SyncEvery));
        if (shares.AllReduce is { } reduce)
        {
            buffer.Gather.ReduceWith(reduce);
            reduce.FirstStep = replica.Step;
        }
        _run = new PeerRun(setup, _settings, _log, replica, buffer, undo, shares, drops) { SelfAddress = _selfAddress };
        _tracker = new ParticipantTracker<int>(address => _run.NodeIds.TryGetValue(address.ToString(), out int id) && _run.Participants.Contains(id) ? [id] : []);
        var barrier = new StartBarrier(_plan.RunId, _selfAddress, setup.PeerCount);
        Become(() => Joining(barrier, new List<(GradientShare, IActorRef)>()));
    }

    public ITimerScheduler Timers { get; set; } = null!;

    /// <summary>The plan's all-reduce on the data plane, or null: the all-gather (and on the Akka transport, where only it runs).</summary>
    /// <param name="link">distsgd.link-rate: whether the ring's hops pay to be cut into segments (<see cref="CostModel.RingPartValues"/>).</param>
    private static IAllReduce? AllReduceFor(RunPlan plan, DirectDataPlane? direct, int parameterCount, LinkRate link, ILoggingAdapter log)
    {
        void Unreachable(long step, int node, string endpoint) =>
            log.Warning("step {0}: could not send a {1} part to peer {2} at {3}", step, plan.Collective.Name(), node, endpoint);
        // Local SGD: a faster peer may send its parts of a round's averaging step up to 2H − 1 steps ahead, as its shares.
        int window = LocalSgd.BufferWindow(StepBuffer.DefaultWindow, plan.SyncEvery);
        return direct is null ? null : plan.Collective switch
        {
            Collective.Pairwise => new Pairwise(direct, plan.RunId, parameterCount, window, Unreachable),
            Collective.Ring => new Ring(direct, plan.RunId, parameterCount, window, Unreachable,
                                        peers => CostModel.RingPartValues(CostConstants.Measured, parameterCount,
                                                                          direct.EncodingOf(FrameKind.CollectivePart).ValueBytes, peers, link)),
            _ => null,
        };
    }

    public static Props Props(PeerSetup setup) =>
        Akka.Actor.Props.Create(() => new PeerActor(setup)).WithDispatcher(DistSgdSettings.ComputeDispatcher);

    private Replica Replica => _run.Replica;

    protected override void PreStart()
    {
        _step = new PeerStep(_run, this, Timers);
        _late = new LatePeers(_run, this, _step);
        _epochEnd = new EpochEndRound(_run, this, Timers, _step, _late);
        _loss = new PeerLossRound(_run, this, Timers, _step, _epochEnd);
        Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents,
                                              typeof(ClusterEvent.IReachabilityEvent), typeof(ClusterEvent.MemberRemoved));
        if (_setup.DataMismatch() is { } problem)
        {
            Fail(problem);
            return;
        }
        if (_plan.Collective.Reduces() && !_run.Shares.IsDirect)
        {
            Fail($"the {_plan.Collective.Name()} collective runs on the direct transport only (distsgd.transport = direct); on akka only allgather does");
            return;
        }
        _mediator.Tell(new Subscribe(_topic, Self));
        Timers.StartSingleTimer(nameof(StartTimedOut), new StartTimedOut(), _settings.StartTimeout);
        _log.Info("peer at {0} joining {1}, waiting for {2} peers", _selfAddress, _plan, _setup.PeerCount);
    }

    protected override void PreRestart(Exception reason, object message)
    {
        _checkpointOnStop = false;   // a failure may have left a step half applied: no last checkpoint of this state
        base.PreRestart(reason, message);
    }

    protected override void PostStop()
    {
        // Stopped mid-step (SIGTERM, Ctrl+C): the replica changes only when a step finishes, so the lead keeps every step taken.
        if (_checkpointOnStop && _run.IsLead)
            Replica.CheckpointNow();
        Cluster.Get(Context.System).Unsubscribe(Self);
        _run.Shares.Dispose();
        _step?.WriteTrace();
        Replica.Meters?.Dispose();
        Replica.Dispose();
        _step?.Dispose();
    }

    // ---- behaviours ---------------------------------------------------------------------------------

    /// <param name="early">Shares that arrived before the barrier passed here, with their senders: judged once the barrier
    /// says which actor is which node (a peer that passed first may already have sent its share of step 0).</param>
    private void Joining(StartBarrier barrier, List<(GradientShare Share, IActorRef Sender)> early)
    {
        Receive<SubscribeAck>(m => m.Subscribe.Topic == _topic, _ =>
        {
            PublishReadiness();
            Timers.StartPeriodicTimer(nameof(PublishReady), new PublishReady(), _settings.ReadyInterval);
        });
        Receive<PublishReady>(_ => PublishReadiness());
        Receive<PeerReady>(m =>
        {
            if (!AnswerReady(m, Fail) || !barrier.Ready(m.NodeAddress, m.DataEndpoint, m.DataKey, m.Peer))
                return;
            _log.Info("peer {0} ready ({1}/{2} seen)", m.NodeAddress, barrier.Seen, _setup.PeerCount);
            TryPassBarrier(barrier, early);
        });
        Receive<PeerReadyAck>(m => m.RunId == _plan.RunId, m =>
        {
            if (barrier.Acknowledged(m.NodeAddress))
                TryPassBarrier(barrier, early);
        });
        Receive<GradientShare>(m =>
        {
            // At most a share per peer and step before this barrier passes: a few steps' worth, the rest counted as drops.
            if (early.Count < StepBuffer.DefaultWindow * _setup.PeerCount)
                early.Add((m, Sender));
            else
                _run.DroppedOther++;
        });
        Receive<StartTimedOut>(_ => Fail(barrier.TimeoutProblem(_settings.StartTimeout)));
        Receive<RunUnderWay>(m => m.RunId == _plan.RunId, m => WaitToJoin(m, early));
        Receive<JoinState>(m => m.RunId == _plan.RunId, m => Joined(m, new AdmissionWait(early)));
        Receive<ClusterEvent.UnreachableMember>(m => barrier.Forget(m.Member.Address.ToString()));
        Receive<ClusterEvent.MemberRemoved>(m => barrier.Forget(m.Member.Address.ToString()));
        Receive<MembershipReport>(_ => _run.DroppedOther++);
        Common();
    }

    /// <summary>
    /// A late peer (decision 0097): the run is under way, and this peer waits for the epoch's end, when the lead sends it the
    /// replica (<see cref="JoinState"/>). It keeps announcing itself, so that a new lead knows it too; the newest shares that
    /// arrive meanwhile are held (on the Akka transport the first step's may come before the state).
    /// </summary>
    private void Admitting(AdmissionWait wait)
    {
        Receive<PublishReady>(_ => PublishReadiness());
        Receive<RunUnderWay>(m => m.RunId == _plan.RunId, m =>
        {
            if (m.Refusal is not null)
            {
                Fail(RefusedJoin(m));
                return;
            }
            Timers.StartSingleTimer(nameof(AdmissionTimedOut), new AdmissionTimedOut(), _settings.StartTimeout);
            if (wait.HeardAll(m))
                Sender.Tell(new JoinReady(_plan.RunId, _selfAddress));   // every participant's publications reach this peer
        });
        Receive<PeerPresent>(m => m.RunId == _plan.RunId, m => wait.Heard.Add(m.NodeAddress));
        Receive<JoinState>(m => m.RunId == _plan.RunId, m => Joined(m, wait));
        Receive<GradientShare>(m =>
        {
            if (wait.Early.Count >= StepBuffer.DefaultWindow * PeerAdmission.NodeIdLimitFor(_setup.PeerCount))
                wait.Early.Dequeue();
            wait.Early.Enqueue((m, Sender));
        });
        Receive<AdmissionTimedOut>(_ => Fail($"run {_plan.RunId} is under way, but its lead peer has not answered this late peer for " +
                                             $"{_settings.StartTimeout.TotalSeconds:0}s (distsgd.start-timeout): the run's peers are gone, or it ended"));
        Receive<PeerReady>(m => AnswerReady(m, _ => { }));   // another late peer's
        Receive<ParameterHash>(_ => { });
        Receive<MembershipReport>(_ => { });
        Receive<ReplicaResync>(_ => { });
        Receive<CollectivePart>(_ => { });
        Common();
    }

    private void Stepping()
    {
        _checkpointOnStop = true;
        Receive<GradientShare>(share =>
        {
            _step.Offer(share, Sender);
            _step.Loop.TryFinish();
        });
        Receive<CollectivePart>(part =>
        {
            _step.OfferPart(part, stepping: true);
            _step.Loop.TryFinish();
        });
        Receive<StepLoop.StepTimedOut>(_step.Loop.HandleTimeout);
        Receive<DataConnectionLost>(m => Open(null, _loss.ConnectionClosed(m)));
        OnPeerLost(lost => Open(null, lost));
        Receive<MembershipReport>(m => _loss.ReportArrived(m, null));
        Common();
    }

    private void Verifying(HashWait wait)
    {
        _checkpointOnStop = false;
        Receive<ParameterHash>(m =>
        {
            if (_epochEnd.Hold(m))
                _epochEnd.TryComplete(wait, timedOut: false);
        });
        Receive<HashRoundTimedOut>(m => m.Epoch == Replica.Epoch, _ => _epochEnd.TryComplete(wait, timedOut: true));
        OnPeerLost(lost =>
        {
            if (_run.HashRound.Holds(Replica.Epoch, lost.Id))
                _loss.Defer(lost);   // its part of this epoch is in (a peer that finished the run and left looks the same)
            else
                Open(wait, lost);
        });
        Receive<MembershipReport>(m => _loss.ReportArrived(m, wait));
        Receive<GradientShare>(m => _step.Offer(m, Sender));
        Common();
    }

    private void Resyncing(ResyncWait wait)
    {
        _checkpointOnStop = false;
        Receive<ReplicaResync>(m => _epochEnd.Arrived(wait, m));
        Receive<ResyncTimedOut>(m => m.Epoch == Replica.Epoch, m => _epochEnd.ResyncTimeout(m.Epoch));
        OnPeerLost(_loss.Defer);
        Receive<MembershipReport>(m => _loss.ReportArrived(m, wait));
        Receive<GradientShare>(m => _step.Offer(m, Sender));
        Common();
    }

    private void Agreeing(AgreementWait round)
    {
        _checkpointOnStop = round.InterruptedSteps;
        Receive<GradientShare>(share =>
        {
            _step.Offer(share, Sender);
            _loss.Advance(round);   // this share may be the last one its report waited for
        });
        Receive<MembershipReport>(m => _loss.ReportArrived(m, round));
        Receive<AgreementTimedOut>(_ => _loss.Timeout(round));
        Receive<ReportGraceOver>(_ => _loss.GraceOver(round));
        OnPeerLost(lost => _loss.Widen(round, lost));
        if (round.InterruptedSteps)
            Receive<DataConnectionLost>(m => _loss.Widen(round, _loss.ConnectionClosed(m)));
        if (round.EpochEnd is ResyncWait)
            Receive<ResyncTimedOut>(m => m.Epoch == Replica.Epoch, m => _epochEnd.ResyncTimeout(m.Epoch));
        Common();
    }

    private void Finished()
    {
        _checkpointOnStop = false;
        Receive<PeerReady>(m =>
        {
            if (_run.NodeId < 0 || m.Plan.RunId != _plan.RunId || PeerAdmission.IsMember(m, _run.NodeIds, _run.Peers, _run.Participants))
                AnswerReady(m, _ => { });
            else
                m.Peer.Tell(new RunUnderWay(_plan.RunId, Replica.Epoch, _run.Participants.Count, $"the run is over (after epoch {Replica.Epoch})"));
        });
        Receive<GradientShare>(_ => { });
        Receive<CollectivePart>(_ => { });
        Receive<ReplicaResync>(_ => { });
        Receive<ParameterHash>(m => m.RunId != _plan.RunId || m.NodeId != _run.NodeId || m.Epoch >= Replica.Epoch, _ => _run.DroppedOther++);
        // Its own report, echoed by the topic after this peer finished, is no drop.
        Receive<MembershipReport>(m => m.RunId != _plan.RunId || m.NodeId != _run.NodeId, _ => _run.DroppedOther++);
        Common();
    }

    /// <summary>What every behaviour handles the same way; stale timers and events of other phases end here unnoticed.</summary>
    private void Common()
    {
        Receive<PeerReady>(m =>
        {
            // A late peer's is answered by the lead (decision 0097); a participant's own is acknowledged as at the barrier.
            if (m.Plan.RunId != _plan.RunId || _run.NodeId < 0 || !_late.Answer(m, IsUpMemberAt(m)))
                AnswerReady(m, Fail);
        });
        Receive<GradientShare>(m => _step.Offer(m, Sender));
        Receive<CollectivePart>(m => _step.OfferPart(m, stepping: false));
        Receive<ParameterHash>(m => _epochEnd.Hold(m));
        Receive<ReplicaResync>(m =>
        {
            if (_epochEnd.Accept(m))
                _run.ResyncCheck.Hold(m);   // the hash round of that epoch has not finished here yet
        });
        Receive<PeerQueries.GetReplica>(_ => Sender.Tell(new PeerQueries.Replica(_run.NodeId, Replica.Optimizer.State.Step, Replica.CopyOfParameters(), _run.DroppedTotal)));
        Receive<PeerQueries.CorruptReplicaAtEpochEnd>(m => _epochEnd.CorruptAt(m.Epoch));
        Receive<PeerQueries.CrashMidAllReduce>(m =>
        {
            var system = Context.System;
            if (_run.Shares.AllReduce is AllReduceBase reduce)
                (reduce.CrashAt, reduce.Crash) = (m.Step, () => _ = system.Terminate());
            else if (_run.Shares.Collective is AllGather gather)
                (gather.CrashAt, gather.Crash) = (m.Step, () => _step.CrashBeforeApply = () => _ = system.Terminate());
        });
        Receive<PeerQueries.CrashAtStep>(m =>
        {
            var system = Context.System;
            (_step.CrashAt, _step.Crash) = (m, () => _ = system.Terminate());
        });
        Receive<PeerQueries.HoldShareUntilLoss>(m => _step.HoldShare = m);
        Receive<ClusterEvent.IReachabilityEvent>(_ => { });
        Receive<ClusterEvent.MemberRemoved>(_ => { });
        Receive<DataConnectionLost>(_ => { });
        Receive<MembershipReport>(_ => { });
        Receive<SubscribeAck>(_ => { });
        Receive<PeerReadyAck>(_ => { });
        Receive<PeerPresent>(_ => { });
        Receive<JoinReady>(m => _late.Reaches(m));
        Receive<RunUnderWay>(_ => { });
        Receive<JoinState>(_ => { });
        Receive<IPeerTimerTick>(_ => { });
        Receive<StepLoop.StepTimedOut>(_ => { });
    }

    /// <summary>The participants an unreachable or removed member held (<see cref="ParticipantTracker{TId}"/>), each to <paramref name="lost"/>.</summary>
    private void OnPeerLost(Action<ParticipantLost<int>> lost)
    {
        void Lost(MembershipChange<int> change)
        {
            foreach (var participant in change.Lost)
            {
                _run.Meter?.SetState(participant.Id, participant.Describe());
                lost(participant with { Detail = $"at {change.Member}" });
            }
        }
        Receive<ClusterEvent.UnreachableMember>(m => Lost(_tracker.Unreachable(m.Member.Address)));
        Receive<ClusterEvent.MemberRemoved>(m =>
        {
            _run.Admission.Forget(m.Member.Address.ToString());   // a late peer there waits no more
            Lost(_tracker.Removed(m.Member.Address));
        });
    }

    // ---- start barrier ------------------------------------------------------------------------------

    private void PublishReadiness() => Publish(new PeerReady(_plan, _selfAddress, Self, _run.Shares.Endpoint, _run.Shares.Key));

    /// <summary>Acknowledges a peer's <see cref="PeerReady"/> (in every phase: a peer still at the barrier needs to know its
    /// publications reach this one); true when it is for this run. A different configuration goes to <paramref name="mismatch"/>.</summary>
    private bool AnswerReady(PeerReady message, Action<string> mismatch)
    {
        if (message.Plan.RunId != _plan.RunId)
        {
            _run.DroppedOther++;
            return false;
        }
        if (StartBarrier.Mismatch(_plan, _run.Shares.IsDirect, message) is { } problem)
        {
            // Straight to the other peer, whose subscription may not have reached this node yet: it fails too, naming
            // the same difference, instead of waiting for distsgd.start-timeout.
            if (message.Plan != _plan)
                message.Peer.Tell(new PeerReady(_plan, _selfAddress, Self));
            mismatch(problem);
            return false;
        }
        message.Peer.Tell(new PeerReadyAck(_plan.RunId, _selfAddress));
        return true;
    }

    private void TryPassBarrier(StartBarrier barrier, List<(GradientShare Share, IActorRef Sender)> early)
    {
        if (barrier.TryPass() is not { } passed)
            return;
        if (passed.Problem is not null)
        {
            Fail(passed.Problem);
            return;
        }
        Timers.Cancel(nameof(PublishReady));
        Timers.Cancel(nameof(StartTimedOut));
        foreach (var (address, id) in passed.NodeIds)
            _run.NodeIds[address] = id;
        foreach (var (id, peer) in passed.Peers)
            _run.Peers[id] = peer;
        foreach (var (id, endpoint) in passed.Endpoints)
            _run.Endpoints[id] = endpoint;
        foreach (var (id, key) in passed.Keys)
            _run.Keys[id] = key;
        _run.NextNodeId = passed.NodeIds.Count;
        _run.Participants.UnionWith(passed.NodeIds.Values);
        _run.NodeId = passed.NodeIdOf(_selfAddress);
        _run.Shares.Connect(_run.NodeId, passed.Endpoints, passed.Keys);
        if (_settings.Traced)
            _step.StartTrace();
        foreach (var (share, sender) in early)
            _step.Offer(share, sender);
        var batches = _step.Started();
        _log.Info("peer {0} of {1} at {2}: start barrier passed, shard of {3} samples", _run.NodeId, _setup.PeerCount, _selfAddress, batches.ShardSize);
        if (_run.NodeId == 0)
        {
            _run.Report(new RunProgress.Note($"run {_plan.RunId} started with {_setup.PeerCount} peers"));
            // The lead peer (the lowest id) reports the live progress, as the master does.
            _run.Meter = new ProgressMeter(_plan.StepsPerEpoch);
            _run.Meter.Start(_run.NodeIds.Select(n => (n.Value, "peer", n.Key)));
        }
        Become(Stepping);
        Replica.Start();
        _step.Loop.Begin();
    }

    // ---- a late peer (decision 0097) ------------------------------------------------------------------

    /// <summary>The lead says the run is under way: this late peer waits for the epoch's end (or stops, refused).</summary>
    private void WaitToJoin(RunUnderWay message, List<(GradientShare Share, IActorRef Sender)> early)
    {
        if (message.Refusal is not null)
        {
            Fail(RefusedJoin(message));
            return;
        }
        Timers.Cancel(nameof(StartTimedOut));
        Timers.StartSingleTimer(nameof(AdmissionTimedOut), new AdmissionTimedOut(), _settings.StartTimeout);
        _log.Info("run {0} is under way at epoch {1} with {2} peers: this peer joins at its end", _plan.RunId, message.Epoch, message.Peers);
        _run.Report(new RunProgress.Note($"run {_plan.RunId} is under way (epoch {message.Epoch}, {message.Peers} peers): this peer joins it " +
                                         "at the end of an epoch, once every peer hears it, when the lead peer sends it the replica"));
        Become(() => Admitting(new AdmissionWait(early)));
    }

    private string RefusedJoin(RunUnderWay message) =>
        $"run {_plan.RunId} is under way (epoch {message.Epoch}, {message.Peers} peers) and does not take this peer: {message.Refusal}";

    /// <summary>The lead's replica arrived: this peer adopts it and takes the next step with the others.</summary>
    private void Joined(JoinState state, AdmissionWait wait)
    {
        if (_late.Adopt(state, _selfAddress) is { } problem)
        {
            Fail($"the replica the lead peer sent this late peer cannot be adopted: {problem}");
            return;
        }
        Timers.Cancel(nameof(PublishReady));
        Timers.Cancel(nameof(StartTimedOut));
        Timers.Cancel(nameof(AdmissionTimedOut));
        if (_settings.Traced)
            _step.StartTrace();
        foreach (var (share, sender) in wait.Early)
            if (share.Step >= Replica.Step)
                _step.Offer(share, sender);
        _log.Info("peer at {0} joined run {1} as node {2} at epoch {3}, step {4}", _selfAddress, _plan.RunId, _run.NodeId, Replica.Epoch, Replica.Step);
        _run.Report(new RunProgress.Note($"this peer joined run {_plan.RunId} as node {_run.NodeId} from epoch {Replica.Epoch} (step {Replica.Step}): " +
                                         $"{_run.Participants.Count} peers take part (nodes {string.Join(", ", _run.Participants)})"));
        Become(Stepping);
        Replica.Start();
        _step.Loop.Begin();
    }

    /// <summary>Whether a PeerReady comes from an Up member of the cluster, as this node sees it, and from an actor on that member.</summary>
    private bool IsUpMemberAt(PeerReady message) =>
        message.Peer.Path.Address.ToString() == message.NodeAddress
        && Cluster.Get(Context.System).State.Members.Any(m => m.Status == MemberStatus.Up && m.Address.ToString() == message.NodeAddress);

    // ---- what the collaborators ask of the actor (IPeerControl) -------------------------------------

    void IPeerControl.BecomeStepping() => Become(Stepping);

    void IPeerControl.BecomeVerifying(HashWait wait) => Become(() => Verifying(wait));

    void IPeerControl.BecomeResyncing(ResyncWait wait) => Become(() => Resyncing(wait));

    void IPeerControl.BecomeAgreeing(AgreementWait wait)
    {
        Become(() => Agreeing(wait));
        if (_step.ReleaseHeldShare() is { } held)
            Self.Tell(held.Share, held.Sender);   // test hook (PeerQueries.HoldShareUntilLoss): it arrives now
    }

    void IPeerControl.StartHashRound() => _epochEnd.Start();

    bool IPeerControl.OpenAgreement(object? epochEnd, IReadOnlyCollection<int> nodeIds, LossCause cause, string detail) =>
        _loss.Open(epochEnd, nodeIds, cause, detail);

    private bool Open(object? epochEnd, ParticipantLost<int> lost) => _loss.Open(epochEnd, [lost.Id], lost.Cause, lost.Detail);

    bool IPeerControl.OpenDeferredAgreement() => _loss.OpenDeferred();

    void IPeerControl.Finish(StopReason reason, bool lead, byte[] hash)
    {
        _late.RefuseWaiting($"the run is over (after epoch {Replica.Epoch})");
        Become(Finished);
        Timers.CancelAll();
        _run.Shares.Dispose();
        _mediator.Tell(new Unsubscribe(_topic, Self));
        _log.Info("peer {0} finished run {1} after {2} epochs ({3}); replica hash {4}", _run.NodeId, _plan.RunId, Replica.Epochs.Count, reason, ReplicaCheck.Short(hash));
        _setup.Reporter.Tell(new PeerFinished(_run.NodeId, Replica.CopyOfParameters(), hash));
        if (lead)
            _setup.Reporter.Tell(new RunProgress.RunCompleted(Replica.CopyOfParameters(), Replica.Result(reason)));
        Replica.Stop();
    }

    void IPeerControl.Fail(string reason) => Fail(reason);

    void IPeerControl.LeftOut(string reason)
    {
        _setup.Reporter.Tell(new PeerLeftOut(_run.NodeId, reason));   // before the failure: its node may join again (NodeEnding.Rejoins)
        Fail(reason);
    }

    void IPeerControl.Publish(object message) => Publish(message);

    private void Fail(string reason)
    {
        Become(Finished);
        Timers.CancelAll();
        _run.Shares.Dispose();
        Replica.Stop();
        _log.Error("run {0} failed on peer {1}: {2}", _plan.RunId, _run.NodeId, reason);
        _setup.Reporter.Tell(new RunProgress.RunFailed(reason));
    }

    private void Publish(object message) => _mediator.Tell(new Publish(_topic, message));
}
