using System.Diagnostics;
using Akka.Actor;
using Akka.Event;
using DistSgd.Actors.Membership;
using DistSgd.Actors.Collectives;
using DistSgd.Actors.Protocol;
using DistSgd.Actors.Steps;
using DistSgd.Numerics.Models;
using DistSgd.Numerics.Tensors;
using DistSgd.Numerics.Training;

namespace DistSgd.Actors.Decentralized;

/// <summary>
/// The peer's side of the <see cref="StepLoop"/>: computes this peer's share of each step on its shard, sends it to
/// every participant, takes the others' shares in, keeps the undo copy and meters the step; at an epoch's end it
/// hands over to the hash round. It owns the loop, the gradient computation and the shard; the <see cref="PeerActor"/>
/// owns the states.
/// </summary>
internal sealed class PeerStep : IStepExchange, IDisposable
{
    private readonly PeerRun _run;
    private readonly IPeerControl _control;
    /// <summary>The gradient of this peer's shard: its own kernels (the replica's evaluator has others).</summary>
    private readonly Model _model;
    private float[] _features;
    private float[] _targets;
    private ShardBatches? _batches;
    /// <summary>Local SGD: every participant's shard of the open epoch, for the samples the others process at a local step (decision 0137); null when H = 1.</summary>
    private EpochShards? _shards;
    /// <summary>--balance speed (<see cref="RunPlan.BalanceBySpeed"/>): the same plan on every peer, from the same applied shares; null without.</summary>
    private readonly BatchBalancer? _balance;
    /// <summary>This peer's share of the open step, sent again when nothing at all arrived.</summary>
    private GradientShare? _ownShare;
    private bool _reshard;
    /// <summary>Local SGD: steps per round, H (1: every step averages gradients).</summary>
    private readonly int _syncEvery;
    /// <summary>Local SGD: θ at the open round's start, the same on every peer (empty when H = 1).</summary>
    private float[] _roundStart;
    /// <summary>Local SGD: θ at the start of the round before the open one, which a peer loss may make it redo the end of.</summary>
    private float[] _endedRoundStart;
    /// <summary>Local SGD: the step at which <see cref="_roundStart"/> was taken (−1: none yet).</summary>
    private long _roundStartStep = -1;
    /// <summary>Local SGD: this peer alone, whom a step inside a round gathers from.</summary>
    private int[] _self = [];
    /// <summary>Local SGD: the optimizer's step when the open step began: every step advances it by one on every peer.</summary>
    private long _optimizerStepAtOpen;
    /// <summary>The sends' warning for a peer that could not be reached, and the undo's release of a frame's array: made once, not at every step (decision 0067).</summary>
    private readonly Action<int, string> _unreachable;
    private readonly Action<GradientShare> _release;

    public PeerStep(PeerRun run, IPeerControl control, ITimerScheduler timers)
    {
        (_run, _control) = (run, control);
        _model = new Model(run.Plan.Spec, MatrixKernels.Create(run.Setup.Threads));
        _features = new float[run.Plan.BatchSizePerWorker * run.Plan.Spec.InputCount];
        _targets = new float[run.Plan.BatchSizePerWorker];
        _syncEvery = run.Plan.SyncEvery;
        _roundStart = _syncEvery > 1 ? new float[run.Replica.Parameters.Length] : [];
        _endedRoundStart = _syncEvery > 1 ? new float[run.Replica.Parameters.Length] : [];
        if (run.Plan.BalanceBySpeed)
        {
            _balance = new BatchBalancer(run.Plan.BatchSizePerWorker, run.Replica.Checkpoints.ResumedBalance);
            run.Replica.Checkpoints.Balance = _balance.State;
        }
        Loop = new StepLoop(run.Replica, this, timers, run.Settings.StepTimeout);
        _unreachable = (node, endpoint) => _run.Log.Warning("step {0}: could not send this peer's share to peer {1} at {2}", _ownShare?.Step, node, endpoint);
        _release = run.Shares.Release;
        if (run.Shares.AllReduce is { } reduce)
            reduce.Noticed = Notice;
    }

