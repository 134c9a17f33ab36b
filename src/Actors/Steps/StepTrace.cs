using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Akka.Event;

namespace DistSgd.Actors.Steps;

/// <summary>What part of a step a <see cref="StepTrace"/> span covers.</summary>
public enum StepPhase
{
    /// <summary>The whole step on the coordinator's thread: from its begin to the end of its update.</summary>
    Step,
    /// <summary>Opening the step's gather (a due checkpoint included).</summary>
    Open,
    /// <summary>This peer's gradient on its shard.</summary>
    Compute,
    /// <summary>Handing the payload to the transport (the kernel has the bytes when it ends, on the data plane).</summary>
    Send,
    /// <summary>Arming the step's timeout.</summary>
    ArmTimeout,
    /// <summary>From the end of the broadcast until the last contribution is in: the other nodes' compute and the wire.</summary>
    Wait,
    /// <summary>On a data-plane reader thread: from a frame's header to its last payload byte.</summary>
    Receive,
    /// <summary>From a frame's last byte on the reader thread to the coordinator taking it from its mailbox.</summary>
    HandOff,
    /// <summary>The coordinator checking and storing a contribution (its finiteness check included).</summary>
    Offer,
    /// <summary>What the mode does before the update (a peer keeps what undoing the step needs).</summary>
    BeforeUpdate,
    /// <summary>Average of the contributions and the optimizer's update, and the step's totals.</summary>
    Update,
    /// <summary>What the mode does after the update (arrays back to the data plane, progress).</summary>
    AfterUpdate,
    /// <summary>Garbage-collection pauses that ended during the step (their sum, placed at the step's end).</summary>
    GcPause,
    /// <summary>Writing a checkpoint (at a step boundary, when one is due).</summary>
    Checkpoint,
    /// <summary>Scoring θ on the test set at an epoch's end.</summary>
    Evaluation,
}

/// <summary>
/// A per-step timeline of one coordinator (a decentralized peer or the centralized master), switched on by
/// distsgd.step-trace: every step's phases as spans with their start and end, written at the end of the run as a
/// Chrome trace (JSON array of trace events) that Perfetto (ui.perfetto.dev) and chrome://tracing open. Timestamps
/// are the machine's monotonic clock in microseconds, so the files of processes on one machine line up when merged
/// (<c>jq -s add a.json b.json</c>).
/// </summary>
/// <remarks>
/// Cheap enough to leave on: a span is a 40-byte struct in an array that grows up to <see cref="MaxSpans"/> and then
/// keeps the newest spans, overwriting the oldest (a window of the last steps: memory and file stay bounded however long
/// the run; no allocation once it has grown), written under a lock because data-plane reader threads add
/// <see cref="StepPhase.Receive"/> spans. The coordinator's thread is thread 1; the reader of sender s is thread
/// 100 + s; GC pauses are thread 2. Every step span carries the bytes the coordinator's thread allocated during it.
/// Membership events (a worker registered or lost, a peer suspected, a decision) are instant events, the newest
/// <see cref="MaxInstants"/> kept.
/// </remarks>
public sealed class StepTrace
{
    /// <summary>The coordinator's thread in the trace.</summary>
    public const int CoordinatorThread = 1;

    /// <summary>The spans a trace keeps by default (distsgd.trace-max-spans): about 8 MB of JSON per track.</summary>
    public const int DefaultMaxSpans = 50_000;

    /// <summary>The membership events a trace keeps (the newest).</summary>
    public const int MaxInstants = 1_000;

    private const int GcThread = 2;
    private const int ReaderThreadBase = 100;

    private readonly object _lock = new();
    private readonly (long Step, long At)[] _arrivals;
    private readonly Queue<(string Name, long At)> _instants = new();
    private Span[] _spans;
    private int _count;
    private int _next;   // where the next span goes once the array is full (the oldest span)
    private long _overwritten;
    private TimeSpan _gcPauses = GC.GetTotalPauseDuration();

    /// <param name="process">The process id the trace shows (a peer's node id; the master uses 1000).</param>
    /// <param name="name">The process name the trace shows ("peer 0", "master").</param>
    /// <param name="senders">Senders whose arrivals are matched to their hand-off (node ids or worker indices 0 … senders − 1).</param>
    /// <param name="maxSpans">The spans kept: the newest, once the run has made more.</param>
    public StepTrace(int process, string name, int senders, int maxSpans = DefaultMaxSpans)
    {
        if (maxSpans < 1)
            throw new ArgumentOutOfRangeException(nameof(maxSpans), maxSpans, "a trace keeps at least one span");
        Process = process;
        Name = name;
        MaxSpans = maxSpans;
        _spans = new Span[Math.Min(maxSpans, 8192)];
        _arrivals = new (long, long)[Math.Max(1, senders)];
        Array.Fill(_arrivals, (-1L, 0L));
    }

