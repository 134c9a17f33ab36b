using Akka.Actor;
using Akka.Event;
using DistSgd.Actors.Membership;
using DistSgd.Actors.Protocol;
using DistSgd.Actors.Steps;
using DistSgd.Numerics.Optim;
using DistSgd.Numerics.Training;

namespace DistSgd.Actors.Decentralized;

/// <summary>
/// The peer at an epoch's end: publishes this replica's hash and stop vote, completes the <see cref="HashRound"/>,
/// repairs a differing replica from the agreed source's <see cref="ReplicaResync"/> (<see cref="ResyncCheck"/>),
/// closes the epoch and goes on or finishes by the source's vote. The decisions are the pure classes'; this class
/// does their I/O, and the <see cref="PeerActor"/> routes the Verifying and Resyncing messages to it.
/// </summary>
internal sealed class EpochEndRound(PeerRun run, IPeerControl control, ITimerScheduler timers, PeerStep step, LatePeers late)
{
    private readonly HashSet<int> _corruptAtEpoch = new();

    private Replica Replica => run.Replica;

    /// <summary>This peer's latest hash: published again after an agreement, since the others dropped what came before its report.</summary>
    public ParameterHash? LastHash { get; private set; }

    /// <summary>This peer took back the step its latest hash was of (an abandoned all-reduce): that hash is published no more.</summary>
    public void ForgetLastHash() => LastHash = null;

    /// <summary>Test hook: this replica is corrupted at the end of <paramref name="epoch"/>.</summary>
    public void CorruptAt(int epoch) => _corruptAtEpoch.Add(epoch);

    /// <summary>Starts the epoch's hash round: this replica's hash and stop vote to every peer.</summary>
    public void Start()
    {
        if (_corruptAtEpoch.Remove(Replica.Epoch))
        {
            Replica.Parameters[0] += 1f;
            run.Log.Warning("test hook: replica of node {0} corrupted at the end of epoch {1}", run.NodeId, Replica.Epoch);
        }
        // Observed when the epoch is over (Proceed): an epoch end redone after a peer loss votes again.
        bool vote = Replica.Stopping.WouldStop(Replica.Totals.TrainLoss) || Replica.AtEpochLimit;
        LastHash = new ParameterHash(run.Plan.RunId, Replica.Epoch, run.NodeId, ReplicaCheck.Hash(Replica.Parameters, Replica.Optimizer.State, run.Plan.SyncEvery), vote)
        {
            Joiners = late.ForHash(vote),   // the lead's: the late peers it admits now (decision 0097)
        };
        control.Publish(LastHash);
        Verify(new HashWait(LastHash));
    }

    /// <summary>Waits (again) for every participant's hash of the epoch.</summary>
    public void Verify(HashWait wait)
    {
        control.BecomeVerifying(wait);
        timers.StartSingleTimer(nameof(HashRoundTimedOut), new HashRoundTimedOut(Replica.Epoch), run.Settings.StepTimeout);
        TryComplete(wait, timedOut: false);
    }

    /// <summary>Holds a hash of this epoch or a later one; false for one to ignore (counted unless it is this peer's own echo).</summary>
    public bool Hold(ParameterHash message)
    {
        var arrival = run.HashRound.Admit(message, run.Plan.RunId, run.NodeId, Replica.Epoch);
        if (arrival == HashRound.Arrival.Dropped)
            run.DroppedOther++;
        return arrival == HashRound.Arrival.Held;
    }

    public void TryComplete(HashWait wait, bool timedOut)
    {
        if (run.HashRound.TryComplete(wait.Own, run.Participants, out var missing) is not { } agreed)
        {
            if (timedOut)
                control.OpenAgreement(wait, missing, LossCause.Silent, $"no parameter hash for epoch {Replica.Epoch} within distsgd.step-timeout ({run.Settings.StepTimeout.TotalSeconds:0.#}s)");
            return;
        }
        timers.Cancel(nameof(HashRoundTimedOut));
        if (agreed.AllEqual)
        {
            Proceed(agreed.VotesToStop, wait.Own.Hash, agreed.Joiners);
            return;
        }
        string report = agreed.Describe(Replica.Epoch);
        run.Log.Error(report);
        if (run.IsLead)
            run.Report(new RunProgress.Note(report));
        if (agreed.Source == run.NodeId)
        {
            var resync = new ReplicaResync(run.Plan.RunId, Replica.Epoch, run.NodeId, wait.Own.Hash, Replica.Optimizer.State.Step,
                                           Replica.CopyOfParameters(), (float[])Replica.Optimizer.State.Velocity.Clone());
            control.Publish(resync);
            Replica.Totals.AddSent(WireFormat.PayloadBytes(resync) * (run.Participants.Count - 1));
        }
        if (agreed.Matches(wait.Own.Hash))
        {
            Proceed(agreed.VotesToStop, wait.Own.Hash, agreed.Joiners);
            return;
        }
        var resyncWait = new ResyncWait(wait.Own, agreed.Source, agreed.VotesToStop, agreed.Joiners);
        control.BecomeResyncing(resyncWait);
        timers.StartSingleTimer(nameof(ResyncTimedOut), new ResyncTimedOut(Replica.Epoch), run.Settings.StepTimeout);
        if (run.ResyncCheck.TakeHeld(Replica.Epoch, agreed.Source) is { } early)
            ApplyResync(resyncWait, early);
    }

