using System.Diagnostics;
using Akka.Actor;
using Akka.Event;
using DistSgd.Actors.Protocol;
using DistSgd.Actors.Steps;
using DistSgd.Numerics.Training;

namespace DistSgd.Actors.Decentralized;

// The PeerActor's start barrier and its side of the StepLoop (IStepExchange): its share of each step, computed and sent.
public sealed partial class PeerActor
{
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
        if (StartBarrier.Mismatch(_plan, _shares.IsDirect, message) is { } problem)
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
            _replica.Totals.BytesReceived += WireFormat.PayloadBytes(share);
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
}
