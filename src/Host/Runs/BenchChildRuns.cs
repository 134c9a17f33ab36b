using System.Diagnostics;
using System.Reflection;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using DistSgd.Host.Settings;
using DistSgd.Numerics.Models;
using DistSgd.Numerics.Training;

namespace DistSgd.Host.Runs;

/// <summary>
/// Runs each `distsgd bench` configuration in a child `distsgd` process: Akka.NET keeps a terminated ActorSystem
/// reachable in-process (its scheduler's timers, the remoting's per-thread actor-ref caches, DotNetty's socket
/// registrations), and with it the data sets its actors were given, so 39 simulated clusters in one process grew to
/// 21 GB resident. A child also gives every configuration a fresh JIT, GC and thread pool, as `train` has.
/// </summary>
/// <remarks>
/// The child is the same command line with <see cref="OnlyOption"/> naming the run's results folder: it recomputes
/// the configurations, trains the one whose folder that is (in-process) and writes its result to
/// <see cref="EpochsFileName"/> there (its whole <see cref="TrainingResult"/>), which the parent reads back.
/// </remarks>
public static class BenchChildRuns
{
    public const string OnlyOption = "--bench-only";
    public const string EpochsFileName = "bench-epochs.json";

    private static readonly JsonSerializerOptions Json = new() { NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals };

    /// <summary>True when this process is the distsgd program itself (not a test host), so that it can start copies of itself.</summary>
    public static bool CanStartChildren => Assembly.GetEntryAssembly()?.GetName().Name == "distsgd" && Environment.ProcessPath is not null;

    /// <summary>A trainer for <see cref="BenchRun.Measure"/> that runs each configuration as a child process of this command line.</summary>
    public static Func<TrainSettings, TrainingResult> Runner(string benchOut, CancellationToken cancellation) => settings =>
    {
        var start = new ProcessStartInfo(Environment.ProcessPath!)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        string[] args = Environment.GetCommandLineArgs();
        // `dotnet distsgd.dll …` runs under the dotnet host: the child needs the dll; an apphost or single-file binary does not.
        if (!Path.GetFileNameWithoutExtension(Environment.ProcessPath!).Equals("distsgd", StringComparison.Ordinal))
            start.ArgumentList.Add(args[0]);
        foreach (string arg in WithoutOut(args.Skip(1)))
            start.ArgumentList.Add(arg);
        foreach (string arg in new[] { "--out", benchOut, OnlyOption, settings.Out })
            start.ArgumentList.Add(arg);

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {start.FileName}");
        var error = new StringBuilder();
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (error) error.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using (cancellation.Register(() => { try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { } }))
            process.WaitForExit();
        cancellation.ThrowIfCancellationRequested();
        string file = Path.Combine(settings.Out, EpochsFileName);
        if (process.ExitCode != 0 || !File.Exists(file))
            throw new TrainingFailedException($"bench run in {settings.Out} exited {process.ExitCode}: {error.ToString().Trim()}");
        return JsonSerializer.Deserialize<TrainingResult>(File.ReadAllText(file), Json)
               ?? throw new TrainingFailedException($"{file}: no training result");
    };

    /// <summary>The child's side: trains the configuration whose results folder is <paramref name="only"/> and writes its result there.</summary>
    public static int RunOne(BenchSettings bench, string only, CancellationToken cancellation)
    {
        foreach (var (settings, _) in BenchRun.Runs(bench))
        {
            if (!Path.GetFullPath(settings.Out).Equals(Path.GetFullPath(only), StringComparison.Ordinal))
                continue;
            var outcome = BenchRun.TrainOne(settings, cancellation);
            AtomicFile.Write(Path.Combine(settings.Out, EpochsFileName),
                             Encoding.UTF8.GetBytes(JsonSerializer.Serialize(outcome.Result, Json)));
            return ExitCodes.Ok;
        }
        throw new UsageException($"{OnlyOption}: '{only}' is not the results folder of any configuration of this bench");
    }

    private static IEnumerable<string> WithoutOut(IEnumerable<string> args)
    {
        bool skip = false;
        foreach (string arg in args)
        {
            if (skip) { skip = false; continue; }
            if (arg == "--out") { skip = true; continue; }
            if (arg.StartsWith("--out=", StringComparison.Ordinal) || arg.StartsWith("--out:", StringComparison.Ordinal))
                continue;
            yield return arg;
        }
    }
}
