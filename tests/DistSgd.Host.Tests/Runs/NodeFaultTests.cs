using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using DistSgd.Host.Runs;

namespace DistSgd.Host.Tests.Runs;

/// <summary>
/// Faults in a cluster of separate `distsgd node` processes: a worker or the master's process is killed with
/// SIGKILL mid-run, and the run still finishes. Recovery times are measured by scripts/fault-tolerance.sh (worker
/// ≈ 0.1 s, master ≈ 12 s; targets 5 s and 15 s); here they are asserted with bounds loose enough for a loaded machine
/// that still fail on a return to Akka's defaults (a crashed master back after ≈ 48 s).
/// </summary>
[Collection(NodeProcessCollection.Name)]
public class NodeFaultTests
{
    /// <summary>Long enough (300 steps an epoch) for a kill after epoch 1 to land mid-run; small enough for CI. Three
    /// processes (a master and two workers) keep a majority of two after one is lost.</summary>
    internal static readonly string[] Run =
        ["--dataset", "blobs", "--samples", "12000", "--epochs", "3", "--hidden", "32", "--batch-size", "16", "--workers", "2"];

    /// <summary>
    /// A node of the run, each step's compute stretched 30× (distsgd.debug.slowdown, a sleep: ~1 s an epoch), so that a
    /// kill after epoch 1 lands mid-run however lean the step: unstretched, an epoch took 0.1 s and once (CI) the run was
    /// over before the master's kill.
    /// </summary>
    private static string[] Node(int port, string seed, string roles, string output)
    {
        string config = output + "-slow.conf";
        File.WriteAllText(config, "distsgd.debug.slowdown = 30\n");
        return ["node", "--host", "127.0.0.1", "--port", $"{port}", "--seed-nodes", seed, "--roles", roles, .. Run, "--config", config, "--out", output];
    }

    /// <summary>The same run without a fault, on the simulated cluster (which gives the multi-process run's very model).</summary>
    private static double FaultFreeAccuracy(TempFolder temp)
    {
        var run = CliRunner.Run(["train", .. Run, "--out", temp["fault-free"]]);
        Assert.True(run.ExitCode == 0, run.Error);
        return Accuracy(temp["fault-free"]);
    }