    /// <summary>Whether a resync is one to apply or hold; false for one to ignore (counted when it is bad).</summary>
    public bool Accept(ReplicaResync message)
    {
        var outcome = run.ResyncCheck.Admit(message, run.Plan.RunId, run.NodeId, Replica.Epoch, run.Participants);
        if (outcome is { } refused && refused != GatherOutcome.Accepted)
            run.Drops.Record(refused, $"replica resync from node {message.SourceNodeId} for epoch {message.Epoch} (run {message.RunId})");
        if (outcome != GatherOutcome.Accepted)
            return false;
        Replica.Totals.AddReceived(WireFormat.PayloadBytes(message));
        return true;
    }

    /// <summary>A resync that arrived while this peer waits for one: applied when it is the awaited one, else held.</summary>
    public void Arrived(ResyncWait wait, ReplicaResync message)
    {
        if (!Accept(message))
            return;
        if (message.Epoch == Replica.Epoch)
            ApplyResync(wait, message);
        else
            run.ResyncCheck.Hold(message);
    }

    /// <summary>Waits again for the source's resync, applying it at once when it came while the survivors agreed.</summary>
    public void AwaitResync(ResyncWait wait)
    {
        control.BecomeResyncing(wait);
        if (run.ResyncCheck.TakeHeld(Replica.Epoch, wait.Source) is { } held)
            ApplyResync(wait, held);
    }

    private void ApplyResync(ResyncWait wait, ReplicaResync message)
    {
        var outcome = run.ResyncCheck.Judge(message, run.Plan.RunId, wait.Source, Replica.Parameters.Length, Replica.Optimizer.State.Velocity.Length);
        if (outcome != GatherOutcome.Accepted)
        {
            // Not applied; a good one may still come, else the resync timeout fails the run.
            run.Drops.Record(outcome, $"replica resync from node {message.SourceNodeId} after epoch {message.Epoch}");
            return;
        }
        message.Parameters.CopyTo(Replica.Parameters, 0);
        Replica.Optimizer.Restore(new SgdState(message.OptimizerStep, message.Velocity));
        var hash = ReplicaCheck.Hash(Replica.Parameters, Replica.Optimizer.State, run.Plan.SyncEvery);
        if (!hash.AsSpan().SequenceEqual(message.Hash))
        {
            control.Fail($"the replica copied from node {message.SourceNodeId} after epoch {message.Epoch} does not match its hash");
            return;
        }
        timers.Cancel(nameof(ResyncTimedOut));
        run.Log.Warning("node {0} re-synchronised its replica from node {1} after epoch {2}", run.NodeId, message.SourceNodeId, message.Epoch);
        run.Report(new RunProgress.Note($"node {run.NodeId} re-synchronised its replica from node {message.SourceNodeId} after epoch {message.Epoch}"));
        Proceed(wait.VotesToStop, hash, wait.Joiners);
    }

    public void ResyncTimeout(int epoch) =>
        control.Fail($"replica of node {run.NodeId} differs from the others after epoch {epoch} and no resynchronisation arrived within {run.Settings.StepTimeout.TotalSeconds:0}s (distsgd.step-timeout)");

    /// <param name="joiners">The late peers the lead admitted at this epoch's end: they take part from the next epoch.</param>
    private void Proceed(bool stop, byte[] hash, PeerJoin[] joiners)
    {
        bool lead = run.IsLead;
        var refused = run.Shares.Refused;
        var (metrics, _) = Replica.CloseEpoch(lead ? run.Setup.Test : null, Replica.Step - run.SkippedSteps, run.DroppedTotal + run.Shares.BadFrames + refused.Values.Sum(),
                                              DroppedMessages.ByKind(run.Buffer.Dropped.Concat(run.ResyncCheck.Dropped), run.Shares.BadFrames, run.DroppedOther, refused));
        if (lead)
            run.Report(new RunProgress.EpochCompleted(metrics));
        run.ResyncCheck.ForgetThrough(Replica.Epoch);
        if (stop)
        {
            late.RefuseWaiting($"the run ended after epoch {Replica.Epoch}");
            control.Finish(Replica.AtEpochLimit ? StopReason.EpochLimit : StopReason.LossPlateau, lead, hash);
            return;
        }
        Replica.NextEpoch();
        late.TakeIn(joiners);
        step.ReshardIfDue();
        late.SendState(joiners);   // the lead: the new epoch's replica, cut and re-planned as every participant's
        control.BecomeStepping();
        step.Loop.Begin();
    }
}