    public StepLoop Loop { get; }

    private Replica Replica => _run.Replica;

    /// <summary>The start barrier passed: this peer's shard of the first epochs, among every peer.</summary>
    public ShardBatches Started()
    {
        var plan = _run.Plan;
        _batches = new ShardBatches(_run.Setup.Train, _run.NodeId, _run.Setup.PeerCount, plan.BatchSizePerWorker, plan.Seed);
        CutShards(Enumerable.Range(0, _run.Setup.PeerCount).ToList());
        // A resumed run's epoch keeps the batches it was planned with (the checkpoint's plan).
        if (_balance is not null)
        {
            _balance.StartEpoch(_run.Participants);
            if (_balance.IsBalanced)
            {
                UseBalancedBatches();
                if (_run.IsLead)
                    _run.Report(new RunProgress.Note(_balance.Note(Replica.Epoch, Replica.StepsPerEpoch, "peer", "; the checkpoint's plan")));
            }
        }
        return _batches;
    }

    /// <summary>Node <paramref name="node"/>'s shard of a balanced epoch: its units' samples and its batch.</summary>
    private (int Node, int ShardSize, int BatchSize) UnitsOf(int node, int trainCount)
    {
        var (first, units, batch) = _balance!.Assignment(node, 0, 0);
        return (node, ShardBatches.UnitsSize(trainCount, first, batch, units), batch);
    }

    /// <summary>Local SGD: the epoch's shards are the training set cut evenly among <paramref name="nodes"/>, shard i node i's (<see cref="EpochShards.Even"/>).</summary>
    private void CutShards(IReadOnlyList<int> nodes)
    {
        if (_syncEvery > 1)
            _shards = EpochShards.Even(_run.Setup.Train.Count, nodes, _run.Plan.BatchSizePerWorker);
    }

    /// <summary>A balanced epoch (<see cref="BatchBalancer.IsBalanced"/>): this peer's units and batch, and the epoch's steps.</summary>
    private void UseBalancedBatches()
    {
        var train = _run.Setup.Train;
        var (first, units, batch) = _balance!.Assignment(_run.NodeId, 0, 0);
        _batches = ShardBatches.ForUnits(train, first, batch, units, _run.Plan.Seed);
        Replica.StepsPerEpoch = ShardBatches.StepsPerEpoch(train.Count, units, 1);
        if (_syncEvery > 1)
            _shards = new EpochShards(_run.Participants.Select(node => UnitsOf(node, train.Count)).ToList());
        if (_targets.Length < batch)
        {
            // Once per epoch at most, never per step.
            _features = new float[batch * _run.Plan.Spec.InputCount];
            _targets = new float[batch];
        }
    }

    StepGather IStepExchange.Open()
    {
        // The lead peer (lowest node id) writes the checkpoints: every replica is the same.
        if (_run.IsLead && Replica.CheckpointIfDue() is { } checkpoint)
            _run.Report(new RunProgress.Note(checkpoint.Describe()));
        bool averaging = OpenRound();
        _run.Buffer.Begin(Replica.Step, averaging ? _run.Participants : Self(), local: !averaging);
        // Begun at a local step too (it sends nothing there), so that parts of the round's averaging step are held within the window.
        _run.Shares.AllReduce?.Begin(Replica.Step, _run.Participants);
        return _run.Buffer.Gather;
    }

    /// <summary>From now on every step is traced (distsgd.step-trace, a trace file); <see cref="WriteTrace"/> writes it.</summary>
    public void StartTrace()
    {
        if (StepTrace.Start(_run.Settings, _run.NodeId, $"peer {_run.NodeId}", _run.Setup.PeerCount) is not { } trace)
            return;
        Loop.Trace = trace;
        _run.Trace = trace;
        _run.Shares.Trace(trace);
    }

    /// <summary>Writes the step trace, if any (<see cref="StepTrace.WriteOrWarn"/>).</summary>
    public void WriteTrace() => Loop.Trace?.WriteOrWarn(_run.Settings, _run.Log);

