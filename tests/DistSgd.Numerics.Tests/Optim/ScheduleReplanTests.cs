using DistSgd.Numerics.Optim;
using DistSgd.Numerics.Training;

namespace DistSgd.Numerics.Tests.Optim;

/// <summary>
/// Re-planning a learning-rate schedule when the run's length in steps changes under it (a membership change
/// re-shards the training set): <see cref="LearningRateSchedule.Replan"/>.
/// </summary>
public class ScheduleReplanTests
{
    // A fault-free run of 4 epochs × 100 steps; a worker lost in epoch 2 makes epochs 3 and 4 take 200 steps each.
    private static readonly LearningRateSchedule.Cosine Planned = new(400, 0.1);
    private const long ChangeStep = 200;
    private const long Remaining = 400;

    [Fact]
    public void A_replanned_cosine_reaches_its_final_rate_exactly_after_the_last_step_and_not_before()
    {
        var replanned = Planned.Replan(ChangeStep, Remaining);
        long end = ChangeStep + Remaining;
        Assert.Equal(0.1, replanned.RateAt(end, 1.0));
        Assert.True(replanned.RateAt(end - 1, 1.0) > 0.1);
        // The fault-free length would have reached η_min half-way through the survivors' epochs (the bug).
        Assert.Equal(0.1, Planned.RateAt(400, 1.0));
        Assert.True(replanned.RateAt(400, 1.0) > 0.2);   // 0.1 + 0.9·(1 + cos(3π/4))/2 ≈ 0.23
        Assert.Equal(end, replanned.PlannedSteps);
    }

    [Fact]
    public void A_replan_goes_on_from_the_rate_reached_and_leaves_the_steps_before_it_alone()
    {
        var replanned = Planned.Replan(ChangeStep, Remaining);
        for (long step = 0; step <= ChangeStep; step++)
            Assert.Equal(Planned.RateAt(step, 0.05), replanned.RateAt(step, 0.05));
        // No jump at the change: the step after it moves by less than the fault-free schedule's own step there.
        double before = Planned.RateAt(ChangeStep, 1.0) - Planned.RateAt(ChangeStep + 1, 1.0);
        double after = replanned.RateAt(ChangeStep, 1.0) - replanned.RateAt(ChangeStep + 1, 1.0);
        Assert.InRange(after, 0, before);
    }

    [Fact]
    public void A_replanned_cosine_falls_monotonically_to_its_end()
    {
        var replanned = Planned.Replan(ChangeStep, Remaining);
        for (long step = 1; step <= ChangeStep + Remaining + 10; step++)
            Assert.True(replanned.RateAt(step, 1.0) <= replanned.RateAt(step - 1, 1.0), $"η rises at step {step}");
    }

    [Fact]
    public void A_cosine_replanned_over_the_steps_it_already_had_left_has_its_own_rates()
    {
        // Mathematically the same curve: π·t/T continued from π·c/T over T − c steps.
        var replanned = new LearningRateSchedule.Replanned(Planned, 150, 250);
        for (long step = 0; step <= 400; step += 7)
            Assert.Equal(Planned.RateAt(step, 1.0), replanned.RateAt(step, 1.0), 12);
    }

    [Fact]
    public void A_replan_that_changes_nothing_returns_the_same_schedule()
    {
        Assert.Same(Planned, Planned.Replan(150, 250));   // it already ends at step 400: every fault-free epoch start
        Assert.Same(Planned, Planned.Replan(150, 0));     // no step left
        Assert.Same(LearningRateSchedule.Constant.Instance, LearningRateSchedule.Constant.Instance.Replan(150, 80));
        var unsized = new LearningRateSchedule.StepDecay(100, 0.5);
        Assert.Same(unsized, unsized.Replan(150, 80));    // a step schedule without a planned length keeps its steps
    }

    [Fact]
    public void A_replan_is_a_pure_function_of_the_schedule_the_step_and_the_steps_left()
    {
        var a = Planned.Replan(ChangeStep, Remaining).Replan(400, 150);
        var b = Planned.Replan(ChangeStep, Remaining).Replan(400, 150);
        Assert.Equal(a, b);
        for (long step = 0; step <= 600; step++)
            Assert.Equal(BitConverter.DoubleToInt64Bits(a.RateAt(step, 0.05)), BitConverter.DoubleToInt64Bits(b.RateAt(step, 0.05)));
        Assert.Equal([new ScheduleReplan(ChangeStep, Remaining), new ScheduleReplan(400, 150)], a.Replans);
        Assert.Same(Planned, a.Original);
        Assert.Equal(a, Planned.WithReplans(a.Replans));
    }

