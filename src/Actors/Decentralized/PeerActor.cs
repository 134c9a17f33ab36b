using System.Diagnostics;
using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Tools.PublishSubscribe;
using Akka.Event;
using DistSgd.Actors.Protocol;
using DistSgd.Actors.Steps;
using DistSgd.Actors.Transport;
using DistSgd.Numerics.Data;
using DistSgd.Numerics.Models;
using DistSgd.Numerics.Optim;
using DistSgd.Numerics.Tensors;
using DistSgd.Numerics.Training;

namespace DistSgd.Actors.Decentralized;

/// <summary>Everything a peer of a decentralized run starts from; local to its node.</summary>
/// <param name="PeerCount">Peers the start barrier waits for (this one included).</param>
/// <param name="InitialParameters">θ₀, initialised from the run's seed: the same on every node.</param>
/// <param name="Train">This node's copy of the training set; the peer computes on its shard only.</param>
/// <param name="Test">The held-out set the lead peer evaluates after every epoch, or null.</param>
/// <param name="Reporter">The local actor told about epochs and the end of the run.</param>
/// <param name="Threads">Matrix-kernel threads of the gradient computation.</param>
/// <param name="Mediator">The DistributedPubSub mediator to subscribe and publish through; null = this node's (tests put a probe here).</param>
/// <param name="Checkpoints">The checkpoint every peer resumes from, and where the lead peer writes checkpoints; or null.</param>
public sealed record PeerSetup(RunPlan Plan, int PeerCount, float[] InitialParameters, SgdOptions Optimizer,
                               TrainingOptions Training, Dataset Train, Dataset? Test, IActorRef Reporter,
                               int Threads = 1, int EvaluationThreads = 1, IActorRef? Mediator = null,
                               CheckpointSetup? Checkpoints = null);

/// <summary>
/// The seed's decentralized peer, one per node: holds a full replica (θ and optimizer state), computes the
/// gradient of its shard's batch, publishes it on the run's topic, gathers every participant's share of the
/// step, averages them in node-id order and updates its replica. No master: every peer runs the same steps
/// on the same numbers, so the replicas stay bit-identical, and a hash per epoch proves it.
/// </summary>
/// <remarks>
/// <para><b>Start barrier.</b> After its SubscribeAck a peer publishes <see cref="PeerReady"/> every
/// distsgd.ready-interval; every peer acknowledges each one it receives with a direct <see cref="PeerReadyAck"/>.
/// A peer starts when it has received PeerReady from all expected peers (their publications reach it) and an
/// acknowledgement from each of them (its publications reach them). Node ids are the peers' ranks by address,
/// and a node's id is its shard.</para>
/// <para><b>Steps.</b> A step waits for every participant's share. Shares of the next steps are held in a
/// <see cref="StepBuffer"/>; stale, foreign, duplicate, malformed ones are dropped and counted.</para>
/// <para><b>Peer loss.</b> A participant that becomes unreachable or is removed, whose data connection closes, or
/// that sends nothing within distsgd.step-timeout is suspected: the survivors stop stepping and agree, through
/// <see cref="MembershipReport"/>s, on who is left and on exactly which shares the contested step uses
/// (<see cref="MembershipAgreement"/>), redoing it where a replica applied other shares, so the replicas stay
/// bit-identical. From the next epoch the survivors re-shard the training set among themselves. A minority side
/// of a partition stops instead; a peer the others count as lost stops too.</para>
/// <para><b>Epoch end.</b> Every peer publishes a <see cref="ParameterHash"/> and waits for every participant's.
/// When they differ (a step that timed out on some peers only, a corrupted replica) the mismatch is logged as
/// an error and reported, and every replica whose hash differs from the agreed source's
/// (<see cref="ReplicaCheck.ChooseSource"/>) adopts that source's <see cref="ReplicaResync"/>. The stop decision
/// is the source's vote, so all peers stop at the same epoch. The lead peer (lowest node id still
/// participating) evaluates on the test set and reports the epoch and the run's result.</para>
/// </remarks>
public sealed class PeerActor : ReceiveActor, IWithTimers
{
    private sealed record PublishReady;
    private sealed record StartTimedOut;
    private sealed record StepTimedOut(long Step);
    private sealed record HashRoundTimedOut(int Epoch);
    private sealed record ResyncTimedOut(int Epoch);
    private sealed record AgreementTimedOut;
    private sealed record ReportGraceOver;

    /// <summary>
    /// How long a peer that lost someone waits for the other survivors' shares of its open step before it reports
    /// what it holds (they were sent before anything else; a share missing then is left out of that step everywhere).
    /// </summary>
    private static readonly TimeSpan ReportGrace = TimeSpan.FromSeconds(1);

    private enum Phase { Joining, Stepping, Verifying, AwaitingResync, Finished }

    private readonly PeerSetup _setup;
    private readonly RunPlan _plan;
    private readonly DistSgdSettings _settings;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly IActorRef _mediator;
    private readonly string _topic;
    private readonly string _selfAddress;
    private readonly float[] _parameters;
    private readonly float[] _average;
    private readonly SgdOptimizer _optimizer;
    private readonly Model _model;
    private readonly Model _evaluator;
    private readonly EarlyStopping _stopping;
    private readonly StepBuffer _buffer;
    private readonly float[] _features;
    private readonly float[] _targets;

    // The direct data plane (distsgd.transport = direct): shares travel over TCP, not the topic.
    private readonly DirectDataPlane? _direct;
    private readonly Dictionary<string, string> _endpointsByAddress = new(StringComparer.Ordinal);
    private readonly SortedDictionary<int, string> _peerEndpoints = new();
    /// <summary>Two arrays for this peer's own gradient: the last applied step's share stays intact while the next is computed.</summary>
    private readonly float[][] _ownGradients;
    private readonly StepCheckpoints _checkpoints;

    // Start barrier: whose PeerReady reached us, and who acknowledged ours.
    private readonly SortedDictionary<string, IActorRef> _readyFrom = new(StringComparer.Ordinal);
    private readonly HashSet<string> _ackedBy = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _nodeIds = new(StringComparer.Ordinal);
    private readonly SortedSet<int> _participants = new();
    private ProgressMeter? _meter;

