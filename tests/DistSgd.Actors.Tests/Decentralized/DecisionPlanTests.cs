using DistSgd.Actors.Decentralized;

namespace DistSgd.Actors.Tests.Decentralized;

public class DecisionPlanTests
{
    // 3 peers, node 1 lost; the contested step is 7, the survivors go on at 9.
    private static MembershipDecision Decision(int[] rolledBack, string? problem = null) =>
        new([0, 2], [1], 7, [0, 2], rolledBack, 9, problem);

    [Fact]
    public void A_peer_that_applied_the_step_with_other_shares_redoes_it_and_goes_on_stepping()
    {
        var plan = DecisionPlan.For(Decision(rolledBack: [2]), self: 2, appliedStep: 7, step: 8, stepping: true, gatherStep: 8, stepInEpoch: 3, stepsPerEpoch: 10);
        Assert.Equal(new DecisionPlan(true, false, 9, 1, AfterDecision.NextStep), plan);
    }

    [Fact]
    public void A_peer_still_gathering_the_step_applies_it_and_ends_the_epoch_when_it_was_the_last()
    {
        var plan = DecisionPlan.For(Decision(rolledBack: []), self: 0, appliedStep: 6, step: 7, stepping: true, gatherStep: 7, stepInEpoch: 9, stepsPerEpoch: 10);
        Assert.Equal(new DecisionPlan(false, true, 9, 1, AfterDecision.EndEpoch), plan);

        plan = DecisionPlan.For(Decision(rolledBack: []), self: 0, appliedStep: 6, step: 7, stepping: true, gatherStep: 7, stepInEpoch: 4, stepsPerEpoch: 10);
        Assert.Equal(AfterDecision.NextStep, plan.Then);
    }

    [Fact]
    public void At_the_epoch_end_a_redo_hashes_again_and_otherwise_the_peer_resumes_what_it_did()
    {
        var redo = DecisionPlan.For(Decision(rolledBack: [0]), self: 0, appliedStep: 7, step: 8, stepping: false, gatherStep: 7, stepInEpoch: 10, stepsPerEpoch: 10);
        Assert.Equal((true, AfterDecision.EndEpoch), (redo.Redo, redo.Then));

        var keep = DecisionPlan.For(Decision(rolledBack: [2]), self: 0, appliedStep: 7, step: 8, stepping: false, gatherStep: 7, stepInEpoch: 10, stepsPerEpoch: 10);
        Assert.Equal(new DecisionPlan(false, false, 9, 1, AfterDecision.Resume), keep);
    }

    [Fact]
    public void A_decision_this_peer_cannot_carry_out_is_a_problem()
    {
        var notGathering = DecisionPlan.For(Decision(rolledBack: []), self: 0, appliedStep: 6, step: 7, stepping: false, gatherStep: 6, stepInEpoch: 10, stepsPerEpoch: 10);
        Assert.Equal("the survivors agreed on step 7, but this peer applied step 6 and has step 7 open", notGathering.Problem);

        var unreconciled = DecisionPlan.For(Decision(rolledBack: [], problem: "apart"), self: 0, appliedStep: 7, step: 8, stepping: true, gatherStep: 8, stepInEpoch: 1, stepsPerEpoch: 10);
        Assert.Equal("apart", unreconciled.Problem);
    }

    // An all-reduce: a survivor that did not finish step 7 holds no share, so the agreed shares are none.
    private static MembershipDecision Unfinished(int[] rolledBack) => new([0, 2], [1], 7, [], rolledBack, 9);

    [Fact]
    public void With_an_all_reduce_a_peer_that_applied_the_unfinished_step_takes_it_back_and_steps_on()
    {
        var plan = DecisionPlan.For(Unfinished(rolledBack: [2]), self: 2, appliedStep: 7, step: 8, stepping: true, gatherStep: 8, stepInEpoch: 3, stepsPerEpoch: 10, reduces: true);
        Assert.Equal(new DecisionPlan(false, false, 9, 2, AfterDecision.NextStep, Abandoned: true, TakeBack: true), plan);

        // The epoch's last step, taken back at the epoch end: the peer steps again instead of hashing.
        var atEpochEnd = DecisionPlan.For(Unfinished(rolledBack: [2]), self: 2, appliedStep: 7, step: 8, stepping: false, gatherStep: 7, stepInEpoch: 10, stepsPerEpoch: 10, reduces: true);
        Assert.Equal((true, AfterDecision.NextStep), (atEpochEnd.TakeBack, atEpochEnd.Then));
    }