    [Fact]
    public void A_second_replan_goes_on_from_the_first_and_ends_where_it_says()
    {
        var first = Planned.Replan(ChangeStep, Remaining);        // ends at 600
        var second = first.Replan(400, 100);                      // a worker joins back: 100 steps left from 400
        Assert.Equal(first.RateAt(400, 1.0), second.RateAt(400, 1.0));
        Assert.Equal(first.RateAt(399, 1.0), second.RateAt(399, 1.0));
        Assert.Equal(0.1, second.RateAt(500, 1.0));
        Assert.True(second.RateAt(499, 1.0) > 0.1);
    }

    [Fact]
    public void A_replanned_step_decay_decays_at_the_same_fractions_of_the_run()
    {
        // Planned: 300 steps, ×0.1 at a third and two thirds (every 100 steps); from step 150 the run has 300 steps left.
        var planned = new LearningRateSchedule.StepDecay(100, 0.1, 300);
        var replanned = planned.Replan(150, 300);
        Assert.Equal(0.001, planned.RateAt(300, 1.0), 12);       // unchanged, the run's last 150 steps would run at ×0.001
        // Position 150 at step 150 to position 300 at step 450: the second decay (position 200) at step 250.
        Assert.Equal(0.1, replanned.RateAt(249, 1.0), 12);
        Assert.Equal(0.01, replanned.RateAt(250, 1.0), 12);
        Assert.Equal(0.01, replanned.RateAt(449, 1.0), 12);      // no third decay inside the run
        Assert.Equal(0.001, replanned.RateAt(450, 1.0), 12);
    }

    [Fact]
    public void The_optimizer_replans_at_its_own_step_and_a_restored_optimizer_has_the_same_rates()
    {
        var options = new SgdOptions(0.05, momentum: 0.9, schedule: Planned);
        var optimizer = new SgdOptimizer(options, 1);
        var theta = new float[] { 1f };
        for (int i = 0; i < ChangeStep; i++)
            optimizer.Step(theta, [0.01f]);
        Assert.True(optimizer.Replan(Remaining));
        Assert.False(optimizer.Replan(Remaining));   // already ends there
        Assert.Equal([new ScheduleReplan(ChangeStep, Remaining)], optimizer.Schedule.Replans);

        var restored = new SgdOptimizer(options, 1);
        restored.Restore(optimizer.State);
        restored.RestoreReplans(optimizer.Schedule.Replans);
        Assert.Equal(optimizer.Schedule, restored.Schedule);
        Assert.Equal(optimizer.CurrentLearningRate, restored.CurrentLearningRate);
        Assert.Same(Planned, new SgdOptimizer(options, 1).Schedule);   // never re-planned: the options' own schedule
    }

    [Fact]
    public void A_run_resumed_from_a_checkpoint_after_a_replan_ends_with_the_same_bits_as_the_uninterrupted_one()
    {
        var options = new SgdOptions(0.05, momentum: 0.9, weightDecay: 1e-3, schedule: Planned);
        static float[] Gradient(long step) => [MathF.Sin(step * 0.1f), MathF.Cos(step * 0.07f), 0.3f];

        (float[] Theta, SgdOptimizer Optimizer) Run(long from, long to, float[] theta, SgdOptimizer optimizer)
        {
            for (long step = from; step < to; step++)
            {
                if (step == ChangeStep)
                    optimizer.Replan(Remaining);
                optimizer.Step(theta, Gradient(step));
            }
            return (theta, optimizer);
        }

        var (whole, _) = Run(0, ChangeStep + Remaining, [0.5f, -0.5f, 1f], new SgdOptimizer(options, 3));

        // Interrupted at step 350, after the re-plan: the checkpoint goes through its file format.
        var (theta, optimizer) = Run(0, 350, [0.5f, -0.5f, 1f], new SgdOptimizer(options, 3));
        var checkpoint = Checkpoint.Capture("run", 350, 3, 150, theta, optimizer, new EarlyStopping(0, 0), EpochProgress.Empty, []);
        var read = CheckpointFile.Deserialize(CheckpointFile.Serialize(checkpoint), "x.ckpt");
        Assert.Equal(optimizer.Schedule.Replans, read.Replans);
        var resumedTheta = new float[3];
        var resumedOptimizer = new SgdOptimizer(options, 3);
        read.RestoreInto(resumedTheta, resumedOptimizer, new EarlyStopping(0, 0));
        var (resumed, _) = Run(350, ChangeStep + Remaining, resumedTheta, resumedOptimizer);

        Assert.Equal(whole, resumed);
    }
}
