using DistSgd.Actors.Centralized;
using DistSgd.Actors.Decentralized;
using DistSgd.Actors.Steps;

namespace DistSgd.Host.Runs;

/// <summary>
/// This node was taken out of the cluster, or lost the node it depends on, before its part of the run finished: the
/// cluster removed it (downed: unreachable, stopped, on the minority side of a partition), or the last node that may
/// host the master left. <paramref name="Reason"/> is for the user; <paramref name="Removed"/> says the cluster removed
/// this node (rather than this node losing the master's).
/// </summary>
public sealed record NodeLost(string Reason, bool Removed = false);

/// <summary>How a `distsgd node` process ends: its exit code and the one line that says why.</summary>
/// <param name="ExitCode">One of <see cref="ExitCodes"/>.</param>
/// <param name="Line">What the node prints last: "done: …" for a part that finished, the reason otherwise.</param>
public sealed record NodeExit(int ExitCode, string Line);

/// <summary>
/// How a node's part of a run ended, decided from what it heard, in one pure place (decision 0063). A node hears
/// reports from its coordinators (the run completed or failed, its worker's RunEnded, its peer's PeerFinished) and
/// news from the cluster (<see cref="NodeLost"/>); they race. A part that finished is final: the cluster removing
/// the node afterwards (the others left, so a lone survivor is a minority and downs itself) changes nothing, and a
/// node whose run finished exits 0.
/// </summary>
public static class NodeEnding
{
    /// <summary>
    /// A pause of the whole process at least this long is named in the node's last line: longer than Akka's failure
    /// detector allows (heartbeat-interval + acceptable-heartbeat-pause, 3 s by default), so it can explain a removal.
    /// </summary>
    public static readonly TimeSpan NotablePause = TimeSpan.FromSeconds(5);

    /// <summary>
    /// What ended the node's part: <paramref name="ended"/> (the run's RunCompleted or RunFailed, or a worker's
    /// RunEnded) first, then <paramref name="finished"/> (this peer's PeerFinished), then <paramref name="lost"/>; each
    /// null when not heard. A part that finished wins over a removal heard before or after it: the removal is about
    /// the cluster, the finished part about the run.
    /// </summary>
    public static object? Outcome(object? ended, PeerFinished? finished, NodeLost? lost) =>
        ended ?? (object?)finished ?? lost;

    /// <summary>The cluster removed this node before its part finished (downed: unreachable, or on the minority side).</summary>
    public static readonly NodeLost SelfRemoved =
        new("this node was removed from the cluster before the run ended (downed: unreachable, or on the minority side of a partition)", Removed: true);

    /// <summary>
    /// The loss a node reports: its own removal when heard (<paramref name="removed"/>), whatever it heard of the master's
    /// node (<paramref name="masterLost"/>) before or after. A removed node sees every other member leave as it shuts
    /// down, so "the master's node left" can race ahead of the removal it follows from (issue 20: the woken worker then
    /// exited instead of joining again).
    /// </summary>
    public static NodeLost? Lost(NodeLost? removed, NodeLost? masterLost) => removed ?? masterLost;

    /// <summary>
    /// The master's node left (<paramref name="reason"/>), seen by a worker-only node; when this node is itself down,
    /// removed or shutting down (<paramref name="selfDown"/>) that is its own removal (<see cref="Lost"/>).
    /// </summary>
    public static NodeLost MasterLost(string reason, bool selfDown) => selfDown ? SelfRemoved : new NodeLost(reason);

    /// <summary>
    /// Whether the node starts a new incarnation and joins again instead of ending (issue 20): a node that only computes (no
    /// master role) and was removed from the cluster before the run ended, or a peer the others went on without
    /// (<paramref name="leftOut"/>: it heard <see cref="PeerLeftOut"/> before its run failed). The master takes a worker back
    /// from the next epoch like any worker registering under way; the lead peer takes a peer back at the next epoch's
    /// boundary as a late peer (decision 0098). A node that hosts the master, and a node that lost the master's node, end as before.
    /// </summary>
    public static bool Rejoins(object outcome, bool centralized, bool hostsMaster, bool leftOut = false) =>
        (outcome is NodeLost { Removed: true } && !hostsMaster) || (!centralized && leftOut && outcome is RunProgress.RunFailed);

