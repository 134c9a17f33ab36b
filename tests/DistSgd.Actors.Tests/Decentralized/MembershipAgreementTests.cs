using DistSgd.Actors.Decentralized;

namespace DistSgd.Actors.Tests.Decentralized;

public class MembershipAgreementTests
{
    private static MembershipReport Report(int node, int[] lost, long applied, int[] appliedSenders, long open, int[] held) =>
        new("run", node, lost, applied, appliedSenders, open, held);

    [Fact]
    public void A_share_delivered_to_some_peers_only_is_left_out_and_the_peers_that_applied_it_redo_the_step()
    {
        // Node 3 crashed while sending its share of step 7: node 0 got it and finished step 7 (and opened step 8),
        // nodes 1 and 2 did not and still gather step 7.
        var reports = new[]
        {
            Report(0, [3], 7, [0, 1, 2, 3], 8, [0]),
            Report(1, [3], 6, [0, 1, 2, 3], 7, [0, 1, 2]),
            Report(2, [3], 6, [0, 1, 2, 3], 7, [0, 1, 2]),
        };

        var decision = MembershipAgreement.Decide([0, 1, 2, 3], reports);

        Assert.Null(decision.Problem);
        Assert.Equal([0, 1, 2], decision.Survivors);
        Assert.Equal([3], decision.Lost);
        Assert.Equal(7, decision.Step);
        Assert.Equal([0, 1, 2], decision.Senders);
        Assert.Equal([0], decision.RolledBack);
        Assert.Equal(9, decision.NextStep);              // node 0's share of step 8 is stale for everyone
        // The same decision whatever the order the reports arrived in.
        Assert.Equal(decision.Senders, MembershipAgreement.Decide([0, 1, 2, 3], reports.Reverse().ToList()).Senders);
    }

    [Fact]
    public void When_every_survivor_got_the_lost_peers_share_the_step_keeps_it_and_nobody_redoes_anything()
    {
        var decision = MembershipAgreement.Decide([0, 1, 2], [Report(0, [2], 4, [0, 1, 2], 5, [0]), Report(1, [2], 4, [0, 1, 2], 5, [1])]);

        Assert.Equal((4L, 6L), (decision.Step, decision.NextStep));
        Assert.Equal([0, 1, 2], decision.Senders);
        Assert.Empty(decision.RolledBack);
    }

    [Fact]
    public void When_no_survivor_finished_the_open_step_it_starts_again_without_the_lost_peer()
    {
        // Step 5 is open everywhere; node 1 holds the lost node 2's share, node 0 does not.
        var decision = MembershipAgreement.Decide([0, 1, 2], [Report(0, [2], 4, [0, 1, 2], 5, [0, 1]), Report(1, [2], 4, [0, 1, 2], 5, [0, 1, 2])]);

        Assert.Equal(4, decision.Step);                  // the last applied step stands as it is
        Assert.Empty(decision.RolledBack);
        Assert.Equal(6, decision.NextStep);              // step 5's shares are stale: the survivors compute again
    }

    [Fact]
    public void Local_sgd_contests_the_last_averaging_step_and_goes_on_past_every_survivor_s_local_steps()
    {
        // H = 4, averaging step 11 (the step before it: 7). Node 3 crashed while sending its share of step 11: nodes 0 and
        // 1 got it, averaged, and ran on into the next round's local steps (0 has step 14 open, 1 step 12); node 2 did not
        // and still gathers step 11. A local step is a peer's own: the reports name the last averaging step applied.
        var reports = new[]
        {
            Report(0, [3], 11, [0, 1, 2, 3], 14, [0]),
            Report(1, [3], 11, [0, 1, 2, 3], 12, [1]),
            Report(2, [3], 7, [0, 1, 2, 3], 11, [0, 1, 2]),
        };

        var decision = MembershipAgreement.Decide([0, 1, 2, 3], reports);

        Assert.Null(decision.Problem);                   // was "survivors more than one step apart cannot be reconciled"
        Assert.Equal(11, decision.Step);
        Assert.Equal([0, 1, 2], decision.Senders);
        Assert.Equal([0, 1], decision.RolledBack);       // they redo step 11 without node 3's change
        Assert.Equal(15, decision.NextStep);             // past node 0's open step 14
    }

    [Fact]
    public void Survivors_more_than_one_step_apart_are_a_problem_not_a_guess()
    {
        var decision = MembershipAgreement.Decide([0, 1, 2], [Report(0, [2], 6, [0, 1, 2], 7, []), Report(1, [2], 4, [0, 1, 2], 5, [])]);

        Assert.Contains("node 1 applied step 4", decision.Problem);
    }