    // Epoch-end verification: hashes and resyncs may arrive before this peer ends the epoch.
    private readonly Dictionary<int, SortedDictionary<int, ParameterHash>> _hashes = new();
    private readonly Dictionary<(int Epoch, int Source), ReplicaResync> _resyncs = new();
    private readonly ResyncCheck _resyncCheck = new();
    private int _resyncSource = -1;
    private readonly DropLog _drops;
    private readonly HashSet<int> _corruptAtEpoch = new();

    // Peer loss: the agreement in progress, and what redoing the last applied step needs.
    private MembershipAgreement? _agreement;
    private string _reportedFor = "";
    private bool _reportGraceOver;
    private readonly SortedSet<int> _deferredSuspects = new();
    private readonly float[] _before;
    private readonly float[] _beforeVelocity;
    private long _beforeOptimizerStep;
    private long _lastAppliedStep = -1;
    private readonly List<GradientShare> _lastApplied = new();
    private ParameterHash? _lastHash;
    private int _stepsPerEpoch;
    private long _skippedSteps;
    private bool _reshard;

    private readonly List<EpochMetrics> _epochs = new();
    private readonly Stopwatch _runClock = new();
    private Phase _phase = Phase.Joining;
    private ShardBatches? _batches;
    private int _nodeId = -1;
    /// <summary>Times a peer republishes its share when nothing at all arrived before the run fails.</summary>
    private const int MaxStepRetries = 2;

    private long _step;
    private int _stepRetries;
    private int _epoch = 1;
    private int _stepInEpoch;
    private long _stepStarted;
    private GradientShare? _ownShare;
    private EpochTotals _epochTotals = new();
    private byte[] _ownHash = [];
    private bool _ownVote;
    private bool _stopAfterResync;
    private long _droppedOther;

    public PeerActor(PeerSetup setup)
    {
        _setup = setup;
        _plan = setup.Plan;
        _settings = DistSgdSettings.Create(Context.System);
        _mediator = setup.Mediator ?? DistributedPubSub.Get(Context.System).Mediator;
        _topic = DecentralizedDeployment.Topic(_plan.RunId);
        _selfAddress = Cluster.Get(Context.System).SelfAddress.ToString();
        _parameters = (float[])setup.InitialParameters.Clone();
        _average = new float[_parameters.Length];
        _optimizer = new SgdOptimizer(setup.Optimizer, _parameters.Length);
        _model = new Model(_plan.Spec, MatrixKernels.Create(setup.Threads));
        _evaluator = new Model(_plan.Spec, MatrixKernels.Create(setup.EvaluationThreads));
        _stopping = new EarlyStopping(setup.Training.Patience, setup.Training.MinDelta);
        _buffer = new StepBuffer(_plan.RunId, _parameters.Length);
        _checkpoints = new StepCheckpoints(setup.Checkpoints, _parameters, _optimizer, _stopping, _epochs);
        if (_checkpoints.Resume() is { } resumed)
            (_step, _epoch, _stepInEpoch, _epochTotals, _buffer.FirstStep) = (resumed.Step, resumed.Epoch, resumed.StepInEpoch, resumed.Totals, resumed.Step);
        _drops = new DropLog(text => _log.Warning("{0}", text));
        _features = new float[_plan.BatchSizePerWorker * _plan.Spec.InputCount];
        _targets = new float[_plan.BatchSizePerWorker];
        _ownGradients = _settings.Transport == PayloadTransport.Direct ? [new float[_parameters.Length], new float[_parameters.Length]] : [];
        _before = new float[_parameters.Length];
        _beforeVelocity = new float[_optimizer.State.Velocity.Length];
        _stepsPerEpoch = _plan.StepsPerEpoch;
        if (_settings.Transport == PayloadTransport.Direct)
        {
            var self = Self;
            _direct = new DirectDataPlane(DistSgdSettings.DataPlane(Context.System, _plan.RunId, _parameters.Length, FrameKind.GradientShare, setup.PeerCount), m => self.Tell(m));
        }

        Receive<SubscribeAck>(HandleSubscribed);
        Receive<PublishReady>(_ => PublishReadyIfJoining());
        Receive<PeerReady>(HandleReady);
        Receive<PeerReadyAck>(HandleReadyAck);
        Receive<StartTimedOut>(_ => HandleStartTimeout());
        Receive<GradientShare>(HandleShare);
        Receive<StepTimedOut>(HandleStepTimeout);
        Receive<ParameterHash>(HandleHash);
        Receive<HashRoundTimedOut>(HandleHashRoundTimeout);
        Receive<ReplicaResync>(HandleResync);
        Receive<ResyncTimedOut>(m => HandleResyncTimeout(m.Epoch));
        Receive<DataConnectionLost>(HandleConnectionLost);
        Receive<MembershipReport>(HandleReport);
        Receive<AgreementTimedOut>(_ => HandleAgreementTimeout());
        Receive<ReportGraceOver>(_ => HandleReportGraceOver());
        Receive<ClusterEvent.UnreachableMember>(m => ForgetPeerAt(m.Member.Address, "unreachable"));
        Receive<ClusterEvent.MemberRemoved>(m => ForgetPeerAt(m.Member.Address, "removed"));
        Receive<ClusterEvent.IReachabilityEvent>(_ => { });
        Receive<PeerQueries.GetReplica>(_ => Sender.Tell(new PeerQueries.Replica(
            _nodeId, _optimizer.State.Step, (float[])_parameters.Clone(), _buffer.DroppedTotal + _resyncCheck.DroppedTotal + _droppedOther)));
        Receive<PeerQueries.CorruptReplicaAtEpochEnd>(m => _corruptAtEpoch.Add(m.Epoch));
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(PeerSetup setup) =>
        Akka.Actor.Props.Create(() => new PeerActor(setup)).WithDispatcher(DistSgdSettings.ComputeDispatcher);

    protected override void PreStart()
    {
        Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents,
                                              typeof(ClusterEvent.IReachabilityEvent), typeof(ClusterEvent.MemberRemoved));
        string? problem = DataMismatch();
        if (problem is not null)
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
        _phase = Phase.Finished;   // a failure may have left a step half applied: no last checkpoint of this state
        base.PreRestart(reason, message);
    }

