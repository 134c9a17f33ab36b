namespace DistSgd.Actors.Steps;

/// <summary>
/// Logs dropped messages as warnings, rate-limited per kind: the first drop of a kind is logged at once, later ones
/// at most once per <see cref="Interval"/>, saying how many went unlogged in between. A buggy or hostile node that
/// floods an actor with bad messages costs a line per kind every few seconds, not a line per message. The counting
/// itself stays with whoever judged the message (<see cref="StepGather.Dropped"/>, the worker's <c>ComputeRequestCheck</c>).
/// </summary>
public sealed class DropLog
{
    public static readonly TimeSpan DefaultInterval = TimeSpan.FromSeconds(10);

    private readonly Action<string> _warn;
    private readonly TimeProvider _clock;
    private readonly Dictionary<GatherOutcome, (long LoggedAt, long Unlogged)> _kinds = new();
    private readonly NodeMeters? _meters;

    /// <param name="warn">Writes one warning (an actor passes its logger's Warning).</param>
    /// <param name="meters">Where every drop is also counted by kind (distsgd.dropped_messages), or null.</param>
    public DropLog(Action<string> warn, TimeSpan? interval = null, TimeProvider? clock = null, NodeMeters? meters = null)
    {
        _warn = warn;
        _meters = meters;
        Interval = interval ?? DefaultInterval;
        _clock = clock ?? TimeProvider.System;
    }

    public TimeSpan Interval { get; }

    /// <summary>Notes that <paramref name="what"/> was dropped for <paramref name="reason"/>; true when that was logged.</summary>
    public bool Record(GatherOutcome reason, string what)
    {
        _meters?.Dropped(DroppedMessages.Name(reason));
        long now = _clock.GetTimestamp();
        if (_kinds.TryGetValue(reason, out var state) && _clock.GetElapsedTime(state.LoggedAt, now) < Interval)
        {
            _kinds[reason] = (state.LoggedAt, state.Unlogged + 1);
            return false;
        }
        _kinds[reason] = (now, 0);
        string kind = DroppedMessages.Name(reason);
        _warn(state.Unlogged > 0
            ? $"dropped {what}: {kind} (and {state.Unlogged} more {kind} drops in the last {_clock.GetElapsedTime(state.LoggedAt, now).TotalSeconds:0}s, not logged one by one)"
            : $"dropped {what}: {kind}");
        return true;
    }
}

/// <summary>The per-kind breakdown of dropped messages that metrics and summary.json show.</summary>
public static class DroppedMessages
{
    /// <summary>The kind's name in summary.json and the logs: foreign_run, stale_step, wrong_length, …</summary>
    public static string Name(GatherOutcome reason) => reason switch
    {
        GatherOutcome.ForeignRun => "foreign_run",
        GatherOutcome.StaleStep => "stale_step",
        GatherOutcome.FutureStep => "future_step",
        GatherOutcome.NotParticipant => "not_participant",
        GatherOutcome.Duplicate => "duplicate",
        GatherOutcome.WrongLength => "wrong_length",
        GatherOutcome.NonFinite => "non_finite",
        GatherOutcome.Late => "late_gradient",
        _ => reason.ToString().ToLowerInvariant(),
    };

    /// <summary>Name of the data plane's bad frames (bad header, oversized count, stalled frame, refused connection).</summary>
    public const string BadFrame = "bad_frame";

    /// <summary>Name of the drops outside the step protocol (hashes and announcements of another run or an old epoch).</summary>
    public const string Other = "other";

    /// <summary>
    /// Adds every count up by kind name; kinds with no drop are left out. <paramref name="named"/>: counts already
    /// named, such as the data plane's refused connections (refused_bad_proof, refused_handshake_timeout, …).
    /// </summary>
    public static IReadOnlyDictionary<string, long> ByKind(IEnumerable<KeyValuePair<GatherOutcome, long>> judged, long badFrames = 0, long other = 0,
                                                           IReadOnlyDictionary<string, long>? named = null)
    {
        var kinds = new SortedDictionary<string, long>(StringComparer.Ordinal);
        foreach (var (reason, count) in judged)
        {
            if (count > 0)
                kinds[Name(reason)] = kinds.GetValueOrDefault(Name(reason)) + count;
        }
        if (badFrames > 0)
            kinds[BadFrame] = badFrames;
        if (other > 0)
            kinds[Other] = other;
        foreach (var (name, count) in named ?? new Dictionary<string, long>())
        {
            if (count > 0)
                kinds[name] = kinds.GetValueOrDefault(name) + count;
        }
        return kinds;
    }
}