    [Fact]
    public void A_decision_waits_for_every_survivors_report_for_the_same_lost_set()
    {
        var agreement = new MembershipAgreement([0, 1, 2, 3, 4], self: 1);
        Assert.True(agreement.Suspect([3]));
        Assert.False(agreement.Suspect([3]));            // already counted
        agreement.Offer(Report(1, [3], 2, [0, 1, 2, 3, 4], 3, [0, 1, 2, 4]));
        agreement.Offer(Report(0, [3], 2, [0, 1, 2, 3, 4], 3, [0, 1, 2, 4]));
        Assert.Null(agreement.TryDecide());
        Assert.Equal([2, 4], agreement.MissingReports);

        // Node 2 has lost node 4 as well: its report widens the lost set, and the earlier reports no longer count.
        Assert.True(agreement.Offer(Report(2, [3, 4], 2, [0, 1, 2, 3, 4], 3, [0, 1, 2])));
        Assert.Equal([3, 4], agreement.Lost);
        Assert.Equal([0, 1], agreement.MissingReports);
        agreement.Offer(Report(1, [3, 4], 2, [0, 1, 2, 3, 4], 3, [0, 1, 2, 4]));
        Assert.Null(agreement.TryDecide());
        agreement.Offer(Report(0, [3, 4], 2, [0, 1, 2, 3, 4], 3, [0, 1, 2, 4]));

        var decision = agreement.TryDecide();
        Assert.NotNull(decision);
        Assert.Equal([0, 1, 2], decision.Survivors);
        Assert.Equal([3, 4], decision.Lost);
        Assert.Equal(2, decision.Step);
        Assert.Equal(4, decision.NextStep);
    }

    [Fact]
    public void A_peer_that_the_others_count_as_lost_knows_it()
    {
        var agreement = new MembershipAgreement([0, 1, 2], self: 2);
        agreement.Offer(Report(0, [2], 0, [0, 1, 2], 1, [0, 1]));

        Assert.True(agreement.SelfExcluded);
        Assert.Null(agreement.TryDecide());
    }

    [Fact]
    public void A_peer_reports_once_per_lost_set_and_not_while_its_step_waits_for_a_survivor_that_sent_its_share()
    {
        var agreement = new MembershipAgreement([0, 1, 2, 3], self: 0);
        agreement.Suspect([3]);
        Assert.True(agreement.OwnReportDue);
        // Step 5 still waits for node 2, which has not reported: its share may be on the way.
        Assert.False(agreement.MayReport(graceOver: false, waitingFor: [2], openStep: 5));
        Assert.True(agreement.MayReport(graceOver: true, waitingFor: [2], openStep: 5));
        Assert.True(agreement.MayReport(graceOver: false, waitingFor: null, openStep: 5));   // gathers nothing
        agreement.Offer(Report(2, [3], 3, [0, 1, 2, 3], 4, [0, 1, 2]));                     // node 2 is a step behind
        Assert.True(agreement.MayReport(graceOver: false, waitingFor: [2], openStep: 5));

        agreement.Reported(Report(0, [3], 4, [0, 1, 2, 3], 5, [0, 1]));
        Assert.False(agreement.OwnReportDue);
        agreement.Offer(Report(1, [2, 3], 4, [0, 1, 2, 3], 5, [0, 1]));                     // the lost set grows
        Assert.True(agreement.OwnReportDue);
    }

    [Fact]
    public void A_peer_stops_when_the_others_count_it_lost_or_it_is_on_the_minority_side()
    {
        var agreement = new MembershipAgreement([0, 1, 2], self: 2);
        Assert.Null(agreement.Problem());
        agreement.Suspect([0, 1]);
        Assert.StartsWith("this peer reaches only 1 of the run's 3 peers (nodes 2; lost 0, 1): on the minority side", agreement.Problem());

        var excluded = new MembershipAgreement([0, 1, 2], self: 2);
        excluded.Offer(Report(0, [2], 0, [0, 1, 2], 1, [0, 1]));
        Assert.StartsWith("the other peers count this peer (node 2) as lost", excluded.Problem());
    }

    [Fact]
    public void A_decision_says_who_goes_on_which_shares_the_step_uses_and_who_redoes_it()
    {
        var decision = MembershipAgreement.Decide([0, 1, 2, 3], [Report(0, [3], 7, [0, 1, 2, 3], 8, [0]), Report(1, [3], 6, [0, 1, 2, 3], 7, [0, 1, 2]),
                                                                 Report(2, [3], 6, [0, 1, 2, 3], 7, [0, 1, 2])]);
        Assert.Equal("peers 3 lost: 3 peers go on (nodes 0, 1, 2); step 7 uses the shares of nodes 0, 1, 2, redone by nodes 0", decision.Describe());
    }

    [Theory]
    [InlineData(new[] { 0, 1, 2 }, new[] { 0, 1 }, true)]
    [InlineData(new[] { 0, 1, 2 }, new[] { 1, 2 }, true)]
    [InlineData(new[] { 0, 1, 2 }, new[] { 2 }, false)]
    [InlineData(new[] { 0, 1, 2, 3 }, new[] { 0, 3 }, true)]   // exactly half, with the lowest node id
    [InlineData(new[] { 0, 1, 2, 3 }, new[] { 1, 2 }, false)]  // the other half
    [InlineData(new[] { 0, 1 }, new[] { 0 }, true)]
    [InlineData(new[] { 0, 1 }, new[] { 1 }, false)]
    public void Only_a_majority_or_the_half_with_the_lowest_node_id_goes_on(int[] before, int[] survivors, bool goesOn)
    {
        Assert.Equal(goesOn, MembershipAgreement.HasQuorumOf(before, survivors));
    }
}
