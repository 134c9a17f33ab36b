using Akka.Actor;
using Akka.Event;
using DistSgd.Actors.Membership;
using DistSgd.Actors.Protocol;
using DistSgd.Actors.Steps;
using DistSgd.Actors.Transport;
using DistSgd.Numerics.Training;

namespace DistSgd.Actors.Decentralized;

/// <summary>
/// The peer after a peer loss: opens and widens the <see cref="MembershipAgreement"/> on the survivors, publishes
/// this peer's <see cref="MembershipReport"/> when it may, and carries out the survivors' decision
/// (<see cref="DecisionPlan"/>, redoing the contested step with <see cref="StepUndo"/> where this replica applied
/// other shares), then goes back to what the agreement interrupted. The decisions are the pure classes'; this class
/// does their I/O, and the <see cref="PeerActor"/> routes the Agreeing messages to it.
/// </summary>
internal sealed class PeerLossRound(PeerRun run, IPeerControl control, ITimerScheduler timers, PeerStep step, EpochEndRound epochEnd)
{
    /// <summary>
    /// How long a peer that lost someone waits for the other survivors' shares of its open step before it reports
    /// what it holds (they were sent before anything else; a share missing then is left out of that step everywhere).
    /// </summary>
    private static readonly TimeSpan ReportGrace = TimeSpan.FromSeconds(1);

    /// <summary>Participants lost at an epoch end after their hash arrived, with why: the next step agrees without them.</summary>
    private readonly SortedDictionary<int, ParticipantLost<int>> _deferredSuspects = new();

    private Replica Replica => run.Replica;

    public ParticipantLost<int> ConnectionClosed(DataConnectionLost message)
    {
        // A closed data connection while steps run is a lost peer, like an unreachable member, and detected sooner.
        run.Log.Warning("data connection from peer {0} closed ({1})", message.Sender, message.Reason);
        return new ParticipantLost<int>(message.Sender, LossCause.ConnectionClosed, message.Reason);
    }

    public void Defer(ParticipantLost<int> lost)
    {
        // The epoch ends without an agreement, and the next step, if any, starts one.
        _deferredSuspects[lost.Id] = lost;
        run.Log.Info("peer {0} {1} after its hash for epoch {2} arrived", lost.Id, lost.Describe(), Replica.Epoch);
    }

    /// <summary>Opens the agreement on the peers lost while this one compared hashes; false when there were none (or none counts).</summary>
    public bool OpenDeferred()
    {
        if (_deferredSuspects.Count == 0)
            return false;
        // Lost while this peer compared hashes: now that a step waits for them, the survivors agree without them.
        var suspects = _deferredSuspects.Values.ToList();
        _deferredSuspects.Clear();
        // One agreement for all of them; each one's cause is in the log line Defer wrote.
        return Open(null, suspects.Select(s => s.Id).ToList(), suspects[0].Cause, "lost at the end of the last epoch");
    }

    /// <summary>
    /// Counts <paramref name="nodeIds"/> as lost and starts the agreement on the survivors, interrupting the steps
    /// (<paramref name="epochEnd"/> null) or the epoch end; false when none of them is a participant (nothing changes).
    /// </summary>
    public bool Open(object? epochEnd, IReadOnlyCollection<int> nodeIds, LossCause cause, string? detail = null)
    {
        var suspects = nodeIds.Where(id => id != run.NodeId && run.Participants.Contains(id)).ToList();
        if (suspects.Count == 0)
            return false;
        var round = new AgreementWait(new MembershipAgreement(run.Participants, run.NodeId), epochEnd);
        control.BecomeAgreeing(round);
        Suspect(round, suspects, cause, detail, started: true);
        return true;
    }

    /// <summary>Widens the agreement under way by one more lost peer.</summary>
    public void Widen(AgreementWait round, ParticipantLost<int> lost) => Suspect(round, [lost.Id], lost.Cause, lost.Detail, started: false);

