namespace DistSgd.Actors.Transport;

/// <summary>One connection the data plane refused before it proved a node, as reported to its owner (<see cref="DirectDataPlane.Refused"/>).</summary>
/// <param name="Kind">Why it was refused (counted by kind in <see cref="DirectDataPlane.Refusals"/>).</param>
/// <param name="Remote">The connection's source "address:port", or "?" when the socket no longer knows it.</param>
/// <param name="Reason">One line saying what was wrong.</param>
public sealed record DataPlaneRefusal(ConnectionRefusal Kind, string Remote, string Reason);

/// <summary>One refusal kind's log window: when it opened and how many refusals of the kind it has seen.</summary>
public readonly record struct RefusalLogWindow(DateTime Start, int Seen);

/// <summary>What to write for one refusal: the refusal itself or nothing, and the count of the previous window's unlogged ones.</summary>
/// <param name="Log">Write this refusal's line.</param>
/// <param name="LastInWindow">This is the last refusal of the kind logged one by one until the window closes.</param>
/// <param name="UnloggedBefore">Refusals of the kind the previous window did not log (a summary line when above 0).</param>
public readonly record struct RefusalLogDecision(bool Log, bool LastInWindow, int UnloggedBefore);

/// <summary>
/// Logs the data plane's refusals as warnings, rate-limited per kind: the first <see cref="PerWindow"/> of a kind in
/// a <see cref="Window"/> one line each, then nothing until the window closes, and with the kind's next refusal one
/// summary line with how many went unlogged. A flood of 200 connections costs a few lines, not 200; every refusal is
/// still counted (<see cref="DirectDataPlane.Refusals"/>, the dropped-message counts). Thread-safe: the plane reports
/// on its accept and reader threads.
/// </summary>
public sealed class RefusalLog
{
    public const int DefaultPerWindow = 5;
    public static readonly TimeSpan DefaultWindow = TimeSpan.FromMinutes(1);

    private readonly Action<string> _warn;
    private readonly Func<DateTime> _now;
    private readonly Dictionary<ConnectionRefusal, RefusalLogWindow> _windows = new();

    /// <param name="warn">Writes one warning (an actor passes its logger's Warning; it is called on the plane's threads).</param>
    public RefusalLog(Action<string> warn, int perWindow = DefaultPerWindow, TimeSpan? window = null, Func<DateTime>? now = null)
    {
        _warn = warn;
        PerWindow = perWindow;
        Window = window ?? DefaultWindow;
        _now = now ?? (() => DateTime.UtcNow);
    }

    public int PerWindow { get; }

    public TimeSpan Window { get; }

    /// <summary>
    /// The decision for one more refusal of a kind whose window is <paramref name="window"/> (default: none yet) at
    /// <paramref name="now"/>, and the kind's window afterwards. Pure.
    /// </summary>
    public static (RefusalLogWindow Next, RefusalLogDecision Decision) Judge(RefusalLogWindow window, DateTime now, int perWindow, TimeSpan length)
    {
        if (window.Seen == 0 || now - window.Start >= length)
            return (new RefusalLogWindow(now, 1), new RefusalLogDecision(true, perWindow == 1, Math.Max(0, window.Seen - perWindow)));
        int seen = window.Seen + 1;
        return (window with { Seen = seen }, new RefusalLogDecision(seen <= perWindow, seen == perWindow, 0));
    }

    /// <summary>Notes one refusal and writes what <see cref="Judge"/> says; true when the refusal's own line was written.</summary>
    public bool Record(DataPlaneRefusal refusal)
    {
        RefusalLogDecision decision;
        lock (_windows)
        {
            (var next, decision) = Judge(_windows.GetValueOrDefault(refusal.Kind), _now(), PerWindow, Window);
            _windows[refusal.Kind] = next;
        }
        string kind = DataPlaneHandshake.Name(refusal.Kind);
        if (decision.UnloggedBefore > 0)
            _warn($"data plane: {decision.UnloggedBefore} more {kind} refusals were counted but not logged in the {Window.TotalSeconds:0}s before");
        if (decision.Log)
            _warn($"data plane refused a connection from {refusal.Remote}: {kind}: {refusal.Reason}"
                  + (decision.LastInWindow ? $" (further {kind} refusals in this {Window.TotalSeconds:0}s window are only counted)" : ""));
        return decision.Log;
    }
}