    /// <summary>
    /// Local SGD: keeps θ at a round's start and says whether the open step averages (every step when H = 1); a step
    /// inside a round is this peer's alone, the round's last one averages the peers' changes (<see cref="Replica.RoundStart"/>).
    /// </summary>
    private bool OpenRound()
    {
        if (_syncEvery <= 1)
            return true;
        _optimizerStepAtOpen = Replica.Optimizer.State.Step;
        if (LocalSgd.IsRoundStart(Replica.StepInEpoch, Replica.StepsPerEpoch, _syncEvery))
        {
            (_roundStart, _endedRoundStart) = (_endedRoundStart, _roundStart);
            StartRoundHere();
        }
        bool averaging = LocalSgd.IsAveragingStep(Replica.StepInEpoch, Replica.StepsPerEpoch, _syncEvery);
        Replica.RoundStart = averaging ? _roundStart : null;
        return averaging;
    }

    /// <summary>Local SGD: the open round starts from θ as it is now (a round start, or the survivors' redone average).</summary>
    public void StartRoundHere()
    {
        Replica.Parameters.CopyTo(_roundStart, 0);
        _roundStartStep = Replica.Step;
    }

    /// <summary>
    /// Local SGD: the averaging step <paramref name="step"/> is about to be redone (a peer loss; θ and the optimizer are
    /// back as they were before its update): it averages onto the start of the round it ended, and its optimizer step
    /// is the one it took then.
    /// </summary>
    public void Redoing(long step)
    {
        if (_syncEvery <= 1)
            return;
        Replica.RoundStart = _roundStartStep > step ? _endedRoundStart : _roundStart;
        _optimizerStepAtOpen = Replica.Optimizer.State.Step - 1;   // the step's own update advanced it before the undo's copy
    }

    /// <summary>
    /// Local SGD: the averaging step <paramref name="step"/> is abandoned (an all-reduce that did not finish on every
    /// survivor, decision 0136) and its place redone at the next step, this replica back at that place (θ and the velocity
    /// after the step's own update, as a survivor that never applied it holds them): the round it ends is open again, from
    /// the same θ₀, and the optimizer's step is the one the step opened with (<paramref name="tookBack"/>: restored from
    /// the undo, whose copy counts the step's own update), so that the redone step counts once on every survivor.
    /// </summary>
    public void Abandoning(long step, bool tookBack)
    {
        if (_syncEvery <= 1)
            return;
        if (_roundStartStep > step)
        {
            // This peer had averaged and started the next round: the round the step ends is the open one again.
            (_roundStart, _endedRoundStart) = (_endedRoundStart, _roundStart);
            _roundStartStep = step;
        }
        long opened = tookBack ? Replica.Optimizer.State.Step - 1 : _optimizerStepAtOpen;
        Replica.Optimizer.Restore(new Numerics.Optim.SgdState(opened, Replica.Optimizer.State.Velocity));
    }

    /// <summary>
    /// Local SGD: the optimizer's step when the open step began, before its own update (an averaging step takes that
    /// update as it computes the change it sends): the same on every peer at the same place in the epoch.
    /// </summary>
    public long OptimizerStepAtOpen => _optimizerStepAtOpen;

    /// <summary>Whether the open step is a local step of a round (H &gt; 1, not an averaging step): this peer's alone.</summary>
    private bool IsLocalStep => _syncEvery > 1 && Replica.RoundStart is null;

    private int[] Self() => _self.Length == 1 && _self[0] == _run.NodeId ? _self : _self = [_run.NodeId];

    /// <summary>Test hook (<see cref="PeerQueries.CrashAtStep"/>): when this peer is that node and about to start that step or a later one, <see cref="Crash"/> is called instead.</summary>
    internal PeerQueries.CrashAtStep? CrashAt { get; set; }

    /// <summary>Test hook: stops the node (see <see cref="CrashAt"/>).</summary>
    internal Action? Crash { get; set; }

