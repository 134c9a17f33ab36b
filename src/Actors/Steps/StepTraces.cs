using System.Text;

namespace DistSgd.Actors.Steps;

/// <summary>
/// The step traces of this process that go to one file (distsgd.trace-file, --trace): each coordinator and worker
/// registers its <see cref="StepTrace"/> when it starts, and the host writes them all as one Chrome trace, one track
/// (process) per node, when the run is over. Timestamps are moved by <see cref="ClockOffsetTicks"/>, this process's
/// offset to the run's reference clock (<see cref="TraceClock"/>), so the files of a run's processes, merged, line up.
/// </summary>
public static class StepTraces
{
    private static readonly Dictionary<string, List<StepTrace>> Files = new();
    private static long _clockOffset;

    /// <summary>
    /// Stopwatch ticks to add to this process's clock to read the reference node's (0 in the reference's process and in
    /// a simulated cluster, where every node shares one clock).
    /// </summary>
    public static long ClockOffsetTicks
    {
        get => Interlocked.Read(ref _clockOffset);
        set => Interlocked.Exchange(ref _clockOffset, value);
    }

    /// <summary>Adds <paramref name="trace"/> to those written to <paramref name="file"/>.</summary>
    public static void Register(string file, StepTrace trace)
    {
        lock (Files)
        {
            string key = Path.GetFullPath(file);
            if (!Files.TryGetValue(key, out var traces))
                Files[key] = traces = new List<StepTrace>();
            traces.Add(trace);
        }
    }

    /// <summary>The traces registered for <paramref name="file"/>, which are forgotten here.</summary>
    public static IReadOnlyList<StepTrace> Take(string file)
    {
        lock (Files)
            return Files.Remove(Path.GetFullPath(file), out var traces) ? traces : [];
    }

    /// <summary>
    /// Writes the traces registered for <paramref name="file"/> as one Chrome trace (a JSON array) through a temporary
    /// file renamed over it; returns how many tracks it holds.
    /// </summary>
    public static int Write(string file)
    {
        var traces = Take(file);
        string full = Path.GetFullPath(file);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        string temporary = $"{full}.{Environment.ProcessId}.tmp";
        using (var writer = new StreamWriter(temporary, append: false, new UTF8Encoding(false)))
            Write(writer, traces, ClockOffsetTicks);
        File.Move(temporary, full, overwrite: true);
        return traces.Count;
    }

    /// <summary>The traces as one JSON array, every timestamp moved by <paramref name="offsetTicks"/>.</summary>
    public static void Write(TextWriter writer, IEnumerable<StepTrace> traces, long offsetTicks)
    {
        writer.Write('[');
        bool first = true;
        foreach (var trace in traces.OrderBy(t => t.Process))
        {
            if (!first)
                writer.Write(",\n");
            trace.WriteEvents(writer, offsetTicks);
            first = false;
        }
        writer.Write("]\n");
    }
}
