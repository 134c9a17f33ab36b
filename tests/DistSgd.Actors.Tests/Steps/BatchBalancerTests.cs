using DistSgd.Actors.Centralized;
using DistSgd.Actors.Steps;
using DistSgd.Actors.Protocol;
using DistSgd.Numerics.Training;

namespace DistSgd.Actors.Tests.Steps;

public class BatchBalancerTests
{
    private static IGradientContribution[] Step(double slowSeconds) =>
    [
        new GradientReply("run", 0, 0, 4, 1, 0.004, [1f]),
        new GradientReply("run", 0, 1, 4, 1, slowSeconds, [1f]),
    ];

    [Fact]
    public void The_first_epoch_and_an_epoch_of_equal_speeds_are_cut_the_ordinary_way()
    {
        var balancer = new BatchBalancer(batchPerWorker: 4);
        balancer.StartEpoch([0, 1]);
        Assert.False(balancer.IsBalanced);
        Assert.Equal((1, 2, 0), balancer.Assignment(1, shard: 1, shardCount: 2));
        balancer.Record(Step(0.004));
        balancer.StartEpoch([0, 1]);
        Assert.False(balancer.IsBalanced);
    }

    [Fact]
    public void A_slower_worker_gets_a_smaller_batch_of_consecutive_units_from_the_next_epoch()
    {
        var balancer = new BatchBalancer(batchPerWorker: 4);
        balancer.StartEpoch([0, 1]);
        balancer.Record(Step(0.012));   // worker 1 at a third of the speed
        balancer.StartEpoch([0, 1]);
        Assert.True(balancer.IsBalanced);
        Assert.Equal([new WorkerBatch(0, 6), new WorkerBatch(1, 2)], balancer.Plan);
        Assert.Equal((0, 8, 6), balancer.Assignment(0, 0, 2));
        Assert.Equal((6, 8, 2), balancer.Assignment(1, 1, 2));
        Assert.Empty(balancer.State().Timings);   // measuring afresh for the next plan
    }

    [Fact]
    public void A_resumed_balancer_takes_the_checkpoints_plan_and_timings_when_the_participants_match()
    {
        var state = new BalanceState([new WorkerBatch(0, 7), new WorkerBatch(1, 1)], [new WorkerSpeed(0, 70, 0.07), new WorkerSpeed(1, 10, 0.05)]);
        var resumed = new BatchBalancer(4, state);
        resumed.StartEpoch([1, 0]);
        Assert.Equal(state.Plan, resumed.Plan);
        Assert.Equal(state.Timings, resumed.State().Timings);

        var other = new BatchBalancer(4, state);
        other.StartEpoch([0, 1, 2]);   // a worker joined: planned afresh (no timings yet: the ordinary cut)
        Assert.False(other.IsBalanced);
    }

    [Fact]
    public void A_peer_s_step_counts_once_it_can_no_longer_be_taken_back_and_a_step_taken_again_counts_once()
    {
        var balancer = new BatchBalancer(batchPerWorker: 4);
        balancer.StartEpoch([0, 1]);
        balancer.RecordStep(0, Step(0.012));
        balancer.RecordStep(1, Step(0.5));    // applied, then taken back by a peer loss ...
        balancer.RecordStep(1, Step(0.012));  // ... and applied again: this one counts, the first not
        Assert.Equal([new WorkerSpeed(0, 8, 0.008), new WorkerSpeed(1, 8, 0.024)], balancer.State().Timings);

        var reference = new BatchBalancer(batchPerWorker: 4);
        reference.StartEpoch([0, 1]);
        reference.Record(Step(0.012));
        reference.Record(Step(0.012));
        balancer.StartEpoch([0, 1]);
        reference.StartEpoch([0, 1]);
        Assert.Equal(reference.Plan, balancer.Plan);
        Assert.Equal([new WorkerBatch(0, 6), new WorkerBatch(1, 2)], balancer.Plan);
    }
}
