using DistSgd.Numerics.Optim;

namespace DistSgd.Numerics.Tests.Optim;

public class MomentumRecoveryTests
{
    /// <summary>Runs a few momentum steps; returns θ before and after the last one, and the optimizer.</summary>
    private static (float[] Previous, float[] Current, SgdOptimizer Optimizer) Run(SgdOptions options, int steps)
    {
        var random = new Random(3);
        var theta = Enumerable.Range(0, 50).Select(_ => (float)random.NextDouble() * 2 - 1).ToArray();
        var optimizer = new SgdOptimizer(options, theta.Length);
        float[] previous = theta;
        for (int s = 0; s < steps; s++)
        {
            previous = (float[])theta.Clone();
            var gradient = Enumerable.Range(0, theta.Length).Select(_ => (float)random.NextDouble() - 0.5f).ToArray();
            optimizer.Step(theta, gradient);
        }
        return (previous, theta, optimizer);
    }

    [Fact]
    public void The_velocity_rebuilt_from_two_consecutive_thetas_matches_the_optimizer_s_own()
    {
        var options = new SgdOptions(0.05, momentum: 0.9, weightDecay: 1e-3, schedule: new LearningRateSchedule.Cosine(100));
        var (previous, current, optimizer) = Run(options, 7);
        var velocity = new float[current.Length];
        Assert.True(MomentumRecovery.TryVelocity(options, previous, current, options.Schedule.RateAt(6, options.LearningRate), velocity));
        for (int i = 0; i < velocity.Length; i++)
            Assert.Equal(optimizer.State.Velocity[i], velocity[i], 1e-4);   // float32 θ differences: a few ulp of θ over η

        // The next update from the rebuilt state lands on the same θ to float rounding.
        var resumed = new SgdOptimizer(options, current.Length);
        resumed.Restore(new SgdState(optimizer.State.Step, velocity));
        var gradient = Enumerable.Repeat(0.1f, current.Length).ToArray();
        var a = (float[])current.Clone();
        var b = (float[])current.Clone();
        optimizer.Step(a, gradient);
        resumed.Step(b, gradient);
        for (int i = 0; i < a.Length; i++)
            Assert.Equal(a[i], b[i], 1e-6);
    }

    [Fact]
    public void Nesterov_momentum_or_a_zero_rate_cannot_be_rebuilt()
    {
        var nesterov = new SgdOptions(0.05, momentum: 0.9, nesterov: true);
        var (previous, current, _) = Run(nesterov, 3);
        var velocity = new float[current.Length];
        Assert.False(MomentumRecovery.TryVelocity(nesterov, previous, current, 0.05, velocity));
        Assert.False(MomentumRecovery.TryVelocity(new SgdOptions(0.05, momentum: 0.9), previous, current, 0, velocity));
        Assert.All(velocity, v => Assert.Equal(0f, v));
    }
}