    /// <summary>Test hook (<see cref="PeerQueries.CrashMidAllReduce"/> with the all-gather): called instead of applying the next step, once.</summary>
    internal Action? CrashBeforeApply { get; set; }

    /// <summary>Test hook (<see cref="PeerQueries.HoldShareUntilLoss"/>): the share to hold back until a peer loss when this peer is its holder, or null.</summary>
    internal PeerQueries.HoldShareUntilLoss? HoldShare { get; set; }

    /// <summary>Test hook: the share held back (<see cref="HoldShare"/>) and its sender, or null.</summary>
    private (GradientShare Share, IActorRef Sender)? _heldShare;

    /// <summary>Test hook: a peer loss is seen; the share held back, if any, to take in now (<see cref="HoldShare"/> ends).</summary>
    internal (GradientShare Share, IActorRef Sender)? ReleaseHeldShare()
    {
        var held = _heldShare;
        (_heldShare, HoldShare) = (null, null);
        return held;
    }

    void IStepExchange.Broadcast()
    {
        if (CrashAt is { } crash && crash.NodeId == _run.NodeId && Replica.Step >= crash.Step)
        {
            CrashAt = null;
            Crash?.Invoke();
            return;
        }
        long computing = Stopwatch.GetTimestamp();
        if (IsLocalStep)
        {
            // Inside a local-SGD round: this peer's gradient, applied by this peer alone; nothing travels.
            _ownShare = ComputeShare(local: true);
            _run.Buffer.Offer(_ownShare);
            return;
        }
        _ownShare = ComputeShare();
        long sending = Stopwatch.GetTimestamp();
        SendShare(_ownShare);
        if (Loop.Trace is { } trace)
        {
            trace.Add(StepPhase.Compute, _ownShare.Step, computing, sending);
            trace.Add(StepPhase.Send, _ownShare.Step, sending, Stopwatch.GetTimestamp());
        }
        // The topic hands a peer its own share; the data plane does not. An all-reduce's gather takes the metadata only.
        if (_run.Shares.AllReduce is not null)
            _run.Buffer.Offer(_ownShare with { Gradient = [] });
        else if (_run.Shares.IsDirect)
            _run.Buffer.Offer(_ownShare);
    }

    bool IStepExchange.AfterBegin() => !_control.OpenDeferredAgreement();   // agreeing, or already decided and gone on

    /// <param name="local">A step inside a local-SGD round: the gradient as computed, for this peer's own update only.</param>
    private GradientShare ComputeShare(bool local = false)
    {
        long started = Stopwatch.GetTimestamp();
        long step = Replica.Step;
        var plan = _run.Plan;
        int rows = _batches!.Gather(Replica.Epoch, Replica.StepInEpoch, _features, _targets);
        if (rows == 0)
            return new GradientShare(plan.RunId, step, _run.NodeId, 0, 0, 0, []);
        var gradient = _run.Shares.GradientArray(_run.Undo);
        float loss = _model.LossAndGradient(Replica.Parameters, _features.AsSpan(0, rows * plan.Spec.InputCount),
                                            _targets.AsSpan(0, rows), rows, gradient);
        Slowdown.After(_run.Setup.Slowdown, started);
        if (local)
            return new GradientShare(plan.RunId, step, _run.NodeId, rows, (double)loss * rows, Stopwatch.GetElapsedTime(started).TotalSeconds, gradient);
        if (Replica.RoundStart is { } roundStart && float.IsFinite(loss))
        {
            // The round's last step: this peer takes its own update, and its change over the round travels, Δ = θ − θ₀.
            Replica.Optimizer.Step(Replica.Parameters, gradient);
            System.Numerics.Tensors.TensorPrimitives.Subtract(Replica.Parameters, roundStart, gradient);
        }
        // What the wire delivers, kept as this peer's own share too (bit-identical replicas); a gradient that is not
        // finite cannot travel compressed and goes as a non-finite share, judged like one everywhere.
        double lossSum = _run.Shares.Compress(gradient, out var entries) ? (double)loss * rows : double.NaN;
        return new GradientShare(plan.RunId, step, _run.NodeId, rows, lossSum, Stopwatch.GetElapsedTime(started).TotalSeconds, gradient)
        {
            Entries = entries,
        };
    }