    private static double Accuracy(string folder)
    {
        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, RunFiles.SummaryFileName)));
        return summary.RootElement.GetProperty("final_test_accuracy").GetDouble();
    }

    /// <summary>From the kill to the worker's loss seen by the master; the README's target is 5 s.</summary>
    internal static readonly TimeSpan WorkerLossBound = TimeSpan.FromSeconds(10);

    /// <summary>From the kill to a new master training again; the README's target is 15 s, Akka's defaults give ≈ 48 s.</summary>
    internal static readonly TimeSpan MasterRecoveryBound = TimeSpan.FromSeconds(30);

    /// <summary>Time from <paramref name="killed"/> (UTC) to the first time of day (HH:mm:ss.fff, UTC) in group 1 of <paramref name="pattern"/>.</summary>
    internal static TimeSpan SinceKill(DateTime killed, string text, string pattern)
    {
        var match = Regex.Match(text, pattern);
        Assert.True(match.Success, $"no line matches {pattern}:\n{text}");
        var seen = TimeSpan.ParseExact(match.Groups[1].Value, @"hh\:mm\:ss\.fff", CultureInfo.InvariantCulture);
        var elapsed = seen - killed.TimeOfDay;
        return elapsed < -TimeSpan.FromHours(12) ? elapsed + TimeSpan.FromDays(1) : elapsed;   // across midnight
    }

    private static List<long> Numbers(string text, string pattern) =>
        Regex.Matches(text, pattern).Select(m => long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).ToList();

    [Fact]
    public void A_worker_process_killed_mid_epoch_is_dropped_at_once_and_the_run_finishes_as_accurate()
    {
        using var temp = new TempFolder();
        var ports = NodeProcess.FreePorts(3);
        string seed = $"127.0.0.1:{ports[0]}";
        using var group = new NodeGroup();
        var master = group.Start(Node(ports[0], seed, "master", temp["master"]));
        var workers = ports.Skip(1).Select(p => group.Start(Node(p, seed, "worker", temp[$"worker-{p}"]))).ToList();

        master.WaitForOutput("epoch   1/3", NodeProcessTests.Bound);
        var killed = DateTime.UtcNow;
        workers[1].KillNow();

        Assert.True(master.WaitForExit(NodeProcessTests.Bound) == 0, master.Output);
        Assert.True(workers[0].WaitForExit(NodeProcessTests.Bound) == 0, workers[0].Output);
        // The log says when the loss was seen (a time of day, the step) and that the shards were cut again. Which path
        // sees it first is a race: the killed process's socket closing, the master's next send of θ failing, or the
        // failure detector; each is a loss seen at once (the first two) or within seconds (the last).
        var seen = SinceKill(killed, master.Output, @"(\d\d:\d\d:\d\d\.\d{3}) (?:step \d+: worker \d at \S+ (?:dropped its data connection|could not be sent)|worker \d at \S+ unreachable)");
        Assert.True(seen < WorkerLossBound, $"the worker's loss was seen {seen.TotalSeconds:0.00} s after the kill (bound {WorkerLossBound.TotalSeconds} s)\n{master.Output}");
        Assert.Contains("the training set is cut into 1 shards", master.Output);
        Assert.Equal(3, File.ReadAllLines(Path.Combine(temp["master"], RunFiles.MetricsFileName)).Length - 1);
        // The kill lands at a random step, so the worker's shard is lost for a varying part of epoch 1: within 0.75
        // point of the fault-free run (2,400 test samples: 18 of them; −0.50 point, 12 samples, was seen in CI).
        Assert.InRange(Accuracy(temp["master"]) - FaultFreeAccuracy(temp), -0.0075, 0.0075);
    }

    [Fact]
    public void The_master_s_process_killed_mid_run_moves_to_a_standby_node_which_recovers_from_the_workers_and_finishes()
    {
        using var temp = new TempFolder();
        var ports = NodeProcess.FreePorts(3);
        string seed = $"127.0.0.1:{ports[0]}";
        using var group = new NodeGroup();
        var master = group.Start(Node(ports[0], seed, "master", temp["master"]));
        // The first worker may host the master too (the standby); the second is a worker only.
        var workers = ports.Skip(1).Select((p, i) => group.Start(Node(p, seed, i == 0 ? "worker,master" : "worker", temp[$"node-{p}"]))).ToList();

        master.WaitForOutput("epoch   1/3", NodeProcessTests.Bound);
        var killed = DateTime.UtcNow;
        master.KillNow();

        foreach (var worker in workers)
            Assert.True(worker.WaitForExit(NodeProcessTests.Bound) == 0, worker.Output);
        var successor = Assert.Single(workers, w => w.Output.Contains("new master: θ of step", StringComparison.Ordinal));
        Assert.Same(workers[0], successor);   // only a node with the master role may host it
        var again = SinceKill(killed, successor.Output, @"(\d\d:\d\d:\d\d\.\d{3}) run \S+ recovered at step");
        Assert.True(again < MasterRecoveryBound, $"training again {again.TotalSeconds:0.00} s after the kill (bound {MasterRecoveryBound.TotalSeconds} s)\n{successor.Output}");
        int folder = workers.IndexOf(successor);
        Assert.True(File.Exists(Path.Combine(temp[$"node-{ports[folder + 1]}"], RunFiles.ModelFileName)), successor.Output);

        // Every worker reports the step of the latest θ it holds. The old master had finished at most the step of the
        // highest of those (it sends θ of step s + 1 only after finishing s): recovering exactly that highest step
        // goes back at most one step, and never takes θ from a worker that is behind.
        var held = workers.SelectMany(w => Numbers(w.Output, @"the master of \S+ stopped at step (\d+)")).ToList();
        Assert.Equal(2, held.Count);
        long recovered = Assert.Single(Numbers(successor.Output, @"new master: θ of step (\d+) recovered"));
        Assert.Equal(held.Max(), recovered);

        // The step column never goes back: the new master's first epoch ends no earlier than the old master's last. It
        // may end at the same step: killed right after closing an epoch, before θ of the next step reached a worker, the
        // old master leaves the workers holding θ of that epoch's last step, which the new master takes again and then
        // closes the same epoch (CI saw step 300 in both).
        // The old master may be killed between printing epoch 1's line and appending its row (CI saw no metrics.csv): then
        // it recorded no step at all.
        string oldMetrics = Path.Combine(temp["master"], RunFiles.MetricsFileName);
        long oldLast = (File.Exists(oldMetrics) ? File.ReadAllLines(oldMetrics).Skip(1) : [])
                           .Select(l => long.Parse(l.Split(',')[1], CultureInfo.InvariantCulture)).DefaultIfEmpty(0).Max();
        var newSteps = File.ReadAllLines(Path.Combine(temp[$"node-{ports[folder + 1]}"], RunFiles.MetricsFileName)).Skip(1)
                           .Select(l => long.Parse(l.Split(',')[1], CultureInfo.InvariantCulture)).ToList();
        Assert.True(newSteps[0] >= oldLast, $"old master's last epoch ended at step {oldLast}, the new master's first at {newSteps[0]}");
    }
}