    public int Process { get; }

    public string Name { get; }

    /// <summary>The most spans kept.</summary>
    public int MaxSpans { get; }

    /// <summary>Spans made and then overwritten by newer ones (the window moved past them).</summary>
    public long Overwritten
    {
        get
        {
            lock (_lock)
                return _overwritten;
        }
    }

    /// <summary>Spans recorded so far.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
                return _count;
        }
    }

    /// <summary>The monotonic clock (<see cref="Stopwatch.GetTimestamp"/>).</summary>
    public static long Now => Stopwatch.GetTimestamp();

    /// <summary>Records a span of <paramref name="phase"/> of <paramref name="step"/> on the coordinator's thread.</summary>
    public void Add(StepPhase phase, long step, long start, long end, long value = 0) =>
        Add(new Span(phase, step, start, end, CoordinatorThread, -1, value));

    /// <summary>
    /// A data-plane reader received sender <paramref name="sender"/>'s frame of <paramref name="step"/>: header at
    /// <paramref name="headerAt"/>, last payload byte at <paramref name="completeAt"/>. Thread-safe.
    /// </summary>
    public void Received(int sender, long step, long headerAt, long completeAt)
    {
        lock (_lock)
        {
            if ((uint)sender < (uint)_arrivals.Length)
                _arrivals[sender] = (step, completeAt);
        }
        Add(new Span(StepPhase.Receive, step, headerAt, completeAt, ReaderThreadBase + Math.Max(0, sender), sender, 0));
    }

    /// <summary>
    /// The coordinator took sender <paramref name="sender"/>'s contribution of <paramref name="step"/> from its mailbox
    /// at <paramref name="takenAt"/> and offered it until <paramref name="offeredAt"/>: a hand-off span from the frame's
    /// arrival (when a reader reported it) and an offer span.
    /// </summary>
    public void Offered(int sender, long step, long takenAt, long offeredAt)
    {
        long arrived = -1;
        lock (_lock)
        {
            if ((uint)sender < (uint)_arrivals.Length && _arrivals[sender].Step == step)
                arrived = _arrivals[sender].At;
        }
        if (arrived >= 0)
            Add(new Span(StepPhase.HandOff, step, arrived, takenAt, CoordinatorThread, sender, 0));
        Add(new Span(StepPhase.Offer, step, takenAt, offeredAt, CoordinatorThread, sender, 0));
    }

    /// <summary>
    /// The step ended at <paramref name="end"/>: the step span (with the bytes the thread allocated) and the GC pauses
    /// that ended since the last step.
    /// </summary>
    public void StepDone(long step, long start, long end, long allocatedBytes)
    {
        Add(StepPhase.Step, step, start, end, allocatedBytes);
        var pauses = GC.GetTotalPauseDuration();
        var paused = pauses - _gcPauses;
        _gcPauses = pauses;
        if (paused > TimeSpan.Zero)
            Add(new Span(StepPhase.GcPause, step, end - (long)(paused.TotalSeconds * Stopwatch.Frequency), end, GcThread, -1,
                         (long)paused.TotalMicroseconds));
    }

    /// <summary>
    /// A membership event at <paramref name="at"/> (default now): an instant event on the coordinator's thread.
    /// Thread-safe; allocates (membership changes are rare).
    /// </summary>
    public void Instant(string name, long at = -1)
    {
        lock (_lock)
        {
            if (_instants.Count == MaxInstants)
                _instants.Dequeue();
            _instants.Enqueue((name, at < 0 ? Now : at));
        }
    }

    /// <summary>The trace as Chrome trace events (a JSON array).</summary>
    public void Write(TextWriter writer)
    {
        writer.Write('[');
        WriteEvents(writer, 0);
        writer.Write("]\n");
    }

    /// <summary>
    /// The trace's events, comma-separated, without the array's brackets (several traces make one file:
    /// <see cref="StepTraces"/>), each timestamp moved by <paramref name="offsetTicks"/> (to another process's clock).
    /// </summary>
    public void WriteEvents(TextWriter writer, long offsetTicks)
    {
        Span[] spans;
        (string Name, long At)[] instants;
        long overwritten;
        lock (_lock)
        {
            // Oldest first: once the array is full, the oldest span is at _next.
            spans = new Span[_count];
            int first = _count == _spans.Length ? _next : 0;
            for (int i = 0; i < _count; i++)
                spans[i] = _spans[(first + i) % _spans.Length];
            instants = _instants.ToArray();
            overwritten = _overwritten;
        }
        int count = spans.Length;
        var c = CultureInfo.InvariantCulture;
        writer.Write($"{{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":{Process},\"args\":{{\"name\":\"{Name}\",\"spans_kept\":{count},\"spans_overwritten\":{overwritten}}}}}");
        writer.Write($",\n{{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":{Process},\"tid\":{CoordinatorThread},\"args\":{{\"name\":\"coordinator\"}}}}");
        writer.Write($",\n{{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":{Process},\"tid\":{GcThread},\"args\":{{\"name\":\"gc pauses\"}}}}");
        foreach (int sender in spans.Take(count).Where(s => s.Phase == StepPhase.Receive).Select(s => s.Sender).Distinct().Order())
            writer.Write($",\n{{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":{Process},\"tid\":{ReaderThreadBase + sender},\"args\":{{\"name\":\"reader of {sender}\"}}}}");
        for (int i = 0; i < count; i++)
        {
            var s = spans[i];
            writer.Write(string.Create(c, $",\n{{\"name\":\"{Label(s.Phase)}\",\"cat\":\"step\",\"ph\":\"X\",\"ts\":{Microseconds(s.Start + offsetTicks):0.0},\"dur\":{Math.Max(0, Microseconds(s.End) - Microseconds(s.Start)):0.0},\"pid\":{Process},\"tid\":{s.Thread},\"args\":{{\"step\":{s.Step}"));
            if (s.Sender >= 0)
                writer.Write($",\"from\":{s.Sender}");
            if (s.Phase == StepPhase.Step && s.Value >= 0)
                writer.Write($",\"allocated_bytes\":{s.Value}");
            writer.Write("}}");
        }
        foreach (var (name, at) in instants)
            writer.Write(string.Create(c, $",\n{{\"name\":{JsonSerializer.Serialize(name)},\"cat\":\"membership\",\"ph\":\"i\",\"s\":\"p\",\"ts\":{Microseconds(at + offsetTicks):0.0},\"pid\":{Process},\"tid\":{CoordinatorThread}}}"));
    }

    /// <summary>Writes the trace to <paramref name="path"/> (replacing it).</summary>
    public void WriteTo(string path)
    {
        using var writer = new StreamWriter(path, append: false, new UTF8Encoding(false));
        Write(writer);
    }

    /// <summary>
    /// Writes the trace to <see cref="PathIn"/> the trace folder (<see cref="DistSgdSettings.StepTraceFolder"/>) and logs
    /// where, or logs a warning when it cannot be written (a trace is never worth failing a run for).
    /// </summary>
    public void WriteOrWarn(DistSgdSettings settings, ILoggingAdapter log)
    {
        if (settings.TraceFile.Length > 0)
            return;   // registered with StepTraces (Start); the host writes the process's one file
        string path = PathIn(settings.StepTraceFolder, Name);
        try
        {
            WriteTo(path);
            log.Info("step trace ({0} spans) written to {1}", Count, path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            log.Warning("could not write the step trace to {0}: {1}", path, e.Message);
        }
    }

    /// <summary>
    /// A trace for a node as <paramref name="settings"/> ask (<see cref="DistSgdSettings.Traced"/>), or null: with a trace
    /// file it is registered with <see cref="StepTraces"/> for it.
    /// </summary>
    public static StepTrace? Start(DistSgdSettings settings, int process, string name, int senders)
    {
        if (!settings.Traced)
            return null;
        var trace = new StepTrace(process, name, senders, settings.TraceMaxSpans);
        if (settings.TraceFile.Length > 0)
            StepTraces.Register(settings.TraceFile, trace);
        return trace;
    }

    /// <summary>The file a coordinator's trace goes to in <paramref name="folder"/>: step-trace-NAME.json, spaces as dashes.</summary>
    public static string PathIn(string folder, string name) => Path.Combine(folder, $"step-trace-{name.Replace(' ', '-')}.json");

    /// <summary>The phase's name in the trace ("hand-off", "before update").</summary>
    public static string Label(StepPhase phase) => phase switch
    {
        StepPhase.ArmTimeout => "arm timeout",
        StepPhase.HandOff => "hand-off",
        StepPhase.BeforeUpdate => "before update",
        StepPhase.AfterUpdate => "after update",
        StepPhase.GcPause => "gc pause",
        StepPhase.Evaluation => "evaluation",
        StepPhase.Checkpoint => "checkpoint",
        _ => phase.ToString().ToLowerInvariant(),
    };

    private void Add(in Span span)
    {
        lock (_lock)
        {
            if (_count == _spans.Length && _count < MaxSpans)
                Array.Resize(ref _spans, Math.Min(MaxSpans, _spans.Length * 2));
            if (_count < _spans.Length)
            {
                _spans[_count++] = span;
                return;
            }
            _spans[_next] = span;
            _next = (_next + 1) % _spans.Length;
            _overwritten++;
        }
    }

    private static double Microseconds(long timestamp) => timestamp * 1e6 / Stopwatch.Frequency;

    private readonly record struct Span(StepPhase Phase, long Step, long Start, long End, int Thread, int Sender, long Value);
}
