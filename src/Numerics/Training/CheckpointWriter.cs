using System.Diagnostics;

namespace DistSgd.Numerics.Training;

/// <summary>
/// When a run writes a checkpoint: every <see cref="EverySteps"/> global steps (step mod K = 0), every
/// <see cref="Every"/> of wall time since the last one, and at the start of every epoch after the first (the end of
/// the one before); 0 / <see cref="TimeSpan.Zero"/> / false turn each off. Never twice for one step, never at the
/// step a run starts or resumes from.
/// </summary>
public sealed class CheckpointSchedule
{
    private readonly TimeProvider _clock;
    private long _lastStep = -1;
    private long _lastTime;

    public CheckpointSchedule(long everySteps, TimeSpan every, bool atEpochEnd, TimeProvider? clock = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(everySteps);
        if (every < TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(every), every, "a period ≥ 0 (0 = off)");
        EverySteps = everySteps;
        Every = every;
        AtEpochEnd = atEpochEnd;
        _clock = clock ?? TimeProvider.System;
        _lastTime = _clock.GetTimestamp();
    }

    public long EverySteps { get; }
    public TimeSpan Every { get; }
    public bool AtEpochEnd { get; }

    /// <summary>True when nothing would ever be written.</summary>
    public bool IsOff => EverySteps == 0 && Every == TimeSpan.Zero && !AtEpochEnd;

    /// <summary>The step the run starts or resumes from: it is not written again, and the time period counts from now.</summary>
    public void Start(long step) => Written(step);

    /// <summary>Whether the boundary before <paramref name="step"/> gets a checkpoint; <paramref name="epochStart"/>: the step is the first of an epoch.</summary>
    public bool Due(long step, bool epochStart)
    {
        if (step == _lastStep || step == 0)
            return false;
        return (AtEpochEnd && epochStart)
            || (EverySteps > 0 && step % EverySteps == 0)
            || (Every > TimeSpan.Zero && _clock.GetElapsedTime(_lastTime) >= Every);
    }

    /// <summary>The step of the last checkpoint written (or of the start), −1 before <see cref="Start"/>.</summary>
    public long LastStep => _lastStep;

    public void Written(long step)
    {
        _lastStep = step;
        _lastTime = _clock.GetTimestamp();
    }

    public override string ToString()
    {
        var parts = new List<string>();
        if (EverySteps > 0)
            parts.Add($"every {EverySteps} steps");
        if (Every > TimeSpan.Zero)
            parts.Add($"every {Every.TotalSeconds:0.###} s");
        if (AtEpochEnd)
            parts.Add("at every epoch end");
        return parts.Count == 0 ? "off" : string.Join(", ", parts);
    }
}

/// <summary>One checkpoint written (or that failed to be: <see cref="Error"/>), and what it cost.</summary>
public sealed record CheckpointWritten(long Step, string Path, long Bytes, double Seconds, string? Error = null)
{
    /// <summary>One line for the console: where it went, its size and what it cost, or the error.</summary>
    public string Describe() => Error is { } error
        ? $"checkpoint: WARNING: {error}"
        : string.Create(System.Globalization.CultureInfo.InvariantCulture,
                        $"checkpoint: step {Step} written to {Path} ({Size(Bytes)} in {Seconds * 1000:F1} ms)");

    /// <summary>"1.88 MB", "12.4 kB".</summary>
    public static string Size(long bytes) => bytes >= 1_000_000
        ? (bytes / 1e6).ToString("F2", System.Globalization.CultureInfo.InvariantCulture) + " MB"
        : (bytes / 1e3).ToString("F1", System.Globalization.CultureInfo.InvariantCulture) + " kB";
}

/// <summary>
/// What a run's coordinator (the sequential trainer, the centralized master, the lead peer) calls at every step
/// boundary: asks the <see cref="CheckpointSchedule"/>, and when a checkpoint is due captures the run's state and
/// writes it to the <see cref="CheckpointStore"/>. A failed write (disk full, permissions) is reported, not thrown:
/// a checkpoint must not end the run it protects.
/// </summary>
public sealed class CheckpointWriter
{
    private readonly List<double> _seconds = new();

    public CheckpointWriter(CheckpointStore store, CheckpointSchedule schedule, string identity)
    {
        Store = store ?? throw new ArgumentNullException(nameof(store));
        Schedule = schedule ?? throw new ArgumentNullException(nameof(schedule));
        Identity = identity ?? throw new ArgumentNullException(nameof(identity));
    }

    public CheckpointStore Store { get; }
    public CheckpointSchedule Schedule { get; }

    /// <summary>The run's identity every checkpoint carries (<see cref="Checkpoint.Identity"/>).</summary>
    public string Identity { get; }

    /// <summary>Told about every checkpoint written or failed, on the caller's thread.</summary>
    public event Action<CheckpointWritten>? Written;

    /// <summary>The last checkpoint written or failed, or null.</summary>
    public CheckpointWritten? Last { get; private set; }

    /// <summary>Seconds each successful write took (capture, serialize, write, fsync, rename, prune).</summary>
    public IReadOnlyList<double> Seconds
    {
        get
        {
            lock (_seconds)
                return _seconds.ToList();
        }
    }

    /// <summary>
    /// At the boundary before <paramref name="step"/>: when a checkpoint is due, captures it with
    /// <paramref name="capture"/> (given <see cref="Identity"/>) and writes it, on the caller's thread, before returning (so the
    /// capture may share the run's arrays). Returns what happened, or null when none was due.
    /// </summary>
    public CheckpointWritten? AtStepBoundary(long step, bool epochStart, Func<string, Checkpoint> capture)
    {
        ArgumentNullException.ThrowIfNull(capture);
        return Schedule.Due(step, epochStart) ? Write(step, capture) : null;
    }

    /// <summary>
    /// Writes a checkpoint of the boundary before <paramref name="step"/> now, whatever the schedule says (a run that is
    /// being stopped keeps every step it took); null when that step is already the last one written.
    /// </summary>
    public CheckpointWritten? WriteNow(long step, Func<string, Checkpoint> capture)
    {
        ArgumentNullException.ThrowIfNull(capture);
        return step == Schedule.LastStep ? null : Write(step, capture);
    }

    private CheckpointWritten Write(long step, Func<string, Checkpoint> capture)
    {
        long started = Stopwatch.GetTimestamp();
        CheckpointWritten outcome;
        try
        {
            var (path, bytes) = Store.Write(capture(Identity));
            double seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
            outcome = new CheckpointWritten(step, path, bytes, seconds);
            lock (_seconds)
                _seconds.Add(seconds);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            outcome = new CheckpointWritten(step, Store.PathOf(step), 0, Stopwatch.GetElapsedTime(started).TotalSeconds,
                                            $"could not write the checkpoint of step {step} to {Store.Directory}: {e.Message}");
        }
        // A failed write is not retried at every following step: the schedule waits for its next occasion.
        Schedule.Written(step);
        Last = outcome;
        Written?.Invoke(outcome);
        return outcome;
    }
}
