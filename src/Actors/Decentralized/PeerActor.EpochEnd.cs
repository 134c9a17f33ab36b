using Akka.Actor;
using Akka.Event;
using DistSgd.Actors.Protocol;
using DistSgd.Actors.Steps;
using DistSgd.Numerics.Optim;
using DistSgd.Numerics.Training;

namespace DistSgd.Actors.Decentralized;

// The PeerActor at the epoch end: the hash round, the repair of a differing replica, the stop vote.
public sealed partial class PeerActor
{
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
        var arrival = _hashRound.Admit(message, _plan.RunId, _nodeId, _replica.Epoch);
        if (arrival == HashRound.Arrival.Dropped)
            _droppedOther++;
        return arrival == HashRound.Arrival.Held;
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
            _replica.Totals.BytesSent += WireFormat.PayloadBytes(resync) * (_participants.Count - 1);
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
        var outcome = _resyncCheck.Admit(message, _plan.RunId, _nodeId, _replica.Epoch, _participants);
        if (outcome is { } refused && refused != GatherOutcome.Accepted)
            _drops.Record(refused, $"replica resync from node {message.SourceNodeId} for epoch {message.Epoch} (run {message.RunId})");
        if (outcome != GatherOutcome.Accepted)
            return false;
        _replica.Totals.BytesReceived += WireFormat.PayloadBytes(message);
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
}
