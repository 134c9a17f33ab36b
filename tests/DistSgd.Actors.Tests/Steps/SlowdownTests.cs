using System.Diagnostics;
using DistSgd.Actors.Steps;

namespace DistSgd.Actors.Tests.Steps;

public class SlowdownTests
{
    [Theory]
    [InlineData(3, 0.010, 0.020)]
    [InlineData(1.5, 0.004, 0.002)]
    [InlineData(1, 0.010, 0)]
    [InlineData(0.5, 0.010, 0)]
    [InlineData(3, 0, 0)]
    public void A_slowed_compute_sleeps_factor_minus_one_times_its_compute(double factor, double compute, double extra) =>
        Assert.Equal(extra, Slowdown.Extra(factor, compute).TotalSeconds, 9);

    [Fact]
    public void A_slowed_compute_takes_at_least_factor_times_as_long()
    {
        long started = Stopwatch.GetTimestamp();
        while (Stopwatch.GetElapsedTime(started).TotalMilliseconds < 5)
        {
        }
        Slowdown.After(3, started);
        Assert.True(Stopwatch.GetElapsedTime(started).TotalMilliseconds >= 15);
    }
}
