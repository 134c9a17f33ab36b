namespace DistSgd.Actors.Decentralized;

/// <summary>Where a survivor goes once it has carried out the survivors' decision.</summary>
public enum AfterDecision
{
    /// <summary>Open the decision's next step (<see cref="MembershipDecision.NextStep"/>).</summary>
    NextStep,
    /// <summary>End the epoch (again): the contested step was its last, or this peer redid a step the epoch end already hashed.</summary>
    EndEpoch,
    /// <summary>Go back to what the agreement interrupted: the hash round, or the wait for a replica resync.</summary>
    Resume,
}

/// <summary>
/// What one survivor does with the survivors' <see cref="MembershipDecision"/>: redo its last applied step with the
/// agreed shares (<see cref="Redo"/>), or apply its open step with them (<see cref="ApplyOpen"/>), or neither; then go
/// on at <see cref="NextStep"/>. Pure (<see cref="For"/>), so the rules are unit-tested apart from the actor.
/// </summary>
/// <param name="Redo">This replica applied the contested step with other shares: restore it (<see cref="StepUndo"/>) and apply the step again.</param>
/// <param name="ApplyOpen">The contested step is the one this peer gathers: apply it with the agreed shares; it counts as a step of the epoch.</param>
/// <param name="NextStep">The step number the survivors go on with.</param>
/// <param name="SkippedSteps">Step numbers no replica applies (shares already sent for them are stale).</param>
/// <param name="Then">Where the peer goes once the step is (re)applied.</param>
/// <param name="Problem">Why this peer cannot carry out the decision (it must stop), or null.</param>
/// <param name="Abandoned">
/// With an all-reduce, the contested step did not finish on every survivor (its agreed shares are none): no survivor keeps
/// it, each records step <see cref="NextStep"/> − 1 as applied with no shares, and the next step redoes its batches.
/// </param>
/// <param name="TakeBack">Abandoned, and this replica applied the contested step: it restores the state before it.</param>
public sealed record DecisionPlan(bool Redo, bool ApplyOpen, long NextStep, long SkippedSteps, AfterDecision Then, string? Problem = null,
                                  bool Abandoned = false, bool TakeBack = false)
{
    /// <param name="decision">The survivors' decision.</param>
    /// <param name="self">This peer's node id.</param>
    /// <param name="appliedStep">The last step this replica applied (−1: none).</param>
    /// <param name="step">The step this peer has open (stepping), or opens next (at the epoch end).</param>
    /// <param name="stepping">True when the agreement interrupted the steps, false when it interrupted the epoch end.</param>
    /// <param name="gatherStep">The step this peer's gather holds shares of.</param>
    /// <param name="stepInEpoch">Steps of the epoch this replica applied.</param>
    /// <param name="stepsPerEpoch">Steps of the epoch.</param>
    /// <param name="reduces">True with an all-reduce (distsgd.collective = ring or pairwise): a survivor holds no other
    /// peer's share, so a step that did not finish everywhere (no agreed shares) cannot be applied with some; it is
    /// abandoned and its batches redone at the next step.</param>
    public static DecisionPlan For(MembershipDecision decision, int self, long appliedStep, long step, bool stepping, long gatherStep,
                                   int stepInEpoch, int stepsPerEpoch, bool reduces = false)
    {
        long skipped = decision.NextStep - (decision.Step + 1);
        if (decision.Problem is not null)
            return new DecisionPlan(false, false, decision.NextStep, skipped, AfterDecision.NextStep, decision.Problem);
        if (reduces && decision.Senders.Count == 0)
        {
            bool takeBack = decision.RolledBack.Contains(self);
            // The contested step counts on no survivor: its number is skipped too (when anyone applied it).
            long abandoned = decision.NextStep - decision.Step - (decision.RolledBack.Count > 0 ? 0 : 1);
            // A replica that took back an epoch's last step steps again; one that never applied it goes back to what it did.
            var next = stepping || takeBack ? AfterDecision.NextStep : AfterDecision.Resume;
            return new DecisionPlan(false, false, decision.NextStep, abandoned, next, Abandoned: true, TakeBack: takeBack);
        }
        bool redo = decision.RolledBack.Contains(self);
        bool open = appliedStep != decision.Step;
        if (open && (!stepping || gatherStep != decision.Step))
            return new DecisionPlan(false, false, decision.NextStep, skipped, AfterDecision.NextStep,
                                    $"the survivors agreed on step {decision.Step}, but this peer applied step {appliedStep} and has step {step} open");
        var then = stepping
            ? (stepInEpoch + (open ? 1 : 0) == stepsPerEpoch ? AfterDecision.EndEpoch : AfterDecision.NextStep)
            : (redo ? AfterDecision.EndEpoch : AfterDecision.Resume);
        return new DecisionPlan(redo, open, decision.NextStep, skipped, then);
    }

    /// <summary>
    /// Local SGD: where in the epoch a survivor goes on after the decision, and the optimizer's step (η's schedule, in the
    /// replica hash) it goes on with. Every survivor's step numbers and places in the epoch went in step up to the
    /// contested averaging step; each reached its own place since (its local steps), so the place of step
    /// <paramref name="nextStep"/> − 1, the furthest open step, is the same for all: <paramref name="position"/> +
    /// (nextStep − 1 − <paramref name="openStep"/>). The optimizer's step moves by as many places as the survivor skips,
    /// from a place where it is the same on every survivor: the place after the contested step when it (re)applied that
    /// step (its local steps since are gone), else the place of its open step as that step opened
    /// (<paramref name="optimizerStep"/>), before the step's own update: an averaging step takes that update as it computes
    /// the change it sends, and the decision drops the open step (decision 0131).
    /// </summary>
    /// <param name="contested">The contested (averaging) step.</param>
    /// <param name="nextStep">The decision's next step (past every survivor's open step).</param>
    /// <param name="openStep">This survivor's open step when it reported.</param>
    /// <param name="position">Its steps of the epoch applied then.</param>
    /// <param name="reapplied">It redid the contested step or applied it as its open step.</param>
    /// <param name="optimizerStep">Its optimizer's step after the contested step when <paramref name="reapplied"/>; else
    /// when its open step opened.</param>
    public static (int Position, long OptimizerStep) RoundPosition(long contested, long nextStep, long openStep, int position, bool reapplied,
                                                                   long optimizerStep)
    {
        int target = position + (int)(nextStep - 1 - openStep);
        int from = reapplied ? position - (int)(openStep - contested) + 1 : position;
        return (target, optimizerStep + target - from);
    }
}
