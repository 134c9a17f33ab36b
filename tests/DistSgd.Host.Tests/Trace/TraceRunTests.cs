using System.Globalization;
using System.Text.Json;
using DistSgd.Host.Runs;
using DistSgd.Host.Tests.Runs;

namespace DistSgd.Host.Tests.Trace;

/// <summary>--trace FILE: one Chrome trace per run, one track per node, bounded, and (node processes) on one clock.</summary>
public class TraceRunTests
{
    private static JsonElement[] Events(string file) =>
        JsonDocument.Parse(File.ReadAllText(file)).RootElement.EnumerateArray().Select(e => e.Clone()).ToArray();

    private static string Name(JsonElement e) => e.GetProperty("name").GetString()!;

    private static Dictionary<int, string> Tracks(JsonElement[] events) =>
        events.Where(e => Name(e) == "process_name").ToDictionary(e => e.GetProperty("pid").GetInt32(), e => e.GetProperty("args").GetProperty("name").GetString()!);

    [Fact]
    public void A_two_worker_run_writes_one_trace_with_a_track_per_node_whose_steps_add_up_to_metrics_csv()
    {
        using var temp = new TempFolder();
        string trace = temp["trace.json"];
        var run = CliRunner.Run("train", "--workers", "2", "--dataset", "blobs", "--samples", "4000", "--epochs", "3", "--hidden", "16",
                                "--patience", "0", "--out", temp["run"], "--trace", trace);
        Assert.True(run.ExitCode == 0, run.Error);

        var events = Events(trace);
        var tracks = Tracks(events);
        Assert.Equal(["master", "worker 0", "worker 1"], tracks.Values.Order());
        int master = tracks.Single(t => t.Value == "master").Key;
        var spans = events.Where(e => e.GetProperty("ph").GetString() == "X").ToArray();
        string[] Phases(int pid) => spans.Where(s => s.GetProperty("pid").GetInt32() == pid).Select(Name).Distinct().Order().ToArray();
        Assert.Superset(new HashSet<string> { "step", "open", "send", "wait", "receive", "update", "evaluation", "checkpoint" }, Phases(master).ToHashSet());
        foreach (var worker in tracks.Where(t => t.Value.StartsWith("worker", StringComparison.Ordinal)))
            Assert.Superset(new HashSet<string> { "step", "compute", "send", "receive" }, Phases(worker.Key).ToHashSet());
        // Membership events are instants on the master's track: both workers registered.
        Assert.Equal(2, events.Count(e => e.GetProperty("ph").GetString() == "i" && Name(e).StartsWith("worker registered", StringComparison.Ordinal)));

        // Each step's spans on the master's thread add up to its time in metrics.csv (broadcast, wait, update: the step
        // less its opening and what follows the update), within 5 % for every epoch after the first: the first step's
        // one-time costs (code compiled at its first call) fall between the update's two clocks, tens of ms on a loaded
        // machine against an epoch of 0.2 s.
        var coordinator = spans.Where(s => s.GetProperty("pid").GetInt32() == master && s.GetProperty("tid").GetInt32() == 1).ToArray();
        double Sum(string phase, long from, long to) => coordinator
            .Where(s => Name(s) == phase && s.GetProperty("args").GetProperty("step").GetInt64() is var step && step >= from && step < to)
            .Sum(s => s.GetProperty("dur").GetDouble()) / 1e6;
        var rows = File.ReadAllLines(Path.Combine(temp["run"], RunFiles.MetricsFileName)).Skip(1).Select(l => l.Split(',')).ToArray();
        Assert.Equal(3, rows.Length);
        long first = 0;
        foreach (var row in rows)
        {
            long last = long.Parse(row[1], CultureInfo.InvariantCulture);
            double seconds = double.Parse(row[5], CultureInfo.InvariantCulture);
            double traced = Sum("step", first, last) - Sum("open", first, last) - Sum("after update", first, last);
            if (row[0] != "1")
                Assert.True(Math.Abs(traced - seconds) <= 0.05 * seconds, $"epoch {row[0]}: the trace's steps add up to {traced:F4} s, metrics.csv says {seconds:F4} s");
            first = last;
        }
        Assert.Contains($"trace: 3 tracks written to {trace}", run.Output);
    }

