using System.Diagnostics;
using System.Runtime.InteropServices;

namespace DistSgd.Bench;

/// <summary>
/// The clock the quick bench times its samples with: this thread's CPU time on Linux
/// (clock_gettime(CLOCK_THREAD_CPUTIME_ID)), wall time elsewhere or with <c>--clock wall</c>.
/// </summary>
/// <remarks>
/// On a shared 2-core machine with a load average of 10+, a 20 ms wall-clock sample often includes
/// time the thread spent waiting for a core, and whole rows read half speed. CPU time counts only
/// the time the thread ran, so the peak and the kernels are compared on the time they actually got;
/// what it still includes is the cache damage of the other processes between time slices.
/// </remarks>
public static partial class ThreadClock
{
    private const int ClockThreadCpuTime = 3;

    /// <summary>True when <see cref="Now"/> reads thread CPU time; set from <c>--clock</c>.</summary>
    public static bool CpuTime { get; set; } = OperatingSystem.IsLinux();

    public static string Description => CpuTime ? "thread CPU time" : "wall time";

    /// <summary>Seconds on the selected clock (an arbitrary origin).</summary>
    public static double Now()
    {
        if (CpuTime && ClockGetTime(ClockThreadCpuTime, out var ts) == 0)
            return ts.Seconds + ts.Nanoseconds * 1e-9;
        return Stopwatch.GetTimestamp() / (double)Stopwatch.Frequency;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int ClockGetTime(int clock, out TimeSpec time);
}