    protected override void PostStop()
    {
        // Stopped mid-step (SIGTERM, Ctrl+C): the replica changes only when a step finishes, so the lead keeps every step taken.
        if (_phase == Phase.Stepping && _nodeId == _participants.Min)
            _checkpoints.Now(_step, _epoch, _stepInEpoch, _epochTotals);
        Cluster.Get(Context.System).Unsubscribe(Self);
        _direct?.Dispose();
    }

    // ---- start barrier ------------------------------------------------------------------------------

    private void HandleSubscribed(SubscribeAck message)
    {
        if (_phase != Phase.Joining || message.Subscribe.Topic != _topic)
            return;
        PublishReadyIfJoining();
        Timers.StartPeriodicTimer(nameof(PublishReady), new PublishReady(), _settings.ReadyInterval);
    }

    private void PublishReadyIfJoining()
    {
        if (_phase == Phase.Joining)
            _mediator.Tell(new Publish(_topic, new PeerReady(_plan, _selfAddress, Self, _direct?.Endpoint ?? "")));
    }

    private void HandleReady(PeerReady message)
    {
        if (message.Plan.RunId != _plan.RunId)
        {
            _droppedOther++;
            return;
        }
        if (message.Plan != _plan)
        {
            // Straight to the other peer, whose subscription may not have reached this node yet: it fails too, naming
            // the same difference, instead of waiting for distsgd.start-timeout.
            message.Peer.Tell(new PeerReady(_plan, _selfAddress, Self));
            Fail($"the peer at {message.NodeAddress} runs a different run configuration: " +
                 string.Join("; ", _plan.Differences(message.Plan, "here", $"at {message.NodeAddress}")));
            return;
        }
        if ((_direct is null) != (message.DataEndpoint.Length == 0))
        {
            Fail($"the peer at {message.NodeAddress} uses the {(message.DataEndpoint.Length == 0 ? "akka" : "direct")} transport, this peer " +
                 $"the {(_direct is null ? "akka" : "direct")} one (distsgd.transport must be the same on every peer)");
            return;
        }
        _endpointsByAddress[message.NodeAddress] = message.DataEndpoint;
        // Acknowledged in every phase: a peer still at the barrier needs to know its publications reach us.
        message.Peer.Tell(new PeerReadyAck(_plan.RunId, _selfAddress));
        if (_phase != Phase.Joining || !_readyFrom.TryAdd(message.NodeAddress, message.Peer))
            return;
        _log.Info("peer {0} ready ({1}/{2} seen)", message.NodeAddress, _readyFrom.Count, _setup.PeerCount);
        TryPassBarrier();
    }

    private void HandleReadyAck(PeerReadyAck message)
    {
        if (message.RunId != _plan.RunId || _phase != Phase.Joining)
            return;
        if (_ackedBy.Add(message.NodeAddress))
            TryPassBarrier();
    }

    private void TryPassBarrier()
    {
        if (_readyFrom.Count < _setup.PeerCount || !_readyFrom.ContainsKey(_selfAddress) || !_ackedBy.IsSupersetOf(_readyFrom.Keys))
            return;
        if (_readyFrom.Count > _setup.PeerCount)
        {
            Fail($"{_readyFrom.Count} peers announced run {_plan.RunId}, {_setup.PeerCount} expected: {string.Join(", ", _readyFrom.Keys)}");
            return;
        }
        Timers.Cancel(nameof(PublishReady));
        Timers.Cancel(nameof(StartTimedOut));
        // Node id = rank of the address (ordinal): every peer computes the same ids, and the id is the shard.
        foreach (string address in _readyFrom.Keys)
        {
            _nodeIds[address] = _nodeIds.Count;
            _participants.Add(_nodeIds[address]);
            if (_direct is not null)
                _peerEndpoints[_nodeIds[address]] = _endpointsByAddress[address];
        }
        _nodeId = _nodeIds[_selfAddress];
        _batches = new ShardBatches(_setup.Train, _nodeId, _setup.PeerCount, _plan.BatchSizePerWorker, _plan.Seed);
        _log.Info("peer {0} of {1} at {2}: start barrier passed, shard of {3} samples", _nodeId, _setup.PeerCount, _selfAddress, _batches.ShardSize);
        if (_nodeId == 0)
        {
            _setup.Reporter.Tell(new RunProgress.Note($"run {_plan.RunId} started with {_setup.PeerCount} peers"));
            // The lead peer (the lowest id) reports the live progress, as the master does.
            _meter = new ProgressMeter(_plan.StepsPerEpoch);
            _meter.Start(_nodeIds.Select(n => (n.Value, "peer", n.Key)));
        }
        _phase = Phase.Stepping;
        _runClock.Start();
        BeginStep();
    }

    private void HandleStartTimeout()
    {
        if (_phase != Phase.Joining)
            return;
        var missingReady = _readyFrom.Count < _setup.PeerCount ? $"PeerReady from {_readyFrom.Count} of {_setup.PeerCount} peers" : null;
        var unacked = _readyFrom.Keys.Where(a => !_ackedBy.Contains(a)).ToList();
        Fail($"the start barrier did not pass within {_settings.StartTimeout.TotalSeconds:0}s (distsgd.start-timeout): " +
             (missingReady ?? $"all {_setup.PeerCount} peers ready") +
             (unacked.Count > 0 ? $"; no acknowledgement from {string.Join(", ", unacked)}" : ""));
    }

    // ---- synchronous steps --------------------------------------------------------------------------

