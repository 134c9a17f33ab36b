using DistSgd.Actors.Decentralized;
using DistSgd.Actors.Steps;

namespace DistSgd.Actors.Tests.Decentralized;

public class ResyncCheckTests
{
    private static ReplicaResync Resync(int source, int length = 3, float value = 1f, string run = "run") =>
        new(run, 2, source, [1, 2], 10, Enumerable.Repeat(value, length).ToArray(), Enumerable.Repeat(0f, length).ToArray());

    [Fact]
    public void A_replica_is_overwritten_only_by_the_agreed_source_with_the_right_shape_and_finite_values()
    {
        var check = new ResyncCheck();
        Assert.Equal(GatherOutcome.Accepted, check.Judge(Resync(0), "run", 0, 3, 3));
        Assert.Equal(GatherOutcome.NotParticipant, check.Judge(Resync(1), "run", 0, 3, 3));
        Assert.Equal(GatherOutcome.ForeignRun, check.Judge(Resync(0, run: "other"), "run", 0, 3, 3));
        Assert.Equal(GatherOutcome.WrongLength, check.Judge(Resync(0, length: 2), "run", 0, 3, 3));
        Assert.Equal(GatherOutcome.WrongLength, check.Judge(Resync(0), "run", 0, 3, 0));          // no momentum: no velocity
        Assert.Equal(GatherOutcome.NonFinite, check.Judge(Resync(0, value: float.PositiveInfinity), "run", 0, 3, 3));
        Assert.Equal(5, check.DroppedTotal);
    }

    [Fact]
    public void A_resync_is_admitted_from_a_participant_for_this_epoch_or_the_next_and_the_peers_own_is_ignored()
    {
        var check = new ResyncCheck();
        Assert.Equal(GatherOutcome.Accepted, check.Admit(Resync(1), "run", self: 0, epoch: 2, participants: [0, 1, 2]));
        Assert.Equal(GatherOutcome.Accepted, check.Admit(Resync(1), "run", self: 0, epoch: 1, participants: [0, 1, 2]));   // held for epoch 2
        Assert.Null(check.Admit(Resync(0), "run", self: 0, epoch: 2, participants: [0, 1, 2]));                             // its own
        Assert.Null(check.Admit(Resync(1), "run", self: 0, epoch: 3, participants: [0, 1, 2]));                             // that round is over
        Assert.Equal(GatherOutcome.FutureStep, check.Admit(Resync(1), "run", self: 0, epoch: 0, participants: [0, 1, 2]));
        Assert.Equal(GatherOutcome.NotParticipant, check.Admit(Resync(3), "run", self: 0, epoch: 2, participants: [0, 1, 2]));
        Assert.Equal(GatherOutcome.ForeignRun, check.Admit(Resync(1, run: "other"), "run", self: 0, epoch: 2, participants: [0, 1, 2]));
        Assert.Equal(3, check.DroppedTotal);
    }

    [Fact]
    public void A_resync_that_came_early_is_held_until_its_round_and_forgotten_after()
    {
        var check = new ResyncCheck();
        check.Hold(Resync(1));
        Assert.Null(check.TakeHeld(2, 0));
        Assert.NotNull(check.TakeHeld(2, 1));
        Assert.Null(check.TakeHeld(2, 1));                                                  // taken once
        check.Hold(Resync(1));
        check.ForgetThrough(2);
        Assert.Null(check.TakeHeld(2, 1));
    }
}
