using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Tools.PublishSubscribe;
using Akka.Event;
using DistSgd.Actors.Membership;
using DistSgd.Actors.Protocol;
using DistSgd.Actors.Steps;
using DistSgd.Actors.Transport;
using DistSgd.Numerics.Models;
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
/// what its phase handles, and <see cref="Common"/> what every phase handles. The decisions are plain classes beside it.
/// This file holds the state, the behaviours and the end of the run; their handlers are in PeerActor.Steps.cs (the start
/// barrier and the peer's side of the <see cref="StepLoop"/>), PeerActor.EpochEnd.cs and PeerActor.PeerLoss.cs.</para>
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
public sealed partial class PeerActor : ReceiveActor, IWithTimers, IStepExchange
{
    /// <summary>A timer's message: one that arrives after its phase is over is ignored.</summary>
    private interface ITimerTick;
    private sealed record PublishReady : ITimerTick;
    private sealed record StartTimedOut : ITimerTick;
    private sealed record HashRoundTimedOut(int Epoch) : ITimerTick;
    private sealed record ResyncTimedOut(int Epoch) : ITimerTick;
    private sealed record AgreementTimedOut : ITimerTick;
    private sealed record ReportGraceOver : ITimerTick;

    /// <summary>
    /// How long a peer that lost someone waits for the other survivors' shares of its open step before it reports
    /// what it holds (they were sent before anything else; a share missing then is left out of that step everywhere).
    /// </summary>
    private static readonly TimeSpan ReportGrace = TimeSpan.FromSeconds(1);

    private readonly PeerSetup _setup;
    private readonly RunPlan _plan;
    private readonly DistSgdSettings _settings;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly IActorRef _mediator;
    private readonly string _topic;
    private readonly string _selfAddress;

    private readonly Replica _replica;
    /// <summary>Made in PreStart: Akka sets <see cref="Timers"/> after the constructor.</summary>
    private StepLoop _loop = null!;
    /// <summary>The gradient of this peer's shard: its own kernels (the replica's evaluator has others).</summary>
    private readonly Model _model;
    private readonly float[] _features;
    private readonly float[] _targets;
    private readonly StepBuffer _buffer;
    private readonly StepUndo _undo;
    private readonly ShareExchange _shares;
    private readonly ParticipantTracker<int> _tracker;
    /// <summary>This peer's share of the open step, sent again when nothing at all arrived.</summary>
    private GradientShare? _ownShare;

    private readonly HashRound _hashRound = new();
    private readonly ResyncCheck _resyncCheck = new();
    private readonly DropLog _drops;
    private readonly HashSet<int> _corruptAtEpoch = new();
    private readonly SortedSet<int> _participants = new();
    /// <summary>Participants lost at an epoch end after their hash arrived: the next step agrees without them.</summary>
    private readonly SortedSet<int> _deferredSuspects = new();

    private IReadOnlyDictionary<string, int> _nodeIds = new Dictionary<string, int>();
    private int _nodeId = -1;
    private ProgressMeter? _meter;
    private ShardBatches? _batches;
    private long _skippedSteps;
    private bool _reshard;
    private ParameterHash? _lastHash;
    private long _droppedOther;
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
        _replica = new Replica(_plan, setup.InitialParameters, setup.Optimizer, setup.Training,
                               MatrixKernels.Create(setup.EvaluationThreads), setup.Checkpoints);
        int parameterCount = _replica.Parameters.Length;
        _model = new Model(_plan.Spec, MatrixKernels.Create(setup.Threads));
        _buffer = new StepBuffer(_plan.RunId, parameterCount) { FirstStep = _replica.Step };
        _drops = new DropLog(text => _log.Warning("{0}", text));
        _features = new float[_plan.BatchSizePerWorker * _plan.Spec.InputCount];
        _targets = new float[_plan.BatchSizePerWorker];
        _undo = new StepUndo(parameterCount, _replica.Optimizer.State.Velocity.Length);
        var self = Self;
        var direct = _settings.Transport != PayloadTransport.Direct ? null
            : new DirectDataPlane(DistSgdSettings.DataPlane(Context.System, _plan.RunId, parameterCount, FrameKind.GradientShare, setup.PeerCount), GradientShare.FromFrame, m => self.Tell(m));
        _shares = new ShareExchange(_mediator, _topic, direct, parameterCount);
        _tracker = new ParticipantTracker<int>(address => _nodeIds.TryGetValue(address.ToString(), out int id) && _participants.Contains(id) ? [id] : []);
        var barrier = new StartBarrier(_plan.RunId, _selfAddress, setup.PeerCount);
        Become(() => Joining(barrier));
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(PeerSetup setup) =>
        Akka.Actor.Props.Create(() => new PeerActor(setup)).WithDispatcher(DistSgdSettings.ComputeDispatcher);