    private void BeginStep()
    {
        // The lead peer (lowest node id) writes the checkpoints: every replica is the same.
        if (_nodeId == _participants.Min && _checkpoints.AtStepBoundary(_step, _epoch, _stepInEpoch, _epochTotals) is { } checkpoint)
            _setup.Reporter.Tell(new RunProgress.Note(checkpoint.Describe()));
        _buffer.Begin(_step, _participants);
        _stepStarted = Stopwatch.GetTimestamp();
        _ownShare = ComputeShare();
        if (_direct is null)
        {
            Publish(_ownShare);
            _epochTotals.BytesSent += DistSgdSerializer.PayloadBytes(_ownShare) * (_participants.Count - 1);
        }
        else
        {
            SendShareDirect(_ownShare);
            _buffer.Offer(_ownShare);   // this peer's own share goes straight into its step buffer
        }
        Timers.StartSingleTimer(nameof(StepTimedOut), new StepTimedOut(_step), _settings.StepTimeout);
        if (_deferredSuspects.Count > 0)
        {
            // Lost while this peer compared hashes: now that a step waits for them, the survivors agree without them.
            var suspects = _deferredSuspects.ToList();
            _deferredSuspects.Clear();
            long begun = _step;
            Suspect(suspects, "was lost at the end of the last epoch");
            if (_agreement is not null || _step != begun)
                return;   // agreeing, or already decided and begun again
        }
        if (_buffer.Gather.IsComplete)
            FinishStep();
    }

    private GradientShare ComputeShare()
    {
        long started = Stopwatch.GetTimestamp();
        int rows = _batches!.Gather(_epoch, _stepInEpoch, _features, _targets);
        if (rows == 0)
            return new GradientShare(_plan.RunId, _step, _nodeId, 0, 0, 0, []);
        // Over the topic, a fresh array per share: the mediator hands it to remoting, which serializes it later on
        // another thread. Over the data plane, one reused array: the sends copy it into the kernel before they
        // return, and this peer's step buffer lets go of it when the step finishes, before the next share is computed.
        var gradient = _direct is null ? new float[_parameters.Length] : FreeOwnGradient();
        float loss = _model.LossAndGradient(_parameters, _features.AsSpan(0, rows * _plan.Spec.InputCount),
                                            _targets.AsSpan(0, rows), rows, gradient);
        return new GradientShare(_plan.RunId, _step, _nodeId, rows, (double)loss * rows,
                                 Stopwatch.GetElapsedTime(started).TotalSeconds, gradient);
    }

    /// <summary>
    /// This peer's share to every other participant's data endpoint, in node-id order. A peer that cannot be
    /// reached is not forgotten here: its own reader sees the connection close and stops waiting for this one.
    /// </summary>
    private void SendShareDirect(GradientShare share)
    {
        var header = new FrameHeader(FrameKind.GradientShare, 0, share.Step, share.NodeId, _epoch, _stepInEpoch,
                                     share.SampleCount, share.LossSum, share.ComputeSeconds, 0);
        foreach (var (nodeId, endpoint) in _peerEndpoints)
        {
            if (nodeId == _nodeId || !_participants.Contains(nodeId))
                continue;
            if (_direct!.Send(endpoint, header, share.Gradient))
                _epochTotals.BytesSent += FrameHeader.Size + (long)share.Gradient.Length * sizeof(float);
            else
                _log.Warning("step {0}: could not send this peer's share to peer {1} at {2}", share.Step, nodeId, endpoint);
        }
    }

    /// <summary>A closed data connection while steps run is a lost peer, like an unreachable member, and detected sooner.</summary>
    private void HandleConnectionLost(DataConnectionLost message)
    {
        if (_phase != Phase.Stepping)
            return;
        _log.Warning("data connection from peer {0} closed ({1})", message.Sender, message.Reason);
        Suspect([message.Sender], $"closed its data connection ({message.Reason})");
    }

    private void HandleShare(GradientShare share)
    {
        if (_phase == Phase.Finished)
            return;
        if (share.NodeId != _nodeId)
            _epochTotals.BytesReceived += DistSgdSerializer.PayloadBytes(share);
        var outcome = _buffer.Offer(share);
        if (outcome is not (GatherOutcome.Accepted or GatherOutcome.Buffered))
            _drops.Record(outcome, $"share of node {share.NodeId} for step {share.Step} (run {share.RunId}, {share.Gradient.Length} values)");
        if (_agreement is not null)
            AdvanceAgreement();   // this share may be the last one its report waited for
        else if (_phase == Phase.Stepping && _buffer.Gather.IsComplete)
            FinishStep();
    }

    private void HandleStepTimeout(StepTimedOut message)
    {
        if (_phase != Phase.Stepping || message.Step != _step || !_buffer.Gather.IsOpen || _agreement is not null)
            return;
        var missing = string.Join(", ", _buffer.Gather.WaitingFor);
        if (_buffer.Gather.Replies.Count == 0 && _buffer.Gather.NonFinite.Count == 0)
        {
            if (++_stepRetries > MaxStepRetries)
            {
                Fail($"no share of step {_step} arrived within {MaxStepRetries + 1} × distsgd.step-timeout ({_settings.StepTimeout.TotalSeconds:0}s), not even this peer's own");
                return;
            }
            _log.Warning("step {0}: no share arrived within {1}, not even this peer's own; publishing it again", _step, _settings.StepTimeout);
            if (_direct is null)
                Publish(_ownShare!);
            else
                SendShareDirect(_ownShare!);
            Timers.StartSingleTimer(nameof(StepTimedOut), new StepTimedOut(_step), _settings.StepTimeout);
            return;
        }
        _log.Warning("step {0}: peers {1} sent no share within {2}", _step, missing, _settings.StepTimeout);
        Suspect(_buffer.Gather.WaitingFor.ToList(), $"sent no share of step {_step} within distsgd.step-timeout ({_settings.StepTimeout.TotalSeconds:0.#}s)");
    }

    private void FinishStep()
    {
        if (!ApplyGathered())
            return;
        _step++;
        _stepInEpoch++;
        _stepRetries = 0;
        if (_stepInEpoch == _stepsPerEpoch)
            EndEpoch();
        else
            BeginStep();
    }