    [Fact]
    public void A_long_run_keeps_the_trace_under_its_bound()
    {
        using var temp = new TempFolder();
        File.WriteAllText(temp["small-trace.conf"], "distsgd.trace-max-spans = 60\n");
        string trace = temp["trace.json"];
        var run = CliRunner.Run("train", "--mode", "decentralized", "--workers", "2", "--dataset", "blobs", "--samples", "6000", "--epochs", "3",
                                "--hidden", "8", "--batch-size", "16", "--patience", "0", "--quiet", "--out", temp["run"], "--trace", trace,
                                "--config", temp["small-trace.conf"]);
        Assert.True(run.ExitCode == 0, run.Error);

        var events = Events(trace);
        var tracks = Tracks(events);
        Assert.Equal(["peer 0", "peer 1"], tracks.Values.Order());
        foreach (int pid in tracks.Keys)
        {
            Assert.InRange(events.Count(e => e.GetProperty("ph").GetString() == "X" && e.GetProperty("pid").GetInt32() == pid), 1, 60);
            var process = events.Single(e => Name(e) == "process_name" && e.GetProperty("pid").GetInt32() == pid);
            Assert.True(process.GetProperty("args").GetProperty("spans_overwritten").GetInt64() > 1_000, "the run made many more spans than it kept");
        }
        // 60 spans a track of at most 250 bytes each, plus the metadata: the file does not grow with the run.
        Assert.InRange(new FileInfo(trace).Length, 1, tracks.Count * (60 * 250 + 2_000));
    }

    [Fact]
    public void Trace_is_refused_for_a_sequential_run_and_for_a_folder()
    {
        using var temp = new TempFolder();
        var sequential = CliRunner.Run("train", "--mode", "sequential", "--dataset", "blobs", "--samples", "100", "--out", temp["a"], "--trace", temp["t.json"]);
        Assert.Equal(2, sequential.ExitCode);
        Assert.Contains("--trace: traces the nodes of a centralized or decentralized run", sequential.Error);
        Directory.CreateDirectory(temp["folder"]);
        var folder = CliRunner.Run("train", "--dataset", "blobs", "--samples", "100", "--out", temp["b"], "--trace", temp["folder"]);
        Assert.Equal(2, folder.ExitCode);
        Assert.Contains($"--trace: expected the path of the JSON file to write, found the folder {temp["folder"]}", folder.Error);
        Assert.False(Directory.Exists(temp["a"]) || Directory.Exists(temp["b"]), "a refused run made its results folder");
    }

    [Fact]
    public void Peer_processes_write_a_track_each_on_the_reference_nodes_clock_and_their_files_merge()
    {
        using var temp = new TempFolder();
        var ports = NodeProcess.FreePorts(2).Order().ToArray();
        string seed = $"127.0.0.1:{ports[0]}";
        using var group = new NodeGroup();
        var peers = ports.Select(p => group.Start(["node", "--host", "127.0.0.1", "--port", $"{p}", "--seed-nodes", seed, "--roles", "peer",
                                                   "--mode", "decentralized", "--workers", "2", "--dataset", "blobs", "--samples", "6000",
                                                   "--epochs", "2", "--hidden", "16", "--patience", "0",
                                                   "--out", temp[$"peer-{p}"], "--trace", temp[$"trace-{p}.json"]])).ToList();
        foreach (var peer in peers)
            Assert.True(peer.WaitForExit(NodeProcessTests.Bound) == 0, peer.Output);

        var merged = ports.SelectMany(p => Events(temp[$"trace-{p}.json"])).ToArray();
        Assert.Equal(["peer 0", "peer 1"], Tracks(merged).Values.Order());
        // The reference (lowest address) keeps its clock; the other node measured its offset over Akka. Both run on this
        // machine's one monotonic clock, so the true offset is 0: the estimate is within half a loopback round trip.
        Assert.Contains("trace: 1 track written to", peers[0].Output);
        var moved = System.Text.RegularExpressions.Regex.Match(peers[1].Output, @"moved by (-?\d+) µs to the reference node's clock");
        // An estimate of exactly 0 is not printed; one is printed unless the estimate happened to be 0.
        if (moved.Success)
            Assert.InRange(int.Parse(moved.Groups[1].Value, CultureInfo.InvariantCulture), -5_000, 5_000);
        Assert.DoesNotContain("moved by", peers[0].Output);
        Assert.Contains("trace: 1 track written to", peers[1].Output);
        // The two tracks' steps overlap in time: each step's share is exchanged, so step s runs at once on both.
        double Start(string name, int step) => merged.Where(e => e.GetProperty("ph").GetString() == "X" && Name(e) == "step")
            .Where(e => Tracks(merged)[e.GetProperty("pid").GetInt32()] == name && e.GetProperty("args").GetProperty("step").GetInt64() == step)
            .Select(e => e.GetProperty("ts").GetDouble()).Single();
        Assert.InRange(Math.Abs(Start("peer 0", 50) - Start("peer 1", 50)), 0, 50_000);
    }
}