    /// <summary>Sends this peer's share of the open step (<see cref="_ownShare"/>, which the warning of an unreachable peer names).</summary>
    private void SendShare(GradientShare share) =>
        Replica.Totals.AddSent(_run.Shares.Send(share, Replica.Epoch, Replica.StepInEpoch, _run.Participants, _unreachable));

    /// <summary>
    /// A share that arrived from <paramref name="sender"/>, for the open step, a later one, or to drop (counted; one
    /// that did not come from the node it names as not_participant).
    /// </summary>
    public void Offer(GradientShare share, IActorRef sender)
    {
        if (HoldShare is { } hold && hold.Holder == _run.NodeId && share.NodeId == hold.NodeId && share.Step == hold.Step)
        {
            _heldShare = (share, sender);
            return;
        }
        long taken = Stopwatch.GetTimestamp();
        if (share.NodeId != _run.NodeId)
            Replica.Totals.AddReceived(((IGradientContribution)share).WireBytes);
        if (!_run.Shares.IsDirect && share.NodeId >= _run.NextNodeId && share.Step > Replica.Step && _run.Unjudged.Count < _run.UnjudgedLimit)
        {
            // On the Akka transport a late peer's first share may come before this peer took it in (its hash round is still
            // completing): held, and judged by its sender once this peer knows that node (LatePeers.TakeIn; decision 0097).
            _run.Unjudged.Add((share, sender));
            return;
        }
        var outcome = _run.Buffer.Offer(share, FromItsNode(share.NodeId, sender, _run.Shares.IsDirect, _run.Peers));
        Loop.Trace?.Offered(share.NodeId, share.Step, taken, Stopwatch.GetTimestamp());
        if (outcome is not (GatherOutcome.Accepted or GatherOutcome.Buffered))
            _run.Drops.Record(outcome, $"share of node {share.NodeId} for step {share.Step} (run {share.RunId}, {share.Gradient.Length} values)");
    }

    /// <summary>
    /// A part of the all-reduce from another peer: taken into the open step (with <paramref name="stepping"/>), held for a
    /// later one, or dropped (counted and logged, except the open step's parts while the peer agrees on a loss: that step is
    /// never finished).
    /// </summary>
    public void OfferPart(CollectivePart part, bool stepping)
    {
        long taken = Stopwatch.GetTimestamp();
        Replica.Totals.AddReceived(part.Bytes);
        long sent = 0;
        var outcome = _run.Shares.AllReduce!.Take(part, stepping, ref sent);
        Replica.Totals.AddSent(sent);
        Loop.Trace?.Offered(part.Sender, part.Step, taken, Stopwatch.GetTimestamp());
        if (outcome is PartOutcome.Accepted or PartOutcome.Held or PartOutcome.Interrupted)
            return;
        _run.DroppedOther++;
        _run.Drops.Record(AsGatherOutcome(outcome), $"{_run.Shares.Collective.Kind.Name()} part of node {part.Sender} for step {part.Step} (round {part.Round}, offset {part.Offset}, {part.Values.Length} values)");
    }

    /// <summary>A participant's metadata of the open step, heard through the all-reduce: to the step's gather.</summary>
    private void Notice(CollectivePart part)
    {
        var notice = new GradientShare(part.RunId, part.Step, part.Origin, part.SampleCount, part.LossSum, part.ComputeSeconds, []);
        var outcome = _run.Buffer.Offer(notice);
        if (outcome is not (GatherOutcome.Accepted or GatherOutcome.Buffered))
            _run.Drops.Record(outcome, $"share of node {notice.NodeId} for step {notice.Step} (its sample count {notice.SampleCount})");
    }