    protected override void PreStart()
    {
        _loop = new StepLoop(_replica, this, Timers, _settings.StepTimeout);
        Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents,
                                              typeof(ClusterEvent.IReachabilityEvent), typeof(ClusterEvent.MemberRemoved));
        if (_setup.DataMismatch() is { } problem)
        {
            Fail(problem);
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
        if (_checkpointOnStop && _nodeId == _participants.Min)
            _replica.CheckpointNow();
        Cluster.Get(Context.System).Unsubscribe(Self);
        _shares.Dispose();
        _replica.Dispose();
        (_model.Kernels as IDisposable)?.Dispose();
    }

    // ---- behaviours ---------------------------------------------------------------------------------

    private void Joining(StartBarrier barrier)
    {
        Receive<SubscribeAck>(m => m.Subscribe.Topic == _topic, _ =>
        {
            PublishReadiness();
            Timers.StartPeriodicTimer(nameof(PublishReady), new PublishReady(), _settings.ReadyInterval);
        });
        Receive<PublishReady>(_ => PublishReadiness());
        Receive<PeerReady>(m =>
        {
            if (!AnswerReady(m, Fail) || !barrier.Ready(m.NodeAddress, m.DataEndpoint))
                return;
            _log.Info("peer {0} ready ({1}/{2} seen)", m.NodeAddress, barrier.Seen, _setup.PeerCount);
            TryPassBarrier(barrier);
        });
        Receive<PeerReadyAck>(m => m.RunId == _plan.RunId, m =>
        {
            if (barrier.Acknowledged(m.NodeAddress))
                TryPassBarrier(barrier);
        });
        Receive<StartTimedOut>(_ => Fail(barrier.TimeoutProblem(_settings.StartTimeout)));
        Receive<ClusterEvent.UnreachableMember>(m => barrier.Forget(m.Member.Address.ToString()));
        Receive<ClusterEvent.MemberRemoved>(m => barrier.Forget(m.Member.Address.ToString()));
        Receive<MembershipReport>(_ => _droppedOther++);
        Common();
    }

    private void Stepping()
    {
        _checkpointOnStop = true;
        Receive<GradientShare>(share =>
        {
            OfferShare(share);
            _loop.TryFinish();
        });
        Receive<StepLoop.StepTimedOut>(_loop.HandleTimeout);
        Receive<DataConnectionLost>(m => OpenAgreement(null, [m.Sender], ConnectionClosed(m)));
        OnPeerLost((id, why) => OpenAgreement(null, [id], why));
        Receive<MembershipReport>(m => ReportArrived(m, null));
        Common();
    }

    private void Verifying(HashWait wait)
    {
        _checkpointOnStop = false;
        Receive<ParameterHash>(m =>
        {
            if (HoldHash(m))
                TryCompleteHashRound(wait, timedOut: false);
        });
        Receive<HashRoundTimedOut>(m => m.Epoch == _replica.Epoch, _ => TryCompleteHashRound(wait, timedOut: true));
        OnPeerLost((id, why) =>
        {
            if (_hashRound.Holds(_replica.Epoch, id))
                DeferLoss(id, why);   // its part of this epoch is in (a peer that finished the run and left looks the same)
            else
                OpenAgreement(wait, [id], why);
        });
        Receive<MembershipReport>(m => ReportArrived(m, wait));
        Receive<GradientShare>(OfferShare);
        Common();
    }

    private void Resyncing(ResyncWait wait)
    {
        _checkpointOnStop = false;
        Receive<ReplicaResync>(m =>
        {
            if (!AcceptResync(m))
                return;
            if (m.Epoch == _replica.Epoch)
                ApplyResync(wait, m);
            else
                _resyncCheck.Hold(m);
        });
        Receive<ResyncTimedOut>(m => m.Epoch == _replica.Epoch, m => ResyncTimeout(m.Epoch));
        OnPeerLost(DeferLoss);
        Receive<MembershipReport>(m => ReportArrived(m, wait));
        Receive<GradientShare>(OfferShare);
        Common();
    }

