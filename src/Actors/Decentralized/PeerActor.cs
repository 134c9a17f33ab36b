using System.Diagnostics;
using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Tools.PublishSubscribe;
using Akka.Event;
using DistSgd.Actors.Membership;
using DistSgd.Actors.Protocol;
using DistSgd.Actors.Steps;
using DistSgd.Actors.Transport;
using DistSgd.Numerics.Data;
using DistSgd.Numerics.Models;
using DistSgd.Numerics.Optim;
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
/// what its phase handles, and <see cref="Common"/> what every phase handles. The decisions are plain classes beside it.</para>
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
public sealed class PeerActor : ReceiveActor, IWithTimers, IStepExchange
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

    // ---- start barrier ------------------------------------------------------------------------------

    private void PublishReadiness() => Publish(new PeerReady(_plan, _selfAddress, Self, _shares.Endpoint));

    /// <summary>Acknowledges a peer's <see cref="PeerReady"/> (in every phase: a peer still at the barrier needs to know its
    /// publications reach this one); true when it is for this run. A different configuration goes to <paramref name="mismatch"/>.</summary>
    private bool AnswerReady(PeerReady message, Action<string> mismatch)
    {
        if (message.Plan.RunId != _plan.RunId)
        {
            _droppedOther++;
            return false;
        }
        if (message.Plan != _plan)
        {
            // Straight to the other peer, whose subscription may not have reached this node yet: it fails too, naming
            // the same difference, instead of waiting for distsgd.start-timeout.
            message.Peer.Tell(new PeerReady(_plan, _selfAddress, Self));
            mismatch($"the peer at {message.NodeAddress} runs a different run configuration: " +
                     string.Join("; ", _plan.Differences(message.Plan, "here", $"at {message.NodeAddress}")));
            return false;
        }
        if (_shares.IsDirect == (message.DataEndpoint.Length == 0))
        {
            mismatch($"the peer at {message.NodeAddress} uses the {(message.DataEndpoint.Length == 0 ? "akka" : "direct")} transport, this peer " +
                     $"the {(_shares.IsDirect ? "direct" : "akka")} one (distsgd.transport must be the same on every peer)");
            return false;
        }
        message.Peer.Tell(new PeerReadyAck(_plan.RunId, _selfAddress));
        return true;
    }

    private void TryPassBarrier(StartBarrier barrier)
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
        _nodeIds = passed.NodeIds;
        _participants.UnionWith(passed.NodeIds.Values);
        _shares.Connect(passed.Endpoints);
        _nodeId = passed.NodeIdOf(_selfAddress);
        _batches = new ShardBatches(_setup.Train, _nodeId, _setup.PeerCount, _plan.BatchSizePerWorker, _plan.Seed);
        _log.Info("peer {0} of {1} at {2}: start barrier passed, shard of {3} samples", _nodeId, _setup.PeerCount, _selfAddress, _batches.ShardSize);
        if (_nodeId == 0)
        {
            _setup.Reporter.Tell(new RunProgress.Note($"run {_plan.RunId} started with {_setup.PeerCount} peers"));
            // The lead peer (the lowest id) reports the live progress, as the master does.
            _meter = new ProgressMeter(_plan.StepsPerEpoch);
            _meter.Start(_nodeIds.Select(n => (n.Value, "peer", n.Key)));
        }
        Become(Stepping);
        _replica.Start();
        _loop.Begin();
    }

    // ---- synchronous steps --------------------------------------------------------------------------

    StepGather IStepExchange.Open()
    {
        // The lead peer (lowest node id) writes the checkpoints: every replica is the same.
        if (_nodeId == _participants.Min && _replica.CheckpointIfDue() is { } checkpoint)
            _setup.Reporter.Tell(new RunProgress.Note(checkpoint.Describe()));
        _buffer.Begin(_replica.Step, _participants);
        return _buffer.Gather;
    }

    void IStepExchange.Broadcast()
    {
        _ownShare = ComputeShare();
        SendShare(_ownShare);
        if (_shares.IsDirect)
            _buffer.Offer(_ownShare);   // the topic hands a peer its own share; the data plane does not
    }

    bool IStepExchange.AfterBegin()
    {
        if (_deferredSuspects.Count == 0)
            return true;
        // Lost while this peer compared hashes: now that a step waits for them, the survivors agree without them.
        var suspects = _deferredSuspects.ToList();
        _deferredSuspects.Clear();
        return !OpenAgreement(null, suspects, "was lost at the end of the last epoch");   // agreeing, or already decided and gone on
    }

    private GradientShare ComputeShare()
    {
        long started = Stopwatch.GetTimestamp();
        long step = _replica.Step;
        int rows = _batches!.Gather(_replica.Epoch, _replica.StepInEpoch, _features, _targets);
        if (rows == 0)
            return new GradientShare(_plan.RunId, step, _nodeId, 0, 0, 0, []);
        var gradient = _shares.GradientArray(_undo);
        float loss = _model.LossAndGradient(_replica.Parameters, _features.AsSpan(0, rows * _plan.Spec.InputCount),
                                            _targets.AsSpan(0, rows), rows, gradient);
        return new GradientShare(_plan.RunId, step, _nodeId, rows, (double)loss * rows,
                                 Stopwatch.GetElapsedTime(started).TotalSeconds, gradient);
    }

    private void SendShare(GradientShare share) =>
        _replica.Totals.BytesSent += _shares.Send(share, _replica.Epoch, _replica.StepInEpoch, _nodeId, _participants, (node, endpoint) =>
            _log.Warning("step {0}: could not send this peer's share to peer {1} at {2}", share.Step, node, endpoint));

    private void OfferShare(GradientShare share)
    {
        if (share.NodeId != _nodeId)
            _replica.Totals.BytesReceived += DistSgdSerializer.PayloadBytes(share);
        var outcome = _buffer.Offer(share);
        if (outcome is not (GatherOutcome.Accepted or GatherOutcome.Buffered))
            _drops.Record(outcome, $"share of node {share.NodeId} for step {share.Step} (run {share.RunId}, {share.Gradient.Length} values)");
    }

    void IStepExchange.AskAgain(IReadOnlyCollection<int> missing)
    {
        _log.Warning("step {0}: no share arrived within {1}, not even this peer's own; publishing it again", _replica.Step, _settings.StepTimeout);
        SendShare(_ownShare!);
        _loop.RestartTimeout();
    }

    string IStepExchange.NothingArrived(IReadOnlyCollection<int> missing) =>
        $"no share of step {_replica.Step} arrived within {StepLoop.MaxStepRetries + 1} × distsgd.step-timeout ({_settings.StepTimeout.TotalSeconds:0}s), not even this peer's own";

    bool IStepExchange.GoOnWithout(IReadOnlyCollection<int> missing)
    {
        _log.Warning("step {0}: peers {1} sent no share within {2}", _replica.Step, string.Join(", ", missing), _settings.StepTimeout);
        OpenAgreement(null, missing, $"sent no share of step {_replica.Step} within distsgd.step-timeout ({_settings.StepTimeout.TotalSeconds:0.#}s)");
        return false;
    }

    bool IStepExchange.BeforeApply(StepGather gather)
    {
        _undo.Capture(_replica.Parameters, _replica.Optimizer.State);
        return true;
    }

    void IStepExchange.AfterApply(StepGather gather, double wallSeconds, bool diverged)
    {
        // Over the data plane, the previous step's shares from other peers can no longer be redone: their arrays take the next frames.
        _undo.Applied(gather.Step, gather.Replies, _shares.Release);
        if (!diverged && _meter?.StepDone(gather.Replies, wallSeconds, _replica.Totals, _replica.Epoch, _replica.StepInEpoch + 1) is { } progress)
            _setup.Reporter.Tell(progress);
    }

    bool IStepExchange.EndEpoch()
    {
        StartHashRound();
        return false;
    }

    void IStepExchange.Fail(string reason) => Fail(reason);

    // ---- epoch end: hash round, repair, stop rule ---------------------------------------------------

    /// <summary>Starts the epoch's hash round: this replica's hash and stop vote to every peer.</summary>
    private void StartHashRound()
    {
        if (_corruptAtEpoch.Remove(_replica.Epoch))
        {
            _replica.Parameters[0] += 1f;
            _log.Warning("test hook: replica of node {0} corrupted at the end of epoch {1}", _nodeId, _replica.Epoch);
        }
        // Observed when the epoch is over (ProceedAfterEpoch): an epoch end redone after a peer loss votes again.
        bool vote = _replica.Stopping.WouldStop(_replica.Totals.TrainLoss) || _replica.AtEpochLimit;
        _lastHash = new ParameterHash(_plan.RunId, _replica.Epoch, _nodeId, ReplicaCheck.Hash(_replica.Parameters, _replica.Optimizer.State), vote);
        Publish(_lastHash);
        var wait = new HashWait(_lastHash);
        Become(() => Verifying(wait));
        Timers.StartSingleTimer(nameof(HashRoundTimedOut), new HashRoundTimedOut(_replica.Epoch), _settings.StepTimeout);
        TryCompleteHashRound(wait, timedOut: false);
    }

    /// <summary>Holds a hash of this epoch or a later one; false for one to ignore (counted unless it is this peer's own echo).</summary>
    private bool HoldHash(ParameterHash message)
    {
        // The topic hands this peer its own publication too, maybe after it has completed that round without it
        // (its own hash is always counted): not a message to judge, let alone a drop.
        if (message.RunId == _plan.RunId && message.NodeId == _nodeId && message.Epoch < _replica.Epoch)
            return false;
        if (message.RunId != _plan.RunId || message.Epoch < _replica.Epoch)
        {
            _droppedOther++;
            return false;
        }
        _hashRound.Offer(message);
        return true;
    }

    private void TryCompleteHashRound(HashWait wait, bool timedOut)
    {
        if (_hashRound.TryComplete(wait.Own, _participants, out var missing) is not { } agreed)
        {
            if (timedOut)
                OpenAgreement(wait, missing, $"sent no parameter hash for epoch {_replica.Epoch} within distsgd.step-timeout ({_settings.StepTimeout.TotalSeconds:0.#}s)");
            return;
        }
        Timers.Cancel(nameof(HashRoundTimedOut));
        if (agreed.AllEqual)
        {
            ProceedAfterEpoch(agreed.VotesToStop, wait.Own.Hash);
            return;
        }
        string report = agreed.Describe(_replica.Epoch);
        _log.Error(report);
        if (_nodeId == _participants.Min)
            _setup.Reporter.Tell(new RunProgress.Note(report));
        if (agreed.Source == _nodeId)
        {
            var resync = new ReplicaResync(_plan.RunId, _replica.Epoch, _nodeId, wait.Own.Hash, _replica.Optimizer.State.Step,
                                           _replica.CopyOfParameters(), (float[])_replica.Optimizer.State.Velocity.Clone());
            Publish(resync);
            _replica.Totals.BytesSent += DistSgdSerializer.PayloadBytes(resync) * (_participants.Count - 1);
        }
        if (agreed.Matches(wait.Own.Hash))
        {
            ProceedAfterEpoch(agreed.VotesToStop, wait.Own.Hash);
            return;
        }
        var resyncWait = new ResyncWait(wait.Own, agreed.Source, agreed.VotesToStop);
        Become(() => Resyncing(resyncWait));
        Timers.StartSingleTimer(nameof(ResyncTimedOut), new ResyncTimedOut(_replica.Epoch), _settings.StepTimeout);
        if (_resyncCheck.TakeHeld(_replica.Epoch, agreed.Source) is { } early)
            ApplyResync(resyncWait, early);
    }

    /// <summary>Whether a resync is one to apply or hold; false for one to ignore (counted when it is bad).</summary>
    private bool AcceptResync(ReplicaResync message)
    {
        // Its own publication coming back, or one for an epoch this peer agreed on and left: normal.
        if (message.SourceNodeId == _nodeId || (message.RunId == _plan.RunId && message.Epoch < _replica.Epoch))
            return false;
        if (message.RunId != _plan.RunId || message.Epoch > _replica.Epoch + 1 || !_participants.Contains(message.SourceNodeId))
        {
            var reason = message.RunId != _plan.RunId ? GatherOutcome.ForeignRun
                       : message.Epoch > _replica.Epoch + 1 ? GatherOutcome.FutureStep : GatherOutcome.NotParticipant;
            _drops.Record(_resyncCheck.Refuse(reason), $"replica resync from node {message.SourceNodeId} for epoch {message.Epoch} (run {message.RunId})");
            return false;
        }
        _replica.Totals.BytesReceived += DistSgdSerializer.PayloadBytes(message);
        return true;
    }

    private void ApplyResync(ResyncWait wait, ReplicaResync message)
    {
        var outcome = _resyncCheck.Judge(message, _plan.RunId, wait.Source, _replica.Parameters.Length, _replica.Optimizer.State.Velocity.Length);
        if (outcome != GatherOutcome.Accepted)
        {
            // Not applied; a good one may still come, else the resync timeout fails the run.
            _drops.Record(outcome, $"replica resync from node {message.SourceNodeId} after epoch {message.Epoch}");
            return;
        }
        message.Parameters.CopyTo(_replica.Parameters, 0);
        _replica.Optimizer.Restore(new SgdState(message.OptimizerStep, message.Velocity));
        var hash = ReplicaCheck.Hash(_replica.Parameters, _replica.Optimizer.State);
        if (!hash.AsSpan().SequenceEqual(message.Hash))
        {
            Fail($"the replica copied from node {message.SourceNodeId} after epoch {message.Epoch} does not match its hash");
            return;
        }
        Timers.Cancel(nameof(ResyncTimedOut));
        _log.Warning("node {0} re-synchronised its replica from node {1} after epoch {2}", _nodeId, message.SourceNodeId, message.Epoch);
        _setup.Reporter.Tell(new RunProgress.Note($"node {_nodeId} re-synchronised its replica from node {message.SourceNodeId} after epoch {message.Epoch}"));
        ProceedAfterEpoch(wait.VotesToStop, hash);
    }

    private void ResyncTimeout(int epoch) =>
        Fail($"replica of node {_nodeId} differs from the others after epoch {epoch} and no resynchronisation arrived within {_settings.StepTimeout.TotalSeconds:0}s (distsgd.step-timeout)");

    private void ProceedAfterEpoch(bool stop, byte[] hash)
    {
        bool lead = _nodeId == _participants.Min;
        var (metrics, _) = _replica.CloseEpoch(lead ? _setup.Test : null, _replica.Step - _skippedSteps, DroppedTotal + _shares.BadFrames,
                                               DroppedMessages.ByKind(_buffer.Dropped.Concat(_resyncCheck.Dropped), _shares.BadFrames, _droppedOther));
        if (lead)
            _setup.Reporter.Tell(new RunProgress.EpochCompleted(metrics));
        _resyncCheck.ForgetThrough(_replica.Epoch);
        if (stop)
        {
            Finish(_replica.AtEpochLimit ? StopReason.EpochLimit : StopReason.LossPlateau, lead, hash);
            return;
        }
        _replica.NextEpoch();
        if (_reshard)
            Reshard();
        Become(Stepping);
        _loop.Begin();
    }

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
    }

    private void Fail(string reason)
    {
        Become(Finished);
        Timers.CancelAll();
        _shares.Dispose();
        _log.Error("run {0} failed on peer {1}: {2}", _plan.RunId, _nodeId, reason);
        _setup.Reporter.Tell(new RunProgress.RunFailed(reason));
    }

    // ---- peer loss: the survivors agree on the membership and on the contested step ---------------------

    private string ConnectionClosed(DataConnectionLost message)
    {
        // A closed data connection while steps run is a lost peer, like an unreachable member, and detected sooner.
        _log.Warning("data connection from peer {0} closed ({1})", message.Sender, message.Reason);
        return $"closed its data connection ({message.Reason})";
    }

    private void DeferLoss(int id, string why)
    {
        // The epoch ends without an agreement, and the next step, if any, starts one.
        _deferredSuspects.Add(id);
        _log.Info("peer {0} {1} after its hash for epoch {2} arrived", id, why, _replica.Epoch);
    }

    /// <summary>
    /// Counts <paramref name="nodeIds"/> as lost and starts the agreement on the survivors, interrupting the steps
    /// (<paramref name="epochEnd"/> null) or the epoch end; false when none of them is a participant (nothing changes).
    /// </summary>
    private bool OpenAgreement(object? epochEnd, IReadOnlyCollection<int> nodeIds, string why)
    {
        var suspects = nodeIds.Where(id => id != _nodeId && _participants.Contains(id)).ToList();
        if (suspects.Count == 0)
            return false;
        var round = new PeerLossRound(new MembershipAgreement(_participants, _nodeId), epochEnd);
        Become(() => Agreeing(round));
        Suspect(round, suspects, why, started: true);
        return true;
    }

    /// <summary>Widens the agreement by <paramref name="nodeIds"/>; when the lost set grew, reports and restarts the timeout.</summary>
    private void Suspect(PeerLossRound round, IReadOnlyCollection<int> nodeIds, string why, bool started)
    {
        var suspects = nodeIds.Where(id => id != _nodeId && _participants.Contains(id)).ToList();
        if (suspects.Count == 0 || !round.Agreement.Suspect(suspects))
            return;
        _log.Warning("peer {0} {1}: agreeing with the others on the survivors (lost so far: {2})",
                     string.Join(", ", suspects), why, string.Join(", ", round.Agreement.Lost));
        _setup.Reporter.Tell(new RunProgress.Note($"node {_nodeId}: peer {string.Join(", ", suspects)} {why}"));
        StartAgreementTimers(started);
        AdvanceAgreement(round);
    }

    private void StartAgreementTimers(bool started)
    {
        if (started)
            Timers.StartSingleTimer(nameof(ReportGraceOver), new ReportGraceOver(), ReportGrace);
        // Every widening gives the survivors still to report a whole timeout.
        Timers.StartSingleTimer(nameof(AgreementTimedOut), new AgreementTimedOut(), _settings.StepTimeout);
    }

    /// <summary>
    /// A survivor's report: outside an agreement (<paramref name="interrupted"/> the epoch-end state, or null in the steps)
    /// it opens one unless it names nobody this peer still counts; inside one (<paramref name="interrupted"/> the round) it is offered.
    /// </summary>
    private void ReportArrived(MembershipReport report, object? interrupted)
    {
        if (report.RunId != _plan.RunId || !_participants.Contains(report.NodeId))
        {
            _droppedOther++;
            return;
        }
        if (report.NodeId == _nodeId)
            return;   // this peer's own, offered when it was published
        // A hash that peer published before this report may be redone after the agreement; it publishes its latest
        // hash again once it has decided (after this report, so that copy arrives after it).
        _hashRound.Withdraw(report.NodeId);
        bool started = interrupted is not PeerLossRound;
        if (started && !report.Lost.Any(_participants.Contains))
            return;   // an agreement this peer has applied already
        var round = interrupted as PeerLossRound ?? new PeerLossRound(new MembershipAgreement(_participants, _nodeId), interrupted);
        if (started)
            Become(() => Agreeing(round));
        var before = round.Agreement.Lost.ToList();
        if (round.Agreement.Offer(report) || started)
        {
            _log.Warning("node {0} reports {1}; lost now: {2}", report.NodeId, report, string.Join(", ", round.Agreement.Lost));
            if (round.Agreement.Lost.Except(before).Any())
                _setup.Reporter.Tell(new RunProgress.Note($"node {_nodeId}: node {report.NodeId} counts peer {string.Join(", ", report.Lost)} as lost"));
            StartAgreementTimers(started);
        }
        AdvanceAgreement(round);
    }

    private void AdvanceAgreement(PeerLossRound round)
    {
        var agreement = round.Agreement;
        if (agreement.Problem() is { } problem)
        {
            Fail(problem);
            return;
        }
        var gather = _buffer.Gather;
        bool gathering = round.InterruptedSteps && gather.IsOpen;
        if (agreement.OwnReportDue && agreement.MayReport(round.GraceOver, gathering ? gather.WaitingFor : null, _replica.Step))
        {
            bool holds = gathering && gather.Step == _replica.Step;
            var report = new MembershipReport(_plan.RunId, _nodeId, agreement.Lost.ToArray(), _undo.AppliedStep, _undo.Shares.Select(s => s.NodeId).ToArray(),
                                              _replica.Step, holds ? gather.Replies.Select(r => r.Participant).ToArray() : []);
            agreement.Reported(report);
            Publish(report);
        }
        if (agreement.TryDecide() is { } decision)
            ApplyDecision(round, decision);
    }

    private void AgreementTimeout(PeerLossRound round)
    {
        var silent = round.Agreement.MissingReports.Where(id => id != _nodeId).ToList();
        if (silent.Count > 0)
            Suspect(round, silent, $"sent no membership report within distsgd.step-timeout ({_settings.StepTimeout.TotalSeconds:0.#}s)", started: false);
        else
            AdvanceAgreement(round);
    }

    /// <summary>
    /// Carries out the survivors' decision (<see cref="DecisionPlan"/>): drops the lost peers, applies the contested step
    /// with the agreed shares (or redoes it, when this replica applied it with others), and goes on at the decision's next step.
    /// </summary>
    private void ApplyDecision(PeerLossRound round, MembershipDecision decision)
    {
        Timers.Cancel(nameof(AgreementTimedOut));
        Timers.Cancel(nameof(ReportGraceOver));
        var plan = DecisionPlan.For(decision, _nodeId, _undo.AppliedStep, _replica.Step, round.InterruptedSteps, _buffer.Gather.Step, _replica.StepInEpoch, _replica.StepsPerEpoch);
        if (plan.Problem is not null)
        {
            Fail(plan.Problem);
            return;
        }
        bool wasLead = _nodeId == _participants.Min;
        _participants.ExceptWith(decision.Lost);
        _deferredSuspects.ExceptWith(decision.Lost);
        _reshard = true;
        string text = decision.Describe();
        _log.Warning(text);
        if (_nodeId == _participants.Min)
            _setup.Reporter.Tell(new RunProgress.Note(text));
        _skippedSteps += plan.SkippedSteps;
        if ((plan.Redo || plan.ApplyOpen) && !ApplyAgreedShares(decision, plan))
            return;
        _loop.GoOnAt(plan.NextStep);
        if (!wasLead && _nodeId == _participants.Min)
        {
            _setup.Reporter.Tell(new RunProgress.Note($"node {_nodeId} leads the run now (lowest surviving node id): it evaluates and writes the results"));
            foreach (var earlier in _replica.Epochs)
                _setup.Reporter.Tell(new RunProgress.EpochCompleted(earlier));
        }
        if (plan.Then == AfterDecision.EndEpoch)
        {
            StartHashRound();
            return;
        }
        // This peer's latest hash again: the others dropped what it published before its report.
        if (_lastHash is not null)
            Publish(_lastHash);
        Resume(round.EpochEnd);
    }

    /// <summary>Applies the contested step with the agreed shares, first undoing it when this replica applied it with others.</summary>
    private bool ApplyAgreedShares(MembershipDecision decision, DecisionPlan plan)
    {
        if (plan.Redo)
        {
            _undo.Restore(_replica.Parameters, _replica.Optimizer);
            _replica.Totals.UndoLastStep();
        }
        var gather = _buffer.Gather;
        var shares = plan.Redo ? _undo.Shares.ToList() : gather.Replies.Cast<GradientShare>().ToList();
        gather.Begin(decision.Step, decision.Senders);
        foreach (var share in shares.Where(s => decision.Senders.Contains(s.NodeId)))
            gather.Offer(share);
        if (!gather.IsComplete)
        {
            Fail($"step {decision.Step}: the agreed shares of nodes {string.Join(", ", decision.Senders)} are not all held here");
            return false;
        }
        if (!_loop.Apply())
            return false;
        if (plan.ApplyOpen)
            _replica.Advance();   // a step of the epoch; the step number is the decision's (below)
        return true;
    }

    /// <summary>Goes back to what the agreement interrupted: the next step, the hash round, or the wait for a resync.</summary>
    private void Resume(object? epochEnd)
    {
        switch (epochEnd)
        {
            case HashWait wait:
                Become(() => Verifying(wait));
                Timers.StartSingleTimer(nameof(HashRoundTimedOut), new HashRoundTimedOut(_replica.Epoch), _settings.StepTimeout);
                TryCompleteHashRound(wait, timedOut: false);
                break;
            case ResyncWait wait:
                Become(() => Resyncing(wait));
                if (_resyncCheck.TakeHeld(_replica.Epoch, wait.Source) is { } held)
                    ApplyResync(wait, held);   // it came while the survivors agreed
                break;
            default:
                Become(Stepping);
                _loop.Begin();
                break;
        }
    }

    /// <summary>From the next epoch on, the survivors share the training set: shard = rank in the sorted surviving node ids.</summary>
    private void Reshard()
    {
        _reshard = false;
        _batches = ShardBatches.ForMember(_setup.Train, _nodeId, _participants, _plan.BatchSizePerWorker, _plan.Seed);
        _replica.StepsPerEpoch = ShardBatches.StepsPerEpoch(_setup.Train.Count, _participants.Count, _plan.BatchSizePerWorker);
        _log.Info("node {0}: epoch {1} re-sharded among {2} peers: {3} samples here, {4} steps", _nodeId, _replica.Epoch, _participants.Count,
                  _batches.ShardSize, _replica.StepsPerEpoch);
        if (_nodeId == _participants.Min)
            _setup.Reporter.Tell(new RunProgress.Note($"from epoch {_replica.Epoch} the training set is sharded among {_participants.Count} peers, {_replica.StepsPerEpoch} steps per epoch"));
    }

    private void Publish(object message) => _mediator.Tell(new Publish(_topic, message));
}