    /// <summary>The drop kind an all-reduce's refusal is counted and logged as.</summary>
    public static GatherOutcome AsGatherOutcome(PartOutcome outcome) => outcome switch
    {
        PartOutcome.Accepted => GatherOutcome.Accepted,
        PartOutcome.Held => GatherOutcome.Buffered,
        PartOutcome.Stale or PartOutcome.Interrupted => GatherOutcome.StaleStep,
        PartOutcome.Future => GatherOutcome.FutureStep,
        PartOutcome.ForeignRun => GatherOutcome.ForeignRun,
        PartOutcome.NotParticipant => GatherOutcome.NotParticipant,
        PartOutcome.Duplicate => GatherOutcome.Duplicate,
        _ => GatherOutcome.WrongLength,
    };

    /// <summary>
    /// Whether a share naming node <paramref name="node"/> came from that node: on the Akka transport, from the peer
    /// actor that node announced in its <see cref="PeerReady"/> (this peer's own share from itself, through the topic),
    /// so that no node passes its share off as another's. On the data plane each connection proved its node at connect
    /// (<see cref="Transport.DataPlaneHandshake"/>) and its frames must name it, so there the sender says nothing more.
    /// </summary>
    public static bool FromItsNode(int node, IActorRef sender, bool direct, IReadOnlyDictionary<int, IActorRef> peers) =>
        direct || (peers.TryGetValue(node, out var peer) && peer.Equals(sender));

    void IStepExchange.AskAgain(IReadOnlyCollection<int> missing)
    {
        _run.Log.Warning("step {0}: no share arrived within {1}, not even this peer's own; publishing it again", Replica.Step, _run.Settings.StepTimeout);
        SendShare(_ownShare!);
        Loop.RestartTimeout();
    }

    string IStepExchange.NothingArrived(IReadOnlyCollection<int> missing) =>
        $"no share of step {Replica.Step} arrived within {StepLoop.MaxStepRetries + 1} × distsgd.step-timeout ({_run.Settings.StepTimeout.TotalSeconds:0}s), not even this peer's own";

    bool IStepExchange.GoOnWithout(IReadOnlyCollection<int> missing)
    {
        _run.Log.Warning("step {0}: peers {1} sent no share within {2}", Replica.Step, string.Join(", ", missing), _run.Settings.StepTimeout);
        _control.OpenAgreement(null, missing, LossCause.Silent, $"no share of step {Replica.Step} within distsgd.step-timeout ({_run.Settings.StepTimeout.TotalSeconds:0.#}s)");
        return false;
    }

    bool IStepExchange.BeforeApply(StepGather gather)
    {
        if (CrashBeforeApply is { } crash)
        {
            CrashBeforeApply = null;
            crash();
            return false;
        }
        // The update copies θ and v into the undo buffers in its own pass (Replica.KeepStateBeforeEachStep). A local step
        // keeps the undo of the round's averaging step before it, the step a peer loss may contest (Replica.Apply).
        // With local SGD the copy is taken after the step's own update, so the step restored is the one after it (decision
        // 0131): also when this peer's shard ran out and it took none (AfterApply moves its optimizer's step on).
        if (!IsLocalStep)
            _run.Undo.Capturing(_syncEvery > 1 ? _optimizerStepAtOpen + 1 : Replica.Optimizer.State.Step);
        return true;
    }

    void IStepExchange.AfterApply(StepGather gather, double wallSeconds, bool diverged)
    {
        // Over the data plane, the previous step's shares from other peers can no longer be redone: their arrays take the next frames.
        if (!IsLocalStep)
            _run.Undo.Applied(gather.Step, gather.Replies, _release);
        // Local SGD: a peer whose shard ran out took no update of its own; its step count (η's schedule) still moves on with the others'.
        if (_syncEvery > 1 && Replica.Optimizer.State.Step != _optimizerStepAtOpen + 1)
            Replica.Optimizer.Restore(new Numerics.Optim.SgdState(_optimizerStepAtOpen + 1, Replica.Optimizer.State.Velocity));
        // A local step gathered this peer's share alone: the others processed theirs too (the epoch's samples per second).
        if (IsLocalStep && !diverged && _shards is not null && gather.Replies.Count == 1)
            Replica.Totals.CountSamplesElsewhere(Math.Max(0, _shards.SamplesAt(Replica.StepInEpoch, _run.Participants) - gather.Replies[0].SampleCount));
        // Every peer applied these same shares, whose compute times came with them: the same timings on every replica.
        if (_balance is not null && !diverged && (_syncEvery <= 1 || Replica.RoundStart is not null))
            _balance.RecordStep(gather.Step, gather.Replies);
        if (!diverged && _run.Meter?.StepDone(gather.Replies, wallSeconds, Replica.Totals, Replica.Epoch, Replica.StepInEpoch + 1) is { } progress)
            _run.Report(progress);
    }