    /// <summary>Applies the gathered shares to the replica; false when the run failed (divergence).</summary>
    private bool ApplyGathered()
    {
        Timers.Cancel(nameof(StepTimedOut));
        var gather = _buffer.Gather;
        gather.Close();
        double wall = Stopwatch.GetElapsedTime(_stepStarted).TotalSeconds;
        // What redoing this step after a peer loss needs: θ and the optimizer state before it, and the shares it used.
        _parameters.CopyTo(_before, 0);
        _optimizer.State.Velocity.CopyTo(_beforeVelocity, 0);
        _beforeOptimizerStep = _optimizer.State.Step;
        var outcome = StepUpdate.Apply(gather, _average, _optimizer, _parameters, _epochTotals, wall, _epoch, _step);
        if (_direct is not null)
        {
            // The previous step's shares from other peers can no longer be redone: their arrays take the next frames.
            foreach (var old in _lastApplied)
                if (!IsOwnGradient(old.Gradient) && !gather.Replies.Any(r => ReferenceEquals(((GradientShare)r).Gradient, old.Gradient)))
                    _direct.Return(old.Gradient);
        }
        _lastApplied.Clear();
        foreach (var share in gather.Replies)
            _lastApplied.Add((GradientShare)share);
        _lastAppliedStep = gather.Step;
        if (outcome.Divergence is not null)
        {
            Fail(outcome.Divergence);
            return false;
        }
        if (_meter?.StepDone(gather.Replies, wall, _epochTotals, _epoch, _stepInEpoch + 1) is { } progress)
            _setup.Reporter.Tell(progress);
        return true;
    }

    private bool IsOwnGradient(float[] gradient) =>
        _ownGradients.Length > 0 && (ReferenceEquals(gradient, _ownGradients[0]) || ReferenceEquals(gradient, _ownGradients[1]));

    /// <summary>The own-gradient array the last applied step does not use (that one may still be redone).</summary>
    private float[] FreeOwnGradient() =>
        _lastApplied.Any(s => ReferenceEquals(s.Gradient, _ownGradients[0])) ? _ownGradients[1] : _ownGradients[0];

    // ---- epoch end: hash round, repair, stop rule ---------------------------------------------------

    private void EndEpoch()
    {
        if (_corruptAtEpoch.Remove(_epoch))
        {
            _parameters[0] += 1f;
            _log.Warning("test hook: replica of node {0} corrupted at the end of epoch {1}", _nodeId, _epoch);
        }
        // Observed when the epoch is over (ProceedAfterEpoch): an epoch end redone after a peer loss votes again.
        _ownVote = _stopping.WouldStop(_epochTotals.TrainLoss) || _epoch >= _plan.Epochs;
        _ownHash = ReplicaCheck.Hash(_parameters, _optimizer.State);
        _phase = Phase.Verifying;
        _lastHash = new ParameterHash(_plan.RunId, _epoch, _nodeId, _ownHash, _ownVote);
        Publish(_lastHash);
        Timers.StartSingleTimer(nameof(HashRoundTimedOut), new HashRoundTimedOut(_epoch), _settings.StepTimeout);
        TryCompleteHashRound(timedOut: false);
    }

    private void HandleHash(ParameterHash message)
    {
        // The topic hands this peer its own publication too, maybe after it has completed that round without it
        // (its own hash is always counted): not a message to judge, let alone a drop.
        if (message.RunId == _plan.RunId && message.NodeId == _nodeId && message.Epoch < _epoch)
            return;
        if (message.RunId != _plan.RunId || message.Epoch < _epoch || _phase == Phase.Finished)
        {
            _droppedOther++;
            return;
        }
        if (!_hashes.TryGetValue(message.Epoch, out var round))
            _hashes[message.Epoch] = round = new SortedDictionary<int, ParameterHash>();
        round[message.NodeId] = message;   // the latest wins: a peer that redid its epoch end publishes again
        TryCompleteHashRound(timedOut: false);
    }

    private void HandleHashRoundTimeout(HashRoundTimedOut message)
    {
        if (_phase == Phase.Verifying && message.Epoch == _epoch)
            TryCompleteHashRound(timedOut: true);
    }

    private void TryCompleteHashRound(bool timedOut)
    {
        if (_phase != Phase.Verifying || _agreement is not null)
            return;
        var round = _hashes.GetValueOrDefault(_epoch) ?? new SortedDictionary<int, ParameterHash>();
        round[_nodeId] = new ParameterHash(_plan.RunId, _epoch, _nodeId, _ownHash, _ownVote);
        var missing = _participants.Where(p => !round.ContainsKey(p)).ToList();
        if (missing.Count > 0)
        {
            if (timedOut)
                Suspect(missing, $"sent no parameter hash for epoch {_epoch} within distsgd.step-timeout ({_settings.StepTimeout.TotalSeconds:0.#}s)");
            return;
        }
        Timers.Cancel(nameof(HashRoundTimedOut));
        var hashes = round.Where(h => _participants.Contains(h.Key)).ToDictionary(h => h.Key, h => h.Value);
        foreach (int epoch in _hashes.Keys.Where(e => e <= _epoch).ToList())
            _hashes.Remove(epoch);

        int source = ReplicaCheck.ChooseSource(hashes.ToDictionary(h => h.Key, h => h.Value.Hash));
        var agreed = hashes[source];
        if (hashes.Values.All(h => h.Hash.AsSpan().SequenceEqual(agreed.Hash)))
        {
            ProceedAfterEpoch(agreed.VotesToStop);
            return;
        }

        string report = $"REPLICA MISMATCH after epoch {_epoch}: parameter hashes " +
                        string.Join(", ", hashes.Select(h => $"node {h.Key} {ReplicaCheck.Short(h.Value.Hash)}")) +
                        $"; re-synchronising every differing replica from node {source}";
        _log.Error(report);
        if (_nodeId == _participants.Min)
            _setup.Reporter.Tell(new RunProgress.Note(report));
        if (source == _nodeId)
        {
            var resync = new ReplicaResync(_plan.RunId, _epoch, _nodeId, _ownHash, _optimizer.State.Step,
                                           (float[])_parameters.Clone(), (float[])_optimizer.State.Velocity.Clone());
            Publish(resync);
            _epochTotals.BytesSent += DistSgdSerializer.PayloadBytes(resync) * (_participants.Count - 1);
        }
        if (_ownHash.AsSpan().SequenceEqual(agreed.Hash))
        {
            ProceedAfterEpoch(agreed.VotesToStop);
            return;
        }
        _phase = Phase.AwaitingResync;
        _resyncSource = source;
        _stopAfterResync = agreed.VotesToStop;
        Timers.StartSingleTimer(nameof(ResyncTimedOut), new ResyncTimedOut(_epoch), _settings.StepTimeout);
        if (_resyncs.Remove((_epoch, source), out var early))
            ApplyResync(early);
    }