    /// <summary>Widens the agreement by <paramref name="nodeIds"/>; when the lost set grew, reports and restarts the timeout.</summary>
    public void Suspect(AgreementWait round, IReadOnlyCollection<int> nodeIds, LossCause cause, string? detail, bool started)
    {
        string why = cause.Describe(detail);
        var suspects = nodeIds.Where(id => id != run.NodeId && run.Participants.Contains(id)).ToList();
        if (suspects.Count == 0 || !round.Agreement.Suspect(suspects))
            return;
        run.Log.Warning("peer {0} {1}: agreeing with the others on the survivors (lost so far: {2})",
                        string.Join(", ", suspects), why, string.Join(", ", round.Agreement.Lost));
        run.Report(new RunProgress.Note($"node {run.NodeId}: peer {string.Join(", ", suspects)} {why}"));
        StartTimers(started);
        Advance(round);
    }

    private void StartTimers(bool started)
    {
        if (started)
            timers.StartSingleTimer(nameof(ReportGraceOver), new ReportGraceOver(), ReportGrace);
        // Every widening gives the survivors still to report a whole timeout.
        timers.StartSingleTimer(nameof(AgreementTimedOut), new AgreementTimedOut(), run.Settings.StepTimeout);
    }

    /// <summary>
    /// A survivor's report: outside an agreement (<paramref name="interrupted"/> the epoch-end state, or null in the steps)
    /// it opens one unless it names nobody this peer still counts; inside one (<paramref name="interrupted"/> the round) it is offered.
    /// </summary>
    public void ReportArrived(MembershipReport report, object? interrupted)
    {
        if (report.RunId != run.Plan.RunId || !run.Participants.Contains(report.NodeId))
        {
            run.DroppedOther++;
            return;
        }
        if (report.NodeId == run.NodeId)
            return;   // this peer's own, offered when it was published
        // A hash that peer published before this report may be redone after the agreement; it publishes its latest
        // hash again once it has decided (after this report, so that copy arrives after it).
        run.HashRound.Withdraw(report.NodeId);
        bool started = interrupted is not AgreementWait;
        if (started && !report.Lost.Any(run.Participants.Contains))
            return;   // an agreement this peer has applied already
        var round = interrupted as AgreementWait ?? new AgreementWait(new MembershipAgreement(run.Participants, run.NodeId), interrupted);
        if (started)
            control.BecomeAgreeing(round);
        var before = round.Agreement.Lost.ToList();
        if (round.Agreement.Offer(report) || started)
        {
            run.Log.Warning("node {0} reports {1}; lost now: {2}", report.NodeId, report, string.Join(", ", round.Agreement.Lost));
            if (round.Agreement.Lost.Except(before).Any())
                run.Report(new RunProgress.Note($"node {run.NodeId}: node {report.NodeId} counts peer {string.Join(", ", report.Lost)} as lost"));
            StartTimers(started);
        }
        Advance(round);
    }

    /// <summary>The report grace is over: this peer reports what it holds.</summary>
    public void GraceOver(AgreementWait round)
    {
        round.GraceOver = true;
        Advance(round);
    }

    public void Advance(AgreementWait round)
    {
        var agreement = round.Agreement;
        if (agreement.Problem() is { } problem)
        {
            control.LeftOut(problem);
            return;
        }
        var gather = run.Buffer.Gather;
        bool gathering = round.InterruptedSteps && gather.IsOpen;
        // An all-reduce's open step holds no share to apply (only the metadata): nothing to wait for, nothing held.
        bool reduces = gather.Reduction is not null;
        if (agreement.OwnReportDue && agreement.MayReport(round.GraceOver, gathering && !reduces ? gather.WaitingFor : null, Replica.Step))
        {
            bool holds = gathering && !reduces && gather.Step == Replica.Step;
            var undo = run.Undo;
            var report = new MembershipReport(run.Plan.RunId, run.NodeId, agreement.Lost.ToArray(), undo.AppliedStep, undo.Senders,
                                              Replica.Step, holds ? gather.Replies.Select(r => r.Participant).ToArray() : []);
            agreement.Reported(report);
            control.Publish(report);
        }
        if (agreement.TryDecide() is { } decision)
            ApplyDecision(round, decision);
    }

    public void Timeout(AgreementWait round)
    {
        var silent = round.Agreement.MissingReports.Where(id => id != run.NodeId).ToList();
        if (silent.Count > 0)
            Suspect(round, silent, LossCause.Silent, $"no membership report within distsgd.step-timeout ({run.Settings.StepTimeout.TotalSeconds:0.#}s)", started: false);
        else
            Advance(round);
    }