    bool IStepExchange.EndEpoch()
    {
        _control.StartHashRound();
        return false;
    }

    void IStepExchange.Fail(string reason) => _control.Fail(reason);

    /// <summary>The participants changed: the next epoch is re-sharded among them (<see cref="ReshardIfDue"/>).</summary>
    public void ReshardNextEpoch() => _reshard = true;

    /// <summary>
    /// From the next epoch on, the survivors share the training set: shard = rank in the sorted surviving node ids; the
    /// epochs have another number of steps, so the learning-rate schedule is re-planned over the steps that remain
    /// (<see cref="Replica.ReplanSchedule"/>), the same on every survivor.
    /// </summary>
    /// <param name="replan">False for a late peer that adopted the replica of the new epoch: its schedule came re-planned.</param>
    /// <remarks>With --balance speed every epoch's start plans its batches (<see cref="BatchBalancer.StartEpoch"/>) from the
    /// previous epoch's shares, the same on every peer; a balanced epoch, or the first one after, is cut anew.</remarks>
    public void ReshardIfDue(bool replan = true)
    {
        bool wasBalanced = _balance?.IsBalanced ?? false;
        _balance?.StartEpoch(_run.Participants);
        bool balanced = _balance?.IsBalanced ?? false;
        if (!_reshard && !balanced && !wasBalanced)
            return;
        bool membersChanged = _reshard;
        _reshard = false;
        var plan = _run.Plan;
        var train = _run.Setup.Train;
        if (balanced)
        {
            UseBalancedBatches();
        }
        else
        {
            _batches = ShardBatches.ForMember(train, _run.NodeId, _run.Participants, plan.BatchSizePerWorker, plan.Seed);
            Replica.StepsPerEpoch = ShardBatches.StepsPerEpoch(train.Count, _run.Participants.Count, plan.BatchSizePerWorker);
            CutShards(_run.Participants.ToList());
        }
        _run.Log.Info("node {0}: epoch {1} re-sharded among {2} peers: {3} samples here, batch {4}, {5} steps", _run.NodeId, Replica.Epoch,
                      _run.Participants.Count, _batches!.ShardSize, _batches.BatchSize, Replica.StepsPerEpoch);
        string? replanned = replan ? Replica.ReplanSchedule() : null;
        if (replanned is not null)
            _run.Log.Info("node {0}: {1}", _run.NodeId, replanned);
        if (_run.IsLead)
        {
            if (membersChanged)
                _run.Report(new RunProgress.Note($"from epoch {Replica.Epoch} the training set is sharded among {_run.Participants.Count} peers, {Replica.StepsPerEpoch} steps per epoch"));
            if (balanced || wasBalanced)
                _run.Report(new RunProgress.Note(_balance!.Note(Replica.Epoch, Replica.StepsPerEpoch, "peer")));
            if (replanned is not null)
                _run.Report(new RunProgress.Note(replanned));
        }
    }

    /// <summary>
    /// A late peer adopts the lead's balance with the replica (<see cref="Checkpoint.Balance"/>): the plan of the epoch it
    /// joins and the timings towards the next, so that it cuts and plans as every other peer.
    /// </summary>
    public void AdoptBalance(BalanceState? balance)
    {
        if (_balance is not null && balance is not null)
            _balance.Resume(balance);
    }

    public void Dispose() => (_model.Kernels as IDisposable)?.Dispose();
}