    /// <summary>
    /// The exit of a node whose outcome is not a completed run (that one writes the results; see
    /// <see cref="RunCoordinators.Completed"/>): 0 for a part that finished, 1 for a failed run or a lost node.
    /// <paramref name="pause"/> is how long the process did not run just before (<see cref="PauseWatch.PauseBefore"/>),
    /// named when at least <see cref="NotablePause"/>; <paramref name="removedAfterwards"/> says the cluster removed the
    /// node after its part had finished.
    /// </summary>
    public static NodeExit Exit(object outcome, string runId, TimeSpan pause, bool removedAfterwards = false)
    {
        string? paused = pause >= NotablePause ? $"{pause.TotalSeconds:0} s" : null;
        string after = removedAfterwards ? "; the cluster removed this node as its part finished, which changes nothing" : "";
        return outcome switch
        {
            PeerFinished => new NodeExit(ExitCodes.Ok,
                $"done: run {runId} ended; the lead peer (lowest node id) writes the results{after}"),
            RunEnded when paused is not null => new NodeExit(ExitCodes.Ok,
                $"done: run {runId} ended; this node did not run for {paused} (stopped, e.g. SIGSTOP, or starved) and heard the end " +
                $"when it ran again; the master writes the results{after}"),
            RunEnded => new NodeExit(ExitCodes.Ok, $"done: run {runId} ended; the master writes the results{after}"),
            RunProgress.RunFailed failed => new NodeExit(ExitCodes.TrainingFailed, failed.Reason),
            NodeLost lost when paused is not null => new NodeExit(ExitCodes.TrainingFailed,
                $"this node did not run for {paused} (stopped, e.g. SIGSTOP, or starved), longer than the cluster waits for a silent " +
                $"node; {lost.Reason}. The run goes on without this node if the others hold a majority: the master's node " +
                "(or the lead peer's) has its outcome and results"),
            NodeLost lost => new NodeExit(ExitCodes.TrainingFailed, lost.Reason),
            _ => throw new ArgumentException($"not a node's ending: {outcome}", nameof(outcome)),
        };
    }
}

/// <summary>
/// How long this process did not run just before its part ended, seen as gaps between ticks that should come every
/// <see cref="Interval"/>: a SIGSTOP, a suspended machine, or a starved process. Only a pause that ended within
/// <see cref="Recent"/> of the ending explains it (a node paused mid-run and invited back is not explained by that
/// pause when it ends much later). Pure: the caller passes the monotonic time of each tick (a timer in
/// <see cref="NodeRun"/>, a list in tests).
/// </summary>
public sealed class PauseWatch
{
    /// <summary>How often the node's timer ticks.</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(250);

    /// <summary>
    /// How long before the ending a pause still explains it: a woken node hears the run's end at once, and its removal
    /// within the resolver's stable-after (5 s by default) and the failure detector's pause.
    /// </summary>
    public static readonly TimeSpan Recent = TimeSpan.FromSeconds(20);

    /// <summary>Gaps shorter than this are not kept (a busy thread pool).</summary>
    private static readonly TimeSpan Kept = TimeSpan.FromSeconds(1);

    private readonly object _gate = new();
    private readonly List<(TimeSpan Ended, TimeSpan Length)> _pauses = new();
    private TimeSpan? _last;

    /// <summary>A tick at monotonic time <paramref name="now"/>.</summary>
    public void Tick(TimeSpan now)
    {
        lock (_gate)
        {
            if (_last is { } last && now - last - Interval >= Kept)
                _pauses.Add((now, now - last - Interval));
            _last = now;
        }
    }

    /// <summary>
    /// The longest pause that ended within <see cref="Recent"/> before <paramref name="now"/>; zero when none. A gap since the
    /// last tick counts as a pause ending now: a woken process may hear the run's end before its timer ticks again.
    /// </summary>
    public TimeSpan PauseBefore(TimeSpan now)
    {
        lock (_gate)
        {
            var longest = _pauses.Where(p => now - p.Ended <= Recent).Select(p => p.Length).DefaultIfEmpty(TimeSpan.Zero).Max();
            var open = _last is { } last ? now - last - Interval : TimeSpan.Zero;
            return open >= Kept && open > longest ? open : longest;
        }
    }
}