/// <summary>A network partition between hosts of their own (network namespaces): the master's host is cut off.</summary>
[Collection(NodeProcessCollection.Name)]
public class NodePartitionTests
{
    private static readonly string[] Run = NodeFaultTests.Run;

    [NamespaceFact]
    public void A_master_cut_off_on_the_minority_side_stops_updating_and_is_downed_while_the_majority_side_finishes()
    {
        using var namespaces = NetworkNamespaces.Create(3);
        using var temp = new TempFolder();
        string seed = $"{NetworkNamespaces.Address(0)}:4053";
        using var group = new NodeGroup();
        // Host 0: the master; host 1: a worker that may host the master; host 2: a worker.
        var nodes = Enumerable.Range(0, 3).Select(i =>
            group.Start(["node", "--host", NetworkNamespaces.Address(i), "--port", "4053", "--seed-nodes", seed,
                         "--roles", i == 0 ? "master" : i == 1 ? "worker,master" : "worker", .. Run, "--out", temp[$"host-{i}"]],
                        prefix: namespaces.On(i))).ToList();

        nodes[0].WaitForOutput("epoch   1/3", NodeProcessTests.Bound);
        namespaces.Cut(0);

        // The minority side (the master alone) stops stepping, is downed by its own split brain resolver and exits 1.
        Assert.Equal(1, nodes[0].WaitForExit(NodeProcessTests.Bound));
        string old = nodes[0].Output;
        int paused = old.IndexOf("master on the minority side of a partition", StringComparison.Ordinal);
        Assert.True(paused >= 0, old);
        Assert.DoesNotMatch(@"epoch +\d/3", old[paused..]);      // no epoch completed after it saw the minority
        Assert.Contains("this node was removed from the cluster before the run ended", old);

        // The majority side downs the master's host, moves the singleton and finishes the run.
        foreach (var node in nodes.Skip(1))
            Assert.True(node.WaitForExit(NodeProcessTests.Bound) == 0, node.Output);
        var successor = Assert.Single(nodes.Skip(1), n => n.Output.Contains("new master: θ of step", StringComparison.Ordinal));
        Assert.Same(nodes[1], successor);
        Assert.True(File.Exists(Path.Combine(temp["host-1"], RunFiles.ModelFileName)), successor.Output);
    }
}
