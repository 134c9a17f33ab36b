using DistSgd.Actors.Centralized;
using DistSgd.Actors.Protocol;
using DistSgd.Actors.Steps;
using DistSgd.Numerics.Training;

namespace DistSgd.Actors.Tests.Steps;

public class EpochTotalsTests
{
    private static IGradientContribution[] Step(double loss) =>
        [new GradientReply("run", 1, 0, 4, loss, 0.002, [1f]), new GradientReply("run", 1, 1, 4, loss / 3, 0.001, [1f])];

    private static EpochMetrics WithoutNodes(EpochMetrics m) =>
        m with { Communication = m.Communication! with { Nodes = null } };

    [Fact]
    public void A_step_taken_back_leaves_the_totals_exactly_as_they_were()
    {
        var totals = new EpochTotals();
        totals.AddStep(Step(0.1), 8, 0.01, 0.001, 0.05);
        var before = totals.ToMetrics(1, 1, null, false, 0);

        totals.AddStep(Step(0.7), 8, 0.03, 0.002, 0.04);
        totals.UndoLastStep();

        // The same bits, not a subtraction (the lag report's lists compare by reference: the next test checks them).
        Assert.Equal(WithoutNodes(before), WithoutNodes(totals.ToMetrics(1, 1, null, false, 0)));
        Assert.Throws<InvalidOperationException>(totals.UndoLastStep);  // once per step
    }

    [Fact]
    public void Samples_processed_elsewhere_count_in_the_samples_per_second_and_not_in_the_training_loss()
    {
        // Decision 0137: a local step of a local-SGD round gathers this peer's share alone; the others processed theirs too.
        var totals = new EpochTotals();
        totals.AddStep([new GradientReply("run", 1, 0, 4, 2.0, 0.002, [1f])], 4, 0.01, 0.001, 0.05);
        var own = totals.ToMetrics(1, 1, null, false, 0);
        totals.CountSamplesElsewhere(12);
        var all = totals.ToMetrics(1, 1, null, false, 0);

        Assert.Equal(own.Seconds, all.Seconds);
        Assert.Equal(16, Math.Round(all.SamplesPerSecond * all.Seconds));
        Assert.Equal(4, Math.Round(own.SamplesPerSecond * own.Seconds));
        Assert.Equal(own.TrainLoss, all.TrainLoss);   // 2.0 / 4: the others' losses stay with them
    }

    [Fact]
    public void The_lag_report_keeps_each_participants_compute_against_the_steps()
    {
        var totals = new EpochTotals();
        totals.AddStep(Step(0.1), 8, 0.01, 0.001, 0.05);   // worker 0 computes 2 ms, worker 1 1 ms
        totals.AddStep(Step(0.1), 8, 0.01, 0.001, 0.05);
        totals.AddStep([new GradientReply("run", 1, 0, 4, 0.1, 0.002, [1f]), new GradientReply("run", 1, 1, 0, 0, 0, [])], 4, 0.01, 0.001, 0.05);
        totals.CountLate(1);

        var breakdown = totals.ToMetrics(1, 3, null, false, 1).Communication!;

        Assert.Equal(0.002, breakdown.ComputePerStep, 12);
        var nodes = breakdown.Nodes!;
        Assert.Equal([0, 1], nodes.Select(n => n.Id));
        Assert.Equal(new NodeComputeTime(0, 3, 0.006, 3, 0), nodes[0] with { ComputeSeconds = Math.Round(nodes[0].ComputeSeconds, 12) });
        // Its empty share (shard ran out) is no compute; the late gradient is counted.
        Assert.Equal((2L, 0.001, 0L, 1L), (nodes[1].Steps, Math.Round(nodes[1].ComputePerStep, 12), nodes[1].SlowestSteps, nodes[1].LateGradients));
    }

    [Fact]
    public void A_step_taken_back_leaves_the_lag_report_as_it_was()
    {
        var totals = new EpochTotals();
        totals.AddStep(Step(0.1), 8, 0.01, 0.001, 0.05);
        totals.AddStep(Step(0.7), 8, 0.03, 0.002, 0.04);
        totals.UndoLastStep();

        var nodes = totals.ToMetrics(1, 1, null, false, 0).Communication!.Nodes!;
        Assert.Equal([1L, 1L], nodes.Select(n => n.Steps));
        Assert.Equal([1L, 0L], nodes.Select(n => n.SlowestSteps));
    }
}