    [Fact]
    public void With_an_all_reduce_a_peer_that_never_finished_the_step_applies_nothing_and_goes_on()
    {
        var plan = DecisionPlan.For(Unfinished(rolledBack: [2]), self: 0, appliedStep: 6, step: 7, stepping: true, gatherStep: 7, stepInEpoch: 9, stepsPerEpoch: 10, reduces: true);
        Assert.Equal(new DecisionPlan(false, false, 9, 2, AfterDecision.NextStep, Abandoned: true), plan);

        // Interrupted at its epoch end (it finished the epoch before the contested step): back to the hash round.
        var resumed = DecisionPlan.For(Unfinished(rolledBack: [2]), self: 0, appliedStep: 6, step: 7, stepping: false, gatherStep: 6, stepInEpoch: 10, stepsPerEpoch: 10, reduces: true);
        Assert.Equal((false, AfterDecision.Resume, (string?)null), (resumed.TakeBack, resumed.Then, resumed.Problem));
    }

    [Fact]
    public void With_an_all_reduce_a_step_nobody_applied_with_shares_skips_only_the_step_after_it()
    {
        // After an earlier abandoned step every survivor reports the step before the next as applied with no shares.
        var plan = DecisionPlan.For(Unfinished(rolledBack: []), self: 0, appliedStep: 7, step: 8, stepping: true, gatherStep: 8, stepInEpoch: 4, stepsPerEpoch: 10, reduces: true);
        Assert.Equal(new DecisionPlan(false, false, 9, 1, AfterDecision.NextStep, Abandoned: true), plan);
    }

    [Fact]
    public void With_the_all_gather_an_empty_agreement_is_applied_as_before()
    {
        var plan = DecisionPlan.For(Unfinished(rolledBack: [2]), self: 2, appliedStep: 7, step: 8, stepping: true, gatherStep: 8, stepInEpoch: 3, stepsPerEpoch: 10);
        Assert.Equal(new DecisionPlan(true, false, 9, 1, AfterDecision.NextStep), plan);
    }

    [Theory]
    // The decision above: contested averaging step 11 at place 8 of the epoch (H = 4), the survivors go on at step 15; the
    // optimizer's step after step 11 is 100 on every survivor. Node 0 had step 14 open at place 11: it redid step 11 (its
    // local steps are gone), so its optimizer's step moves from place 9 (after step 11) to 11.
    [InlineData(14, 11, true, 100, 11, 102)]
    // Node 1 had step 12 open at place 9: it redid step 11 and goes on at place 11 too.
    [InlineData(12, 9, true, 100, 11, 102)]
    // Node 2 gathered step 11 at place 8 and applied it (place 9 now): it skips places 9 and 10.
    [InlineData(11, 8, true, 100, 11, 102)]
    // A survivor that kept step 11 (its shares were the agreed ones) and ran one local step has step 13 open at place 10,
    // where its optimizer's step was 101 when the step opened: it skips one place.
    [InlineData(13, 10, false, 101, 11, 102)]
    public void Local_sgd_survivors_go_on_at_the_same_place_in_the_epoch(long openStep, int position, bool reapplied, long optimizerStep,
                                                                        int expectedPosition, long expectedOptimizerStep)
    {
        Assert.Equal((expectedPosition, expectedOptimizerStep), DecisionPlan.RoundPosition(11, 15, openStep, position, reapplied, optimizerStep));
    }

    [Fact]
    public void A_survivor_that_ran_on_to_the_next_averaging_step_counts_from_where_it_opened_not_from_its_own_update()
    {
        // H = 3 (PeerLossSpec, decision 0131): averaging step 44 at place 14, kept with every share; the optimizer's step after it
        // is 100. Node 3 still had step 44 open and applies it now (place 15); nodes 1 and 2 ran on to the next averaging step,
        // 47 at place 17, which opened at optimizer step 102 and took its own update as it computed its change (103 now).
        // The survivors go on at step 48, all at place 17 with optimizer step 102: the decision drops step 47, and its update.
        Assert.Equal((17, 102L), DecisionPlan.RoundPosition(44, 48, 44, 14, reapplied: true, 100));
        Assert.Equal((17, 102L), DecisionPlan.RoundPosition(44, 48, 47, 17, reapplied: false, 102));
    }

    [Fact]
    public void With_gradient_averaging_nobody_moves()
    {
        // The step-7 decision: node 0 applied 7 and has 8 open at place 4; node 2 gathered 7 at place 3 and applied it.
        Assert.Equal((4, 50L), DecisionPlan.RoundPosition(7, 9, 8, 4, reapplied: false, 50));
        Assert.Equal((4, 50L), DecisionPlan.RoundPosition(7, 9, 7, 3, reapplied: true, 50));
    }
}
