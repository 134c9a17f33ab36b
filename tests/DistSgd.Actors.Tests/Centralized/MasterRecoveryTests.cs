using Akka.Actor;
using DistSgd.Actors.Centralized;

namespace DistSgd.Actors.Tests.Centralized;

public class MasterRecoveryTests
{
    private sealed class Ref(string name) : MinimalActorRef
    {
        public override ActorPath Path { get; } = new RootActorPath(Address.AllSystems) / name;
        public override IActorRefProvider Provider => throw new NotSupportedException();
    }

    private static WorkerPosition At(int index, long step, bool previous = true, string run = "run") =>
        new(run, index, step, 2, (int)step % 10, index, 3, previous);

    [Fact]
    public void The_source_is_the_worker_with_the_highest_step_never_an_older_one()
    {
        var recovery = new MasterRecovery("run");
        var (a, b, c) = (new Ref("a"), new Ref("b"), new Ref("c"));
        Assert.False(recovery.Offer(a, null));                    // has not joined a run
        Assert.False(recovery.Offer(a, At(0, 9, run: "other")));  // another run
        Assert.False(recovery.Offer(a, At(0, -1)));               // joined, holds no θ yet
        Assert.False(recovery.IsUnderWay);
        Assert.True(recovery.Offer(a, At(0, 41)));
        Assert.True(recovery.Offer(b, At(1, 42, previous: false)));
        Assert.True(recovery.Offer(c, At(2, 42)));
        Assert.True(recovery.IsUnderWay);
        // Step 42 wins; of the two holding it, c also holds step 41 (for the momentum).
        Assert.Equal(c, recovery.Source!.Value.Worker);
        recovery.Forget(c);
        Assert.Equal(b, recovery.Source!.Value.Worker);
    }

    [Fact]
    public void Only_theta_of_the_source_s_steps_is_taken()
    {
        var recovery = new MasterRecovery("run");
        recovery.Offer(new Ref("a"), At(0, 7));
        Assert.False(recovery.Accept(new HeldParameters("run", 5, new float[3]), 3));   // older than both held steps
        Assert.False(recovery.Accept(new HeldParameters("run", 7, new float[2]), 3));   // wrong length
        Assert.False(recovery.Accept(new HeldParameters("other", 7, new float[3]), 3));
        Assert.True(recovery.Accept(new HeldParameters("run", 7, [1, 2, 3]), 3));
        Assert.False(recovery.IsComplete);                                               // θ of step 6 still to come
        Assert.True(recovery.Accept(new HeldParameters("run", 6, [2, 3, 4]), 3));
        Assert.True(recovery.IsComplete);
        Assert.Equal([1f, 2f, 3f], recovery.Parameters);
        Assert.Equal([2f, 3f, 4f], recovery.Previous!);
    }
}