    /// <summary>
    /// Carries out the survivors' decision (<see cref="DecisionPlan"/>): drops the lost peers, applies the contested step
    /// with the agreed shares (or redoes it, when this replica applied it with others), and goes on at the decision's next step.
    /// </summary>
    private void ApplyDecision(AgreementWait round, MembershipDecision decision)
    {
        timers.Cancel(nameof(AgreementTimedOut));
        timers.Cancel(nameof(ReportGraceOver));
        var plan = DecisionPlan.For(decision, run.NodeId, run.Undo.AppliedStep, Replica.Step, round.InterruptedSteps, run.Buffer.Gather.Step, Replica.StepInEpoch, Replica.StepsPerEpoch,
                                    reduces: run.Buffer.Gather.Reduces);
        if (plan.Problem is not null)
        {
            control.Fail(plan.Problem);
            return;
        }
        bool wasLead = run.IsLead;
        run.Participants.ExceptWith(decision.Lost);
        foreach (int id in decision.Lost)
            _deferredSuspects.Remove(id);
        step.ReshardNextEpoch();
        string text = decision.Describe();
        run.Log.Warning(text);
        if (run.IsLead)
            run.Report(new RunProgress.Note(text));
        run.SkippedSteps += plan.SkippedSteps;
        var (openStep, position) = (Replica.Step, Replica.StepInEpoch);
        if ((plan.Redo || plan.ApplyOpen) && !ApplyAgreedShares(decision, plan))
            return;
        if (plan.Abandoned)
            Abandon(decision, plan);
        if (run.Plan.SyncEvery > 1 && round.InterruptedSteps && !plan.Abandoned)
            AlignRound(decision, plan, openStep, position);
        step.Loop.GoOnAt(plan.NextStep);
        if (!wasLead && run.IsLead)
        {
            run.Report(new RunProgress.Note($"node {run.NodeId} leads the run now (lowest surviving node id): it evaluates and writes the results"));
            if (UnscoredEpochs(Replica.Epochs) is { } unscored)
                run.Report(new RunProgress.Note(unscored));
            foreach (var earlier in Replica.Epochs)
                run.Report(new RunProgress.EpochCompleted(earlier));
        }
        if (plan.Then == AfterDecision.EndEpoch)
        {
            epochEnd.Start();
            return;
        }
        // This peer's latest hash again: the others dropped what it published before its report.
        if (epochEnd.LastHash is not null)
            control.Publish(epochEnd.LastHash);
        Resume(plan.Then == AfterDecision.NextStep ? null : round.EpochEnd);
    }

    /// <summary>
    /// What a new lead says about the epochs the lost lead evaluated: only the lead scores θ on the test set, so their
    /// test loss and accuracy are not known here (θ of those epochs is gone); null when there are none.
    /// </summary>
    public static string? UnscoredEpochs(IEnumerable<EpochMetrics> epochs)
    {
        var unscored = epochs.Where(m => !m.HasTestScore).Select(m => m.Epoch).ToList();
        if (unscored.Count == 0)
            return null;
        string which = unscored.Count == 1 ? $"epoch {unscored[0]}" : $"epochs {string.Join(", ", unscored)}";
        return $"the test loss and accuracy of {which} are not known: the lost lead scored them, θ of then is gone " +
               "(shown as \"not known\", blank in metrics.csv, null in --json and summary.json)";
    }

    /// <summary>Applies the contested step with the agreed shares, first undoing it when this replica applied it with others.</summary>
    private bool ApplyAgreedShares(MembershipDecision decision, DecisionPlan plan)
    {
        if (plan.Redo)
        {
            run.Undo.Restore(Replica.Parameters, Replica.Optimizer);
            Replica.Totals.UndoLastStep();
            step.Redoing(decision.Step);   // local SGD: the round start and optimizer step of that averaging step
        }
        var gather = run.Buffer.Gather;
        var shares = plan.Redo ? run.Undo.Shares.ToList() : gather.Replies.Cast<GradientShare>().ToList();
        gather.Begin(decision.Step, decision.Senders);
        foreach (var share in shares.Where(s => decision.Senders.Contains(s.NodeId)))
            gather.Offer(share);
        if (!gather.IsComplete)
        {
            control.Fail($"step {decision.Step}: the agreed shares of nodes {string.Join(", ", decision.Senders)} are not all held here");
            return false;
        }
        if (!step.Loop.Apply())
            return false;
        if (plan.ApplyOpen)
            Replica.Advance();   // a step of the epoch; the step number is the decision's (below)
        return true;
    }

