using System.Diagnostics;
using System.Globalization;
using Akka.Configuration;
using DistSgd.Actors.Steps;

namespace DistSgd.Host.Results;

/// <summary>
/// --trace FILE: every node of this process records its step trace (<see cref="StepTrace"/>), and when the run is over
/// the process writes them to FILE as one Chrome trace, one track per node (<see cref="StepTraces"/>).
/// </summary>
public static class RunTrace
{
    /// <summary>Refuses a trace path that cannot be a file, before anything runs.</summary>
    public static void Check(string? traceFile)
    {
        if (traceFile is null)
            return;
        if (string.IsNullOrWhiteSpace(traceFile) || Directory.Exists(traceFile))
            throw new UsageException($"--trace: expected the path of the JSON file to write, found {(traceFile.Length == 0 ? "nothing" : $"the folder {traceFile}")}");
    }

    /// <summary>The run's overrides with <c>distsgd.trace-file</c> set to <paramref name="traceFile"/> (unchanged without one).</summary>
    public static Config? Into(Config? overrides, string? traceFile)
    {
        if (traceFile is null)
            return overrides;
        string path = Path.GetFullPath(traceFile);
        var file = ConfigurationFactory.ParseString($"distsgd.trace-file = {Settings.HoconFile.Quote(path)}");
        return overrides is null ? file : file.WithFallback(overrides);
    }

    /// <summary>Writes the process's traces to <paramref name="traceFile"/> (nothing without one) and says so in a line.</summary>
    public static void Write(string? traceFile, TextWriter output)
    {
        if (traceFile is null)
            return;
        long offset = StepTraces.ClockOffsetTicks;
        try
        {
            int tracks = StepTraces.Write(traceFile);
            output.WriteLine($"trace: {tracks} {(tracks == 1 ? "track" : "tracks")} written to {traceFile}" + (offset == 0 ? "" :
                string.Create(CultureInfo.InvariantCulture, $", moved by {offset * 1e6 / Stopwatch.Frequency:F0} µs to the reference node's clock")));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A trace is never worth failing a finished run for.
            output.WriteLine($"trace: WARNING: could not write {traceFile}: {e.Message}");
        }
    }
}