    private void HandleResync(ReplicaResync message)
    {
        // Its own publication coming back, one after the run, or one for an epoch this peer agreed on and left: normal.
        if (message.SourceNodeId == _nodeId || _phase == Phase.Finished || (message.RunId == _plan.RunId && message.Epoch < _epoch))
            return;
        if (message.RunId != _plan.RunId || message.Epoch > _epoch + 1 || !_participants.Contains(message.SourceNodeId))
        {
            var reason = message.RunId != _plan.RunId ? GatherOutcome.ForeignRun
                       : message.Epoch > _epoch + 1 ? GatherOutcome.FutureStep : GatherOutcome.NotParticipant;
            _drops.Record(_resyncCheck.Refuse(reason), $"replica resync from node {message.SourceNodeId} for epoch {message.Epoch} (run {message.RunId})");
            return;
        }
        _epochTotals.BytesReceived += DistSgdSerializer.PayloadBytes(message);
        if (_phase == Phase.AwaitingResync && message.Epoch == _epoch)
            ApplyResync(message);
        else
            _resyncs[(message.Epoch, message.SourceNodeId)] = message;   // the hash round of that epoch has not finished here yet
    }

    private void ApplyResync(ReplicaResync message)
    {
        var outcome = _resyncCheck.Judge(message, _plan.RunId, _resyncSource, _parameters.Length, _optimizer.State.Velocity.Length);
        if (outcome != GatherOutcome.Accepted)
        {
            // Not applied; a good one may still come, else the resync timeout fails the run.
            _drops.Record(outcome, $"replica resync from node {message.SourceNodeId} after epoch {message.Epoch}");
            return;
        }
        message.Parameters.CopyTo(_parameters, 0);
        _optimizer.Restore(new SgdState(message.OptimizerStep, message.Velocity));
        _ownHash = ReplicaCheck.Hash(_parameters, _optimizer.State);
        if (!_ownHash.AsSpan().SequenceEqual(message.Hash))
        {
            Fail($"the replica copied from node {message.SourceNodeId} after epoch {message.Epoch} does not match its hash");
            return;
        }
        Timers.Cancel(nameof(ResyncTimedOut));
        _log.Warning("node {0} re-synchronised its replica from node {1} after epoch {2}", _nodeId, message.SourceNodeId, message.Epoch);
        _setup.Reporter.Tell(new RunProgress.Note($"node {_nodeId} re-synchronised its replica from node {message.SourceNodeId} after epoch {message.Epoch}"));
        ProceedAfterEpoch(_stopAfterResync);
    }

    private void HandleResyncTimeout(int epoch)
    {
        if (_phase == Phase.AwaitingResync && epoch == _epoch)
            Fail($"replica of node {_nodeId} differs from the others after epoch {epoch} and no resynchronisation arrived within {_settings.StepTimeout.TotalSeconds:0}s (distsgd.step-timeout)");
    }

    private void ProceedAfterEpoch(bool stop)
    {
        bool lead = _nodeId == _participants.Min;
        var test = lead ? _setup.Test : null;
        var score = test is not null ? _evaluator.Evaluate(_parameters, test.Features, test.Targets, test.Count) : (Score?)null;
        var metrics = _epochTotals.ToMetrics(_epoch, _step - _skippedSteps, score, test is { IsClassification: true },
                                             _buffer.DroppedTotal + _resyncCheck.DroppedTotal + _droppedOther + (_direct?.BadFrames ?? 0),
                                             DroppedMessages.ByKind(_buffer.Dropped.Concat(_resyncCheck.Dropped), _direct?.BadFrames ?? 0, _droppedOther));
        _epochs.Add(metrics);
        if (lead)
            _setup.Reporter.Tell(new RunProgress.EpochCompleted(metrics));
        _stopping.Observe(_epochTotals.TrainLoss);
        _epochTotals = new EpochTotals();
        foreach (var key in _resyncs.Keys.Where(k => k.Epoch <= _epoch).ToList())
            _resyncs.Remove(key);

        if (stop)
        {
            Finish(_epoch >= _plan.Epochs ? StopReason.EpochLimit : StopReason.LossPlateau, lead);
            return;
        }
        _epoch++;
        _stepInEpoch = 0;
        if (_reshard)
            Reshard();
        _phase = Phase.Stepping;
        BeginStep();
    }

    private void Finish(StopReason reason, bool lead)
    {
        _phase = Phase.Finished;
        Timers.CancelAll();
        _direct?.Dispose();
        _mediator.Tell(new Unsubscribe(_topic, Self));
        _log.Info("peer {0} finished run {1} after {2} epochs ({3}); replica hash {4}", _nodeId, _plan.RunId, _epochs.Count, reason, ReplicaCheck.Short(_ownHash));
        _setup.Reporter.Tell(new PeerFinished(_nodeId, (float[])_parameters.Clone(), _ownHash));
        if (lead)
            _setup.Reporter.Tell(new RunProgress.RunCompleted((float[])_parameters.Clone(),
                new TrainingResult(_epochs.ToList(), reason, _runClock.Elapsed.TotalSeconds)));
    }

    private void Fail(string reason)
    {
        if (_phase == Phase.Finished)
            return;
        _phase = Phase.Finished;
        Timers.CancelAll();
        _direct?.Dispose();
        _log.Error("run {0} failed on peer {1}: {2}", _plan.RunId, _nodeId, reason);
        _setup.Reporter.Tell(new RunProgress.RunFailed(reason));
    }

    // ---- peer loss: the survivors agree on the membership and on the contested step ---------------------

    /// <summary>Counts <paramref name="nodeIds"/> as lost and starts (or widens) the agreement on the survivors.</summary>
    private void Suspect(IReadOnlyCollection<int> nodeIds, string why)
    {
        if (_phase is Phase.Joining or Phase.Finished)
            return;
        var suspects = nodeIds.Where(id => id != _nodeId && _participants.Contains(id)).ToList();
        if (suspects.Count == 0)
            return;
        bool started = _agreement is null;
        _agreement ??= new MembershipAgreement(_participants, _nodeId);
        if (!_agreement.Suspect(suspects))
            return;
        _log.Warning("peer {0} {1}: agreeing with the others on the survivors (lost so far: {2})",
                     string.Join(", ", suspects), why, string.Join(", ", _agreement.Lost));
        _setup.Reporter.Tell(new RunProgress.Note($"node {_nodeId}: peer {string.Join(", ", suspects)} {why}"));
        StartAgreementTimers(started);
        AdvanceAgreement();
    }

    private void StartAgreementTimers(bool started)
    {
        if (started)
        {
            _reportGraceOver = false;
            Timers.StartSingleTimer(nameof(ReportGraceOver), new ReportGraceOver(), ReportGrace);
        }
        // Every widening gives the survivors still to report a whole timeout.
        Timers.StartSingleTimer(nameof(AgreementTimedOut), new AgreementTimedOut(), _settings.StepTimeout);
    }

    private void HandleReport(MembershipReport report)
    {
        if (report.RunId == _plan.RunId && report.NodeId == _nodeId && _phase == Phase.Finished)
            return;   // its own report, echoed by the topic after this peer finished
        if (report.RunId != _plan.RunId || _phase is Phase.Joining or Phase.Finished || !_participants.Contains(report.NodeId))
        {
            _droppedOther++;
            return;
        }
        if (report.NodeId == _nodeId)
            return;   // this peer's own, offered when it was published
        // A hash that peer published before this report may be redone after the agreement; it publishes its latest
        // hash again once it has decided (after this report, so that copy arrives after it).
        foreach (var round in _hashes.Values)
            round.Remove(report.NodeId);
        bool started = _agreement is null;
        if (started && !report.Lost.Any(_participants.Contains))
            return;   // an agreement this peer has applied already
        _agreement ??= new MembershipAgreement(_participants, _nodeId);
        var before = _agreement.Lost.ToList();
        if (_agreement.Offer(report) || started)
        {
            _log.Warning("node {0} reports {1}; lost now: {2}", report.NodeId, report, string.Join(", ", _agreement.Lost));
            if (_agreement.Lost.Except(before).Any())
                _setup.Reporter.Tell(new RunProgress.Note($"node {_nodeId}: node {report.NodeId} counts peer {string.Join(", ", report.Lost)} as lost"));
            StartAgreementTimers(started);
        }
        AdvanceAgreement();
    }

    private void AdvanceAgreement()
    {
        var agreement = _agreement!;
        if (agreement.SelfExcluded)
        {
            Fail($"the other peers count this peer (node {_nodeId}) as lost (unreachable, or silent past distsgd.step-timeout) " +
                 "and go on without it; it stops here");
            return;
        }
        if (!agreement.HasQuorum)
        {
            Fail($"this peer reaches only {agreement.Survivors.Count()} of the run's {agreement.Participants.Count} peers " +
                 $"(nodes {string.Join(", ", agreement.Survivors)}; lost {string.Join(", ", agreement.Lost)}): on the minority side " +
                 "of a partition it stops, so that only the majority trains on and writes the results");
            return;
        }
        string key = string.Join(",", agreement.Lost);
        if (_reportedFor != key && ReadyToReport(agreement))
        {
            _reportedFor = key;
            var report = OwnReport(agreement.Lost);
            agreement.Offer(report);
            Publish(report);
        }
        if (agreement.TryDecide() is { } decision)
            ApplyDecision(decision);
    }

    /// <summary>
    /// Reports at once, except while the open step still waits for the share of a survivor that has sent it (for at
    /// most <see cref="ReportGrace"/>): one that has not reported yet, or reported this step open or a later one. A
    /// survivor that reported an earlier open step never sends one for this step before the agreement.
    /// </summary>
    private bool ReadyToReport(MembershipAgreement agreement) =>
        _reportGraceOver || _phase != Phase.Stepping || !_buffer.Gather.IsOpen
        || !agreement.Survivors.Any(s => _buffer.Gather.WaitingFor.Contains(s) && !(agreement.ReportOf(s)?.OpenStep < _step));

    private MembershipReport OwnReport(IEnumerable<int> lost)
    {
        var gather = _buffer.Gather;
        bool gathering = _phase == Phase.Stepping && gather.IsOpen && gather.Step == _step;
        return new MembershipReport(_plan.RunId, _nodeId, lost.ToArray(), _lastAppliedStep, _lastApplied.Select(s => s.NodeId).ToArray(),
                                    _step, gathering ? gather.Replies.Select(r => r.Participant).ToArray() : []);
    }

    private void HandleReportGraceOver()
    {
        _reportGraceOver = true;
        if (_agreement is not null)
            AdvanceAgreement();
    }

    private void HandleAgreementTimeout()
    {
        if (_agreement is null || _phase == Phase.Finished)
            return;
        var silent = _agreement.MissingReports.Where(id => id != _nodeId).ToList();
        if (silent.Count > 0)
            Suspect(silent, $"sent no membership report within distsgd.step-timeout ({_settings.StepTimeout.TotalSeconds:0.#}s)");
        else
            AdvanceAgreement();
    }

    /// <summary>
    /// Applies the survivors' decision: drops the lost peers, applies the contested step with the agreed shares (or
    /// redoes it, when this replica applied it with others), and goes on at the decision's next step number.
    /// </summary>
    private void ApplyDecision(MembershipDecision decision)
    {
        Timers.Cancel(nameof(AgreementTimedOut));
        Timers.Cancel(nameof(ReportGraceOver));
        _agreement = null;
        _reportedFor = "";
        if (decision.Problem is not null)
        {
            Fail(decision.Problem);
            return;
        }
        bool wasLead = _nodeId == _participants.Min;
        _participants.ExceptWith(decision.Lost);
        _deferredSuspects.ExceptWith(decision.Lost);
        _reshard = true;
        bool redo = decision.RolledBack.Contains(_nodeId);
        bool open = _lastAppliedStep != decision.Step;
        string text = $"peers {string.Join(", ", decision.Lost)} lost: {decision.Survivors.Count} peers go on " +
                      $"(nodes {string.Join(", ", decision.Survivors)}); step {decision.Step} uses the shares of nodes " +
                      $"{string.Join(", ", decision.Senders)}" + (decision.RolledBack.Count > 0 ? $", redone by nodes {string.Join(", ", decision.RolledBack)}" : "");
        _log.Warning(text);
        if (_nodeId == _participants.Min)
            _setup.Reporter.Tell(new RunProgress.Note(text));

        _skippedSteps += decision.NextStep - (decision.Step + 1);
        if (redo || open)
        {
            if (open && (_phase != Phase.Stepping || _buffer.Gather.Step != decision.Step))
            {
                Fail($"the survivors agreed on step {decision.Step}, but this peer applied step {_lastAppliedStep} and has step {_step} open");
                return;
            }
            if (redo)
            {
                _before.CopyTo(_parameters, 0);
                _optimizer.Restore(new SgdState(_beforeOptimizerStep, _beforeVelocity));
                _epochTotals.UndoLastStep();
            }
            var shares = redo ? _lastApplied.ToList() : _buffer.Gather.Replies.Cast<GradientShare>().ToList();
            var gather = _buffer.Gather;
            gather.Begin(decision.Step, decision.Senders);
            foreach (var share in shares.Where(s => decision.Senders.Contains(s.NodeId)))
                gather.Offer(share);
            if (!gather.IsComplete)
            {
                Fail($"step {decision.Step}: the agreed shares of nodes {string.Join(", ", decision.Senders)} are not all held here");
                return;
            }
            if (!ApplyGathered())
                return;
            if (open)
                _stepInEpoch++;
        }
        _step = decision.NextStep;
        _stepRetries = 0;
        if (!wasLead && _nodeId == _participants.Min)
        {
            _setup.Reporter.Tell(new RunProgress.Note($"node {_nodeId} leads the run now (lowest surviving node id): it evaluates and writes the results"));
            foreach (var earlier in _epochs)
                _setup.Reporter.Tell(new RunProgress.EpochCompleted(earlier));
        }

        if ((_phase == Phase.Stepping && _stepInEpoch == _stepsPerEpoch) || (redo && _phase != Phase.Stepping))
        {
            EndEpoch();
            return;
        }
        // This peer's latest hash again: the others dropped what it published before its report.
        if (_lastHash is not null)
            Publish(_lastHash);
        if (_phase == Phase.Stepping)
        {
            BeginStep();
        }
        else if (_phase == Phase.Verifying)
        {
            Timers.StartSingleTimer(nameof(HashRoundTimedOut), new HashRoundTimedOut(_epoch), _settings.StepTimeout);
            TryCompleteHashRound(timedOut: false);
        }
    }

    /// <summary>From the next epoch on, the survivors share the training set: shard = rank in the sorted surviving node ids.</summary>
    private void Reshard()
    {
        _reshard = false;
        _batches = ShardBatches.ForMember(_setup.Train, _nodeId, _participants, _plan.BatchSizePerWorker, _plan.Seed);
        _stepsPerEpoch = ShardBatches.StepsPerEpoch(_setup.Train.Count, _participants.Count, _plan.BatchSizePerWorker);
        _log.Info("node {0}: epoch {1} re-sharded among {2} peers: {3} samples here, {4} steps", _nodeId, _epoch, _participants.Count,
                  _batches.ShardSize, _stepsPerEpoch);
        if (_nodeId == _participants.Min)
            _setup.Reporter.Tell(new RunProgress.Note($"from epoch {_epoch} the training set is sharded among {_participants.Count} peers, {_stepsPerEpoch} steps per epoch"));
    }

    // ---- membership ---------------------------------------------------------------------------------

    private void ForgetPeerAt(Address address, string why)
    {
        string key = address.ToString();
        if (_phase == Phase.Finished)
            return;
        if (_phase == Phase.Joining)
        {
            _readyFrom.Remove(key);
            _ackedBy.Remove(key);
            return;
        }
        if (!_nodeIds.TryGetValue(key, out int id) || !_participants.Contains(id))
            return;
        _meter?.SetState(id, why);
        bool hashIn = _hashes.GetValueOrDefault(_epoch)?.ContainsKey(id) == true;
        if (_agreement is null && ((_phase == Phase.Verifying && hashIn) || _phase == Phase.AwaitingResync))
        {
            // Its part of this epoch is in (a peer that finished the run and left looks the same): the epoch ends
            // without an agreement, and the next step, if any, starts one.
            _deferredSuspects.Add(id);
            _log.Info("peer {0} at {1} {2} after its hash for epoch {3} arrived", id, key, why, _epoch);
            return;
        }
        Suspect([id], $"at {key} {why}");
    }

    private void Publish(object message) => _mediator.Tell(new Publish(_topic, message));

    /// <summary>Why this node's data cannot serve the plan, or null when it can.</summary>
    private string? DataMismatch()
    {
        var train = _setup.Train;
        if (train.Count != _plan.TrainCount)
            return $"this node has {train.Count} training samples, the run expects {_plan.TrainCount} (every node must read the same data)";
        if (train.FeatureCount != _plan.Spec.InputCount)
            return $"this node's data has {train.FeatureCount} features, the model {_plan.Spec} expects {_plan.Spec.InputCount}";
        if (train.ClassCount != _plan.Spec.ClassCount)
            return $"this node's data has {train.ClassCount} classes, the model {_plan.Spec} expects {_plan.Spec.ClassCount}";
        if (_setup.InitialParameters.Length != _plan.Spec.ParameterCount)
            return $"θ₀ has {_setup.InitialParameters.Length} values, the model {_plan.Spec} has {_plan.Spec.ParameterCount} parameters";
        return null;
    }
}
