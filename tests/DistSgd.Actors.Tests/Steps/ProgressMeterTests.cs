using DistSgd.Actors.Centralized;
using DistSgd.Actors.Protocol;
using DistSgd.Actors.Steps;

namespace DistSgd.Actors.Tests.Steps;

public class ProgressMeterTests
{
    private static GradientReply Reply(int worker, int samples, double computeSeconds) =>
        new("run", 0, worker, samples, samples * 0.5, computeSeconds, [1f]);

    private static ProgressMeter Meter(TimeSpan interval)
    {
        var meter = new ProgressMeter(stepsPerEpoch: 100, interval);
        meter.Start([(0, "worker", "akka.tcp://distsgd@127.0.0.1:1"), (1, "worker", "akka.tcp://distsgd@127.0.0.1:2")]);
        return meter;
    }

    private static RunProgress.StepProgress? Step(ProgressMeter meter, EpochTotals totals, int epoch, long stepInEpoch)
    {
        IGradientContribution[] replies = [Reply(0, 10, 0.001), Reply(1, 10, 0.003)];
        totals.AddStep(replies, 20, wallSeconds: 0.004, updateSeconds: 0, learningRate: 0.1);
        return meter.StepDone(replies, 0.004, totals, epoch, stepInEpoch);
    }

    [Fact]
    public void Reports_the_first_step_of_an_epoch_and_then_at_most_once_per_interval()
    {
        var meter = Meter(TimeSpan.FromHours(1));
        var totals = new EpochTotals();
        Assert.NotNull(Step(meter, totals, epoch: 1, stepInEpoch: 1));
        for (int step = 2; step < 100; step++)
            Assert.Null(Step(meter, totals, 1, step));
        Assert.NotNull(Step(meter, totals, 1, 100));   // the epoch's last step shows a full bar
        Assert.NotNull(Step(meter, new EpochTotals(), epoch: 2, stepInEpoch: 1));
    }

    [Fact]
    public void Counts_each_participants_steps_rate_and_wait()
    {
        var meter = Meter(TimeSpan.Zero);
        var totals = new EpochTotals();
        Step(meter, totals, 1, 1);
        var progress = Step(meter, totals, 1, 2)!;
        Assert.Equal(2, progress.StepInEpoch);
        Assert.Equal(0.5, progress.RunningLoss, 12);
        var (fast, slow) = (progress.Nodes[0], progress.Nodes[1]);
        Assert.Equal(2, fast.Steps);
        Assert.Equal(10 / 0.001, fast.SamplesPerSecond, 6);
        Assert.Equal(0.003, fast.MeanWaitSeconds, 9);   // step wall 4 ms − its 1 ms of compute
        Assert.Equal(0.001, slow.MeanWaitSeconds, 9);
        Assert.All(progress.Nodes, n => Assert.Equal("up", n.State));
    }

    [Fact]
    public void The_live_rate_counts_the_samples_other_peers_processed_at_a_local_step()
    {
        // Decision 0137: a decentralized local step gathers one share; the others' 60 samples count too.
        var meter = Meter(TimeSpan.Zero);
        var totals = new EpochTotals();
        IGradientContribution[] own = [Reply(0, 20, 0.001)];
        totals.AddStep(own, 20, wallSeconds: 0.004, updateSeconds: 0, learningRate: 0.1);
        totals.CountSamplesElsewhere(60);
        var progress = meter.StepDone(own, 0.004, totals, epoch: 1, stepInEpoch: 1)!;
        // The epoch's first step: it began one step's wall time ago, so 80 samples in 4 ms.
        Assert.InRange(progress.SamplesPerSecond, 19_990, 20_010);
    }

    [Fact]
    public void A_lost_participant_shows_its_state()
    {
        var meter = Meter(TimeSpan.Zero);
        meter.SetState(1, "unreachable");
        Assert.Equal(["up", "unreachable"], meter.Snapshot().Select(n => n.State));
    }

    [Fact]
    public void Each_participants_compute_is_shown_against_the_steps_with_its_late_gradients()
    {
        var meter = Meter(TimeSpan.Zero);
        var totals = new EpochTotals();
        Step(meter, totals, 1, 1);
        meter.Late(0);
        var (fast, slow) = (meter.Snapshot()[0], meter.Snapshot()[1]);
        Assert.Equal((0.001, 0.003, 1L), (fast.MeanComputeSeconds, fast.MeanStepComputeSeconds, fast.LateGradients));
        Assert.Equal((0.003, 0.003, 0L), (slow.MeanComputeSeconds, slow.MeanStepComputeSeconds, slow.LateGradients));
    }
}
