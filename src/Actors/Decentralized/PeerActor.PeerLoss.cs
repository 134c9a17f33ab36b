using Akka.Actor;
using Akka.Event;
using DistSgd.Actors.Steps;
using DistSgd.Actors.Transport;

namespace DistSgd.Actors.Decentralized;

// The PeerActor after a peer loss: the survivors agree on who is left and on the contested step's shares.
public sealed partial class PeerActor
{
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
}
