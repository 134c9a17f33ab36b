using System.Diagnostics;

namespace DistSgd.Actors.Steps;

/// <summary>
/// A slow node, emulated for tests and benchmarks (distsgd.debug.slowdown): after computing its gradient for t seconds
/// the node sleeps (factor − 1)·t, so its compute takes factor × as long and the compute time it reports says so. It
/// sleeps rather than spins, so the emulated node leaves the CPU to the others, like a node on slower hardware.
/// </summary>
public static class Slowdown
{
    /// <summary>The extra time after a compute of <paramref name="computeSeconds"/>: (factor − 1)·t, none for factor ≤ 1.</summary>
    public static TimeSpan Extra(double factor, double computeSeconds) =>
        factor <= 1 || computeSeconds <= 0 ? TimeSpan.Zero : TimeSpan.FromSeconds((factor - 1) * computeSeconds);

    /// <summary>Sleeps the extra time of a compute that began at <paramref name="started"/> (a <see cref="Stopwatch"/> timestamp).</summary>
    public static void After(double factor, long started)
    {
        if (factor > 1 && Extra(factor, Stopwatch.GetElapsedTime(started).TotalSeconds) is { Ticks: > 0 } extra)
            Thread.Sleep(extra);
    }
}