    /// <summary>
    /// Local SGD: every survivor goes on at the same place in the epoch, the furthest any of them had reached
    /// (<see cref="DecisionPlan.RoundPosition"/>; the batches between are skipped), with the optimizer's step moved along
    /// from a place where it is the same on every survivor;
    /// a survivor that (re)applied the contested averaging step starts the open round from its θ, the agreed average
    /// that the others started it from.
    /// </summary>
    private void AlignRound(MembershipDecision decision, DecisionPlan plan, long openStep, int position)
    {
        bool reapplied = plan.Redo || plan.ApplyOpen;
        // A survivor that kept the contested step may have taken its open averaging step's own update already: its
        // optimizer's step counts from where that step opened.
        var (target, optimizerStep) = DecisionPlan.RoundPosition(decision.Step, decision.NextStep, openStep, position, reapplied,
                                                                 reapplied ? Replica.Optimizer.State.Step : step.OptimizerStepAtOpen);
        if (optimizerStep != Replica.Optimizer.State.Step)
            Replica.Optimizer.Restore(new Numerics.Optim.SgdState(optimizerStep, Replica.Optimizer.State.Velocity));
        if (target != Replica.StepInEpoch)
        {
            run.Log.Warning("local SGD: node {0} goes on at step {1} of the epoch (was at {2}) with the other survivors", run.NodeId, target + 1, Replica.StepInEpoch + 1);
            Replica.MoveTo(Replica.Step, Replica.Epoch, target);
        }
        if (reapplied)
            step.StartRoundHere();
    }

    /// <summary>
    /// No survivor keeps the contested step (an all-reduce that did not finish everywhere): this replica takes it back if
    /// it applied it (θ and the optimizer state from <see cref="StepUndo"/>, the step un-counted, the step in the epoch back
    /// by one, its hash of a redone epoch end forgotten), and every survivor records the step before the next as applied
    /// with no shares, so that their reports agree again. The next step has the same step in the epoch: the survivors redo
    /// the contested step's batches.
    /// </summary>
    private void Abandon(MembershipDecision decision, DecisionPlan plan)
    {
        if (decision.RolledBack.Count > 0)
        {
            string text = $"step {decision.Step}: the {run.Plan.Collective.Name()} all-reduce did not finish on every survivor: taken back by nodes " +
                          $"{string.Join(", ", decision.RolledBack)}, its batches redone at step {plan.NextStep}";
            run.Log.Warning(text);
            if (run.IsLead)
                run.Report(new RunProgress.Note(text));
        }
        if (plan.TakeBack)
        {
            run.Undo.Restore(Replica.Parameters, Replica.Optimizer);
            Replica.Totals.UndoLastStep();
            // Back to the contested step's place: one place with gradient averaging; with local SGD, also past the local
            // steps of the next round this peer ran on into (they were its own; their totals stay counted).
            Replica.MoveTo(Replica.Step, Replica.Epoch, Replica.StepInEpoch - (int)(Replica.Step - decision.Step));
            if (epochEnd.LastHash?.Epoch == Replica.Epoch)
                epochEnd.ForgetLastHash();
        }
        step.Abandoning(decision.Step, plan.TakeBack);
        run.Undo.Abandoned(plan.NextStep - 1, run.Shares.Release);
    }

    /// <summary>Goes back to what the agreement interrupted: the next step, the hash round, or the wait for a resync.</summary>
    private void Resume(object? interrupted)
    {
        switch (interrupted)
        {
            case HashWait wait:
                epochEnd.Verify(wait);
                break;
            case ResyncWait wait:
                epochEnd.AwaitResync(wait);   // applied at once if it came while the survivors agreed
                break;
            default:
                control.BecomeStepping();
                step.Loop.Begin();
                break;
        }
    }
}
