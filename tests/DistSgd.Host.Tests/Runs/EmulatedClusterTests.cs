using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using DistSgd.Numerics.Cost;
using Xunit.Abstractions;

namespace DistSgd.Host.Tests.Runs;

/// <summary>
/// scripts/emulated-cluster.sh: the rate limit of each host's link holds (a transfer through it takes bytes / rate),
/// and the script leaves no namespace behind, whether the command ends, runs past the time limit or is interrupted.
/// Needs root (skipped, with the reason, where this process may not create namespaces).
/// </summary>
[Collection(NodeProcessCollection.Name)]
public partial class EmulatedClusterTests(ITestOutputHelper log)
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(120);

    [NamespaceFact]
    public void A_transfer_through_a_100mbit_link_takes_bytes_over_the_rate_and_nothing_is_left_behind()
    {
        using var temp = new TempFolder();
        // Host 0 echoes, host 1 times 4 MB round trips: each way 4 MB at 100 Mbit/s (with TCP/IP framing) ≈ 0.34 s.
        const string probe = """
            if [ "$EMU_INDEX" = 0 ]; then exec dotnet "$DISTSGD_DLL" bench link --listen "$EMU_ADDRESS:5000"
            else exec dotnet "$DISTSGD_DLL" bench link --to "$EMU_SEED:5000" --bytes 4000000 --repeat 3; fi
            """;
        var run = RunScript(temp.Path, ["-x", "-n", "2", "-r", "100mbit", "-t", "100", "--", "bash", "-c", probe]);
        Assert.True(run.ExitCode == 0, run.Output);
        string measured = File.ReadAllText(temp["node-1.log"]);
        var rate = RateLine().Match(measured);
        Assert.True(rate.Success, measured);
        double mbit = double.Parse(rate.Groups[1].Value, CultureInfo.InvariantCulture);
        // The payload's share of 100 Mbit/s: 1448 of every 1514 bytes on the wire.
        double expected = 100 / CostModel.EthernetFraming;
        log.WriteLine($"{measured.Trim()} (expected {expected:0.0} Mbit/s)");
        Assert.InRange(mbit, 0.85 * expected, 1.10 * expected);
        // The links' counters: host 1 sent at least the 6 payloads (3 warm-up round trips and 3 timed).
        var links = File.ReadAllLines(temp["links.tsv"]).Skip(1).Select(l => l.Split('\t')).ToList();
        Assert.Equal(2, links.Count);
        Assert.True(long.Parse(links[1][2], CultureInfo.InvariantCulture) >= 6 * 4_000_000L, string.Join('\n', links.Select(l => string.Join(' ', l))));
        AssertNothingLeft(run);
    }

    [NamespaceFact]
    public void A_run_past_the_time_limit_is_stopped_and_leaves_nothing()
    {
        using var temp = new TempFolder();
        var run = RunScript(temp.Path, ["-x", "-n", "2", "-r", "1gbit", "-t", "2", "--", "sleep", "300"]);
        Assert.True(run.ExitCode == 124, run.Output);
        Assert.Contains("did not end within 2s", run.Output);
        AssertNothingLeft(run);
    }

    [NamespaceFact]
    public void An_interrupted_run_leaves_nothing()
    {
        using var temp = new TempFolder();
        var run = RunScript(temp.Path, ["-x", "-n", "3", "-r", "none", "-t", "100", "--", "sleep", "300"],
                            interruptWhen: output => Regex.Matches(output, "^host ", RegexOptions.Multiline).Count == 3);
        Assert.True(run.ExitCode == 130, run.Output);
        Assert.Contains("interrupted", run.Output);
        AssertNothingLeft(run);
    }

    [Theory]
    [InlineData("-r fast", "-r: expected none or a rate such as 100mbit")]
    [InlineData("-n 0", "-n: expected 1 to 64 nodes, found '0'")]
    [InlineData("-m star", "-m: expected centralized or decentralized, found 'star'")]
    [InlineData("-t soon", "-t: expected a number of seconds ≥ 1, found 'soon'")]
    [InlineData("-x", "-x: expected a command after --")]
    public void Bad_usage_is_refused_before_anything_is_made(string flags, string message)
    {
        // Checked before root and iproute2: runs anywhere.
        var run = RunScript(Path.GetTempPath(), flags.Split(' '));
        Assert.True(run.ExitCode == 2, run.Output);
        Assert.Contains(message, run.Output);
        Assert.DoesNotContain("namespaces:", run.Output);
    }

    private sealed record ScriptRun(int ExitCode, string Output, string Prefix, IReadOnlyList<int> Pids, HashSet<string> LinksBefore);

    private static ScriptRun RunScript(string logs, string[] args, Func<string, bool>? interruptWhen = null)
    {
        var before = NetworkNamespaces.SkipReason() is null ? HostLinks() : [];
        var start = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(ScriptCertificates.Script("emulated-cluster.sh"));
        foreach (string arg in args)
            start.ArgumentList.Add(arg);
        start.Environment["LOGS"] = logs;
        start.Environment["DISTSGD_DLL"] = NodeProcess.Program;
        using var process = new Process { StartInfo = start };
        var output = new System.Text.StringBuilder();
        process.OutputDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        string Text() { lock (output) return output.ToString(); }
        var clock = Stopwatch.StartNew();
        if (interruptWhen is not null)
        {
            while (!interruptWhen(Text()) && !process.HasExited && clock.Elapsed < Bound)
                Thread.Sleep(100);
            // Ctrl+C is SIGINT; a process started with SIGINT ignored (a background job of a non-interactive shell, as
            // `dotnet test &` makes it) passes that on, and bash cannot trap a signal ignored on entry: then SIGTERM,
            // which the script handles the same way.
            string signal = SigIntIgnored() ? "-TERM" : "-INT";
            Process.Start("kill", [signal, process.Id.ToString(CultureInfo.InvariantCulture)])!.WaitForExit();
        }
        if (!process.WaitForExit(Bound))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"emulated-cluster.sh did not end within {Bound.TotalSeconds:0}s:\n{Text()}");
        }
        process.WaitForExit();
        string text = Text();
        string prefix = Regex.Match(text, @"namespaces: (\S+)\*").Groups[1].Value;
        var pids = Regex.Matches(text, @"^host \d+ \S+ \(\w+\): pid (\d+)", RegexOptions.Multiline)
                        .Select(m => int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).ToList();
        return new ScriptRun(process.ExitCode, text, prefix, pids, before);
    }

    /// <summary>True when this process ignores SIGINT (bit 2 of SigIgn in /proc/self/status), which its children inherit.</summary>
    private static bool SigIntIgnored()
    {
        string? line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("SigIgn:", StringComparison.Ordinal));
        return line is not null && (Convert.ToUInt64(line["SigIgn:".Length..].Trim(), 16) & (1UL << 1)) != 0;
    }

    private static void AssertNothingLeft(ScriptRun run)
    {
        Assert.False(string.IsNullOrEmpty(run.Prefix), run.Output);
        Assert.NotEmpty(run.Pids);
        var namespaces = Ip("netns", "list");
        Assert.DoesNotContain(run.Prefix, namespaces);
        foreach (int pid in run.Pids)
            Assert.False(Alive(pid), $"host process {pid} still runs:\n{run.Output}");
        // Nothing was made in this machine's namespace (other tests' namespaces, "dsgd…", may come and go meanwhile).
        var added = HostLinks().Except(run.LinksBefore).Where(l => !l.StartsWith("dsgd", StringComparison.Ordinal)).ToList();
        Assert.True(added.Count == 0, "links left in this machine's namespace: " + string.Join(", ", added));
    }

    private static bool Alive(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    private static HashSet<string> HostLinks() =>
        Ip("-o", "link", "show").Split('\n', StringSplitOptions.RemoveEmptyEntries)
                                .Select(l => l.Split(':')[1].Trim().Split('@')[0]).ToHashSet();

    private static string Ip(params string[] args)
    {
        var start = new ProcessStartInfo("ip") { RedirectStandardOutput = true, UseShellExecute = false };
        foreach (string arg in args)
            start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        string text = process.StandardOutput.ReadToEnd();
        Assert.True(process.WaitForExit(TimeSpan.FromSeconds(20)), $"ip {string.Join(' ', args)} did not answer");
        return text;
    }

    [GeneratedRegex(@"payload rate ([0-9.]+) Mbit/s")]
    private static partial Regex RateLine();
}
