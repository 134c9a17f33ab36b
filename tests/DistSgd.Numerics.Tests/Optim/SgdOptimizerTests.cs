using DistSgd.Numerics.Optim;

namespace DistSgd.Numerics.Tests.Optim;

public class SgdOptimizerTests
{
    [Fact]
    public void Plain_sgd_steps_against_the_gradient()
    {
        var optimizer = new SgdOptimizer(new SgdOptions(0.5), 3);
        var theta = new float[] { 1, 2, 3 };
        optimizer.Step(theta, new float[] { 1, -2, 0.5f });
        // θ ← θ − η·g
        Assert.Equal(new float[] { 0.5f, 3f, 2.75f }, theta);
        Assert.Equal(1, optimizer.State.Step);
    }

    [Fact]
    public void Momentum_and_weight_decay_match_the_formula_worked_by_hand()
    {
        var optimizer = new SgdOptimizer(new SgdOptions(0.1, momentum: 0.9, weightDecay: 0.01), 1);
        var theta = new float[] { 1f };
        // step 1: g′ = 0.5 + 0.01·1 = 0.51; v = 0.51; θ = 1 − 0.1·0.51 = 0.949
        optimizer.Step(theta, new float[] { 0.5f });
        Assert.Equal(0.949f, theta[0], 6);
        // step 2: g′ = 0.5 + 0.01·0.949 = 0.50949; v = 0.9·0.51 + 0.50949 = 0.96849; θ = 0.949 − 0.096849 = 0.852151
        optimizer.Step(theta, new float[] { 0.5f });
        Assert.Equal(0.852151f, theta[0], 5);
        Assert.Equal(0.96849f, optimizer.State.Velocity[0], 5);
    }

    [Fact]
    public void Nesterov_looks_ahead_along_the_velocity()
    {
        var optimizer = new SgdOptimizer(new SgdOptions(0.1, momentum: 0.5, nesterov: true), 1);
        var theta = new float[] { 0f };
        // v = 1; θ = 0 − 0.1·(1 + 0.5·1) = −0.15
        optimizer.Step(theta, new float[] { 1f });
        Assert.Equal(-0.15f, theta[0], 6);
    }

    [Fact]
    public void Cosine_schedule_anneals_from_the_base_rate_to_the_final_fraction()
    {
        var cosine = new LearningRateSchedule.Cosine(100, 0.1);
        Assert.Equal(1.0, cosine.RateAt(0, 1.0), 12);
        Assert.Equal(0.55, cosine.RateAt(50, 1.0), 12);
        Assert.Equal(0.1, cosine.RateAt(100, 1.0), 12);
        Assert.Equal(0.1, cosine.RateAt(1000, 1.0), 12);
    }

    [Fact]
    public void Step_schedule_multiplies_by_gamma_every_step_size()
    {
        var step = new LearningRateSchedule.StepDecay(10, 0.5);
        Assert.Equal(1.0, step.RateAt(9, 1.0));
        Assert.Equal(0.5, step.RateAt(10, 1.0));
        Assert.Equal(0.25, step.RateAt(25, 1.0));
    }

    [Fact]
    public void The_optimizer_uses_the_scheduled_rate_of_its_step()
    {
        var optimizer = new SgdOptimizer(new SgdOptions(1.0, schedule: new LearningRateSchedule.StepDecay(1, 0.5)), 1);
        var theta = new float[] { 0f };
        optimizer.Step(theta, new float[] { 1f });   // η = 1
        optimizer.Step(theta, new float[] { 1f });   // η = 0.5
        Assert.Equal(-1.5f, theta[0]);
    }

    [Theory]
    [InlineData(0.0, 0.0, 0.0)]
    [InlineData(-0.1, 0.0, 0.0)]
    [InlineData(double.NaN, 0.0, 0.0)]
    [InlineData(double.PositiveInfinity, 0.0, 0.0)]
    [InlineData(0.1, 1.0, 0.0)]
    [InlineData(0.1, -0.5, 0.0)]
    [InlineData(0.1, 0.0, -1.0)]
    public void Invalid_options_are_refused_at_construction(double rate, double momentum, double decay)
    {
        Assert.ThrowsAny<ArgumentException>(() => new SgdOptions(rate, momentum, decay));
    }

    [Fact]
    public void Saved_state_restores_an_identical_continuation()
    {
        var options = new SgdOptions(0.1, momentum: 0.9);
        var original = new SgdOptimizer(options, 2);
        var theta = new float[] { 1f, -1f };
        original.Step(theta, new float[] { 0.3f, 0.7f });

        using var stream = new MemoryStream();
        original.State.Save(stream);
        stream.Position = 0;
        var resumed = new SgdOptimizer(options, 2);
        resumed.Restore(SgdState.Load(stream));

        var a = (float[])theta.Clone();
        var b = (float[])theta.Clone();
        original.Step(a, new float[] { -0.2f, 0.1f });
        resumed.Step(b, new float[] { -0.2f, 0.1f });
        Assert.Equal(a, b);
        Assert.Equal(original.State.Step, resumed.State.Step);
    }

    [Fact]
    public void A_truncated_state_is_refused()
    {
        using var stream = new MemoryStream();
        new SgdOptimizer(new SgdOptions(0.1, momentum: 0.9), 4).State.Save(stream);
        var bytes = stream.ToArray()[..^3];
        Assert.Throws<InvalidDataException>(() => SgdState.Load(new MemoryStream(bytes)));
    }
}