    private void Agreeing(PeerLossRound round)
    {
        _checkpointOnStop = round.InterruptedSteps;
        Receive<GradientShare>(share =>
        {
            OfferShare(share);
            AdvanceAgreement(round);   // this share may be the last one its report waited for
        });
        Receive<MembershipReport>(m => ReportArrived(m, round));
        Receive<AgreementTimedOut>(_ => AgreementTimeout(round));
        Receive<ReportGraceOver>(_ =>
        {
            round.GraceOver = true;
            AdvanceAgreement(round);
        });
        OnPeerLost((id, why) => Suspect(round, [id], why, started: false));
        if (round.InterruptedSteps)
            Receive<DataConnectionLost>(m => Suspect(round, [m.Sender], ConnectionClosed(m), started: false));
        if (round.EpochEnd is ResyncWait)
            Receive<ResyncTimedOut>(m => m.Epoch == _replica.Epoch, m => ResyncTimeout(m.Epoch));
        Common();
    }

    private void Finished()
    {
        _checkpointOnStop = false;
        Receive<PeerReady>(m => AnswerReady(m, _ => { }));
        Receive<GradientShare>(_ => { });
        Receive<ReplicaResync>(_ => { });
        Receive<ParameterHash>(m => m.RunId != _plan.RunId || m.NodeId != _nodeId || m.Epoch >= _replica.Epoch, _ => _droppedOther++);
        // Its own report, echoed by the topic after this peer finished, is no drop.
        Receive<MembershipReport>(m => m.RunId != _plan.RunId || m.NodeId != _nodeId, _ => _droppedOther++);
        Common();
    }

    /// <summary>What every behaviour handles the same way; stale timers and events of other phases end here unnoticed.</summary>
    private void Common()
    {
        Receive<PeerReady>(m => AnswerReady(m, Fail));
        Receive<GradientShare>(OfferShare);
        Receive<ParameterHash>(m => HoldHash(m));
        Receive<ReplicaResync>(m =>
        {
            if (AcceptResync(m))
                _resyncCheck.Hold(m);   // the hash round of that epoch has not finished here yet
        });
        Receive<PeerQueries.GetReplica>(_ => Sender.Tell(new PeerQueries.Replica(_nodeId, _replica.Optimizer.State.Step, _replica.CopyOfParameters(), DroppedTotal)));
        Receive<PeerQueries.CorruptReplicaAtEpochEnd>(m => _corruptAtEpoch.Add(m.Epoch));
        Receive<ClusterEvent.IReachabilityEvent>(_ => { });
        Receive<ClusterEvent.MemberRemoved>(_ => { });
        Receive<DataConnectionLost>(_ => { });
        Receive<MembershipReport>(_ => { });
        Receive<SubscribeAck>(_ => { });
        Receive<PeerReadyAck>(_ => { });
        Receive<ITimerTick>(_ => { });
        Receive<StepLoop.StepTimedOut>(_ => { });
    }

    /// <summary>The participants an unreachable or removed member held (<see cref="ParticipantTracker{TId}"/>), each to <paramref name="lost"/>.</summary>
    private void OnPeerLost(Action<int, string> lost)
    {
        void Lost(MembershipChange<int> change)
        {
            foreach (var participant in change.Lost)
            {
                _meter?.SetState(participant.Id, participant.Describe());
                lost(participant.Id, $"at {change.Member} {participant.Describe()}");
            }
        }
        Receive<ClusterEvent.UnreachableMember>(m => Lost(_tracker.Unreachable(m.Member.Address)));
        Receive<ClusterEvent.MemberRemoved>(m => Lost(_tracker.Removed(m.Member.Address)));
    }

    private long DroppedTotal => _buffer.DroppedTotal + _resyncCheck.DroppedTotal + _droppedOther;

    private void Finish(StopReason reason, bool lead, byte[] hash)
    {
        Become(Finished);
        Timers.CancelAll();
        _shares.Dispose();
        _mediator.Tell(new Unsubscribe(_topic, Self));
        _log.Info("peer {0} finished run {1} after {2} epochs ({3}); replica hash {4}", _nodeId, _plan.RunId, _replica.Epochs.Count, reason, ReplicaCheck.Short(hash));
        _setup.Reporter.Tell(new PeerFinished(_nodeId, _replica.CopyOfParameters(), hash));
        if (lead)
            _setup.Reporter.Tell(new RunProgress.RunCompleted(_replica.CopyOfParameters(), _replica.Result(reason)));
        _replica.Stop();
    }

    private void Fail(string reason)
    {
        Become(Finished);
        Timers.CancelAll();
        _shares.Dispose();
        _replica.Stop();
        _log.Error("run {0} failed on peer {1}: {2}", _plan.RunId, _nodeId, reason);
        _setup.Reporter.Tell(new RunProgress.RunFailed(reason));
    }

    private void Publish(object message) => _mediator.Tell(new Publish(_topic, message));
}