using System.Diagnostics;
using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Tools.PublishSubscribe;
using Akka.Event;
using DistSgd.Actors.Centralized;
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
public sealed record PeerSetup(RunPlan Plan, int PeerCount, float[] InitialParameters, SgdOptions Optimizer,
                               TrainingOptions Training, Dataset Train, Dataset? Test, IActorRef Reporter,
                               int Threads = 1, int EvaluationThreads = 1, IActorRef? Mediator = null);

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
/// <para><b>Steps.</b> A step waits for the participants that are members at its start; one that becomes
/// unreachable or is removed stops being waited for, and distsgd.step-timeout bounds every step. Shares of
/// the next steps are held in a <see cref="StepBuffer"/>; stale, foreign, duplicate, malformed ones are dropped
/// and counted.</para>
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
    private readonly float[] _ownGradient;

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
        _drops = new DropLog(text => _log.Warning("{0}", text));
        _features = new float[_plan.BatchSizePerWorker * _plan.Spec.InputCount];
        _targets = new float[_plan.BatchSizePerWorker];
        _ownGradient = _settings.Transport == PayloadTransport.Direct ? new float[_parameters.Length] : [];
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

    protected override void PostStop()
    {
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
        var gradient = _direct is null ? new float[_parameters.Length] : _ownGradient;
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

    /// <summary>A closed data connection is a lost peer for the open step (like an unreachable member).</summary>
    private void HandleConnectionLost(DataConnectionLost message)
    {
        if (_phase != Phase.Stepping)
            return;
        _log.Warning("data connection from peer {0} closed ({1})", message.Sender, message.Reason);
        if (_buffer.Gather.IsOpen && _buffer.Gather.Forget(message.Sender) && _buffer.Gather.IsComplete)
            FinishStep();
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
        if (_phase == Phase.Stepping && _buffer.Gather.IsComplete)
            FinishStep();
    }

    private void HandleStepTimeout(StepTimedOut message)
    {
        if (_phase != Phase.Stepping || message.Step != _step || !_buffer.Gather.IsOpen)
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
        _log.Warning("step {0}: peers {1} sent no share within {2}; going on with {3} shares (replicas that got them will differ until the epoch's hash check repairs them)",
                     _step, missing, _settings.StepTimeout, _buffer.Gather.Replies.Count);
        FinishStep();
    }

    private void FinishStep()
    {
        Timers.Cancel(nameof(StepTimedOut));
        var gather = _buffer.Gather;
        gather.Close();
        double wall = Stopwatch.GetElapsedTime(_stepStarted).TotalSeconds;
        var outcome = StepUpdate.Apply(gather, _average, _optimizer, _parameters, _epochTotals, wall, _epoch, _step);
        if (_direct is not null)
        {
            // The other peers' shares are summed and applied: their arrays take the next step's frames.
            foreach (var share in gather.Replies)
                if (!ReferenceEquals(share, _ownShare))
                    _direct.Return(share.Gradient);
        }
        if (outcome.Divergence is not null)
        {
            Fail(outcome.Divergence);
            return;
        }

        _step++;
        _stepInEpoch++;
        _stepRetries = 0;
        if (_meter?.StepDone(gather.Replies, wall, _epochTotals, _epoch, _stepInEpoch) is { } progress)
            _setup.Reporter.Tell(progress);
        if (_stepInEpoch == _plan.StepsPerEpoch)
            EndEpoch();
        else
            BeginStep();
    }

    // ---- epoch end: hash round, repair, stop rule ---------------------------------------------------

    private void EndEpoch()
    {
        if (_corruptAtEpoch.Remove(_epoch))
        {
            _parameters[0] += 1f;
            _log.Warning("test hook: replica of node {0} corrupted at the end of epoch {1}", _nodeId, _epoch);
        }
        _ownVote = _stopping.Observe(_epochTotals.TrainLoss) || _epoch >= _plan.Epochs;
        _ownHash = ReplicaCheck.Hash(_parameters, _optimizer.State);
        _phase = Phase.Verifying;
        Publish(new ParameterHash(_plan.RunId, _epoch, _nodeId, _ownHash, _ownVote));
        Timers.StartSingleTimer(nameof(HashRoundTimedOut), new HashRoundTimedOut(_epoch), _settings.StepTimeout);
        TryCompleteHashRound(timedOut: false);
    }

    private void HandleHash(ParameterHash message)
    {
        if (message.RunId != _plan.RunId || message.Epoch < _epoch || _phase == Phase.Finished)
        {
            _droppedOther++;
            return;
        }
        if (!_hashes.TryGetValue(message.Epoch, out var round))
            _hashes[message.Epoch] = round = new SortedDictionary<int, ParameterHash>();
        round.TryAdd(message.NodeId, message);
        TryCompleteHashRound(timedOut: false);
    }

    private void HandleHashRoundTimeout(HashRoundTimedOut message)
    {
        if (_phase == Phase.Verifying && message.Epoch == _epoch)
            TryCompleteHashRound(timedOut: true);
    }

    private void TryCompleteHashRound(bool timedOut)
    {
        if (_phase != Phase.Verifying)
            return;
        var round = _hashes.GetValueOrDefault(_epoch) ?? new SortedDictionary<int, ParameterHash>();
        var missing = _participants.Where(p => !round.ContainsKey(p)).ToList();
        if (missing.Count > 0 && !timedOut)
            return;
        Timers.Cancel(nameof(HashRoundTimedOut));
        if (missing.Count > 0)
            _log.Warning("epoch {0}: no parameter hash from peers {1} within {2}; comparing the {3} that arrived",
                         _epoch, string.Join(", ", missing), _settings.StepTimeout, round.Count);
        round.TryAdd(_nodeId, new ParameterHash(_plan.RunId, _epoch, _nodeId, _ownHash, _ownVote));
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
        var metrics = _epochTotals.ToMetrics(_epoch, _step, score, test is { IsClassification: true },
                                             _buffer.DroppedTotal + _resyncCheck.DroppedTotal + _droppedOther + (_direct?.BadFrames ?? 0),
                                             DroppedMessages.ByKind(_buffer.Dropped.Concat(_resyncCheck.Dropped), _direct?.BadFrames ?? 0, _droppedOther));
        _epochs.Add(metrics);
        if (lead)
            _setup.Reporter.Tell(new RunProgress.EpochCompleted(metrics));
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
        if (!_nodeIds.TryGetValue(key, out int id) || !_participants.Remove(id))
            return;
        _log.Warning("peer {0} at {1} {2}: no longer waited for", id, key, why);
        _setup.Reporter.Tell(new RunProgress.Note($"peer {id} at {key} {why}"));
        _meter?.SetState(id, why);
        if (_phase == Phase.Stepping && _buffer.Gather.IsOpen && _buffer.Gather.Forget(id) && _buffer.Gather.IsComplete)
            FinishStep();
        else if (_phase == Phase.Verifying)
            TryCompleteHashRound(timedOut: false);
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
