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
}
