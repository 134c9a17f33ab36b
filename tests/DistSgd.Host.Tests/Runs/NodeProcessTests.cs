using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using DistSgd.Host.Runs;

namespace DistSgd.Host.Tests.Runs;

/// <summary>Clusters of separate `distsgd node` processes on loopback: one at a time, each bounded in time.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class NodeProcessCollection
{
    public const string Name = "node processes";
}

[Collection(NodeProcessCollection.Name)]
public class NodeProcessTests
{
    /// <summary>How long any node process may take; a small run ends in seconds.</summary>
    internal static readonly TimeSpan Bound = TimeSpan.FromSeconds(90);

    internal static readonly string[] SmallRun = ["--dataset", "blobs", "--samples", "600", "--epochs", "2", "--hidden", "16", "--quiet"];

    internal static string[] Node(int port, string seed, string roles, params string[] run) =>
        ["node", "--host", "127.0.0.1", "--port", $"{port}", "--seed-nodes", seed, "--roles", roles, .. SmallRun, .. run];

    [Fact]
    public void One_master_and_three_worker_processes_train_to_the_end_like_the_simulated_cluster()
    {
        using var temp = new TempFolder();
        var ports = NodeProcess.FreePorts(4);
        string seed = $"127.0.0.1:{ports[0]}";
        using var group = new NodeGroup();
        var master = group.Start(Node(ports[0], seed, "master", "--workers", "3", "--out", temp["master"]));
        var workers = ports.Skip(1).Select(p => group.Start(Node(p, seed, "worker", "--workers", "3", "--out", temp[$"worker-{p}"]))).ToList();

        Assert.True(master.WaitForExit(Bound) == 0, master.Output);
        // Nodes that stop together after a good run print no Akka warnings or errors about the closed
        // associations (they used to, with stack traces, after the run's last line).
        Assert.DoesNotContain("[ERROR]", master.Output);
        Assert.DoesNotContain("Disassociated", master.Output);
        foreach (var worker in workers)
        {
            Assert.True(worker.WaitForExit(Bound) == 0, worker.Output);
            Assert.DoesNotContain("[ERROR]", worker.Output);
            Assert.Contains("the master writes the results", worker.Output);
            // Only the node that ends the run writes results; every node writes its Akka log.
            NodeProcess.AssertHoldsOnlyTheLog(temp[$"worker-{ports[1]}"]);
        }

        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(temp["master"], RunFiles.SummaryFileName)));
        Assert.Equal("node", summary.RootElement.GetProperty("command").GetString());
        Assert.Equal(2, summary.RootElement.GetProperty("epochs_run").GetInt32());
        Assert.Equal(3, File.ReadAllLines(Path.Combine(temp["master"], RunFiles.MetricsFileName)).Length);

        // The same flags on the single-process simulated cluster give the very same model file.
        var simulated = CliRunner.Run(["train", "--workers", "3", .. SmallRun, "--out", temp["simulated"]]);
        Assert.True(simulated.ExitCode == 0, simulated.Error);
        Assert.Equal(File.ReadAllBytes(Path.Combine(temp["simulated"], RunFiles.ModelFileName)),
                     File.ReadAllBytes(Path.Combine(temp["master"], RunFiles.ModelFileName)));
    }

    [Fact]
    public void Three_peer_processes_train_to_the_end_and_the_lead_peer_writes_the_results()
    {
        using var temp = new TempFolder();
        var ports = NodeProcess.FreePorts(3).Order().ToArray();
        string seed = $"127.0.0.1:{ports[0]}";
        using var group = new NodeGroup();
        var peers = ports.Select(p => group.Start(Node(p, seed, "peer", "--mode", "decentralized", "--workers", "3", "--out", temp[$"peer-{p}"]))).ToList();

        foreach (var peer in peers)
            Assert.True(peer.WaitForExit(Bound) == 0, peer.Output);
        // Node ids are the ranks of the peers' addresses: exactly one peer, node 0, wrote the results.
        var written = ports.Where(p => File.Exists(Path.Combine(temp[$"peer-{p}"], RunFiles.ModelFileName))).ToList();
        Assert.Single(written);
        Assert.Equal(2, File.ReadAllLines(Path.Combine(temp[$"peer-{written[0]}"], RunFiles.MetricsFileName)).Length - 1);
        Assert.Equal(2, peers.Count(p => p.Output.Contains("the lead peer (lowest node id) writes the results")));

        var simulated = CliRunner.Run(["train", "--mode", "decentralized", "--workers", "3", .. SmallRun, "--out", temp["simulated"]]);
        Assert.True(simulated.ExitCode == 0, simulated.Error);
        Assert.Equal(File.ReadAllBytes(Path.Combine(temp["simulated"], RunFiles.ModelFileName)),
                     File.ReadAllBytes(Path.Combine(temp[$"peer-{written[0]}"], RunFiles.ModelFileName)));
    }

    [Fact]
    public void Nodes_with_json_print_only_json_objects_and_each_writes_akkas_log_to_its_results_folder()
    {
        using var temp = new TempFolder();
        var ports = NodeProcess.FreePorts(2);
        string seed = $"127.0.0.1:{ports[0]}";
        using var group = new NodeGroup();
        var master = group.Start([.. Node(ports[0], seed, "master", "--workers", "1", "--out", temp["master"]), "--json"]);
        var worker = group.Start([.. Node(ports[1], seed, "worker", "--workers", "1", "--out", temp["worker"]), "--json"]);

        Assert.True(master.WaitForExit(Bound) == 0, master.Output);
        Assert.True(worker.WaitForExit(Bound) == 0, worker.Output);
        // Standard output is JSON only, one object per line: the master's epochs and its end, the worker's end.
        string[] Types(NodeProcess node) => node.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => JsonDocument.Parse(line).RootElement.GetProperty("type").GetString()!).ToArray();
        Assert.Equal(["epoch", "epoch", "done"], Types(master));
        Assert.Equal(["done"], Types(worker));
        using var done = JsonDocument.Parse(master.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1]);
        Assert.StartsWith("done: 2 epochs", done.RootElement.GetProperty("message").GetString());
        Assert.Contains("the master writes the results", worker.StandardOutput);
        // Akka's log (INFO and up) is in each node's distsgd.log, as a train run's is.
        foreach (string folder in new[] { temp["master"], temp["worker"] })
            Assert.Contains(File.ReadLines(Path.Combine(folder, DistSgd.Host.Results.RunLog.FileName)),
                            line => line.Contains("[INFO]", StringComparison.Ordinal) && line.Contains("Remoting started", StringComparison.Ordinal));
        Assert.True(File.Exists(Path.Combine(temp["master"], RunFiles.ModelFileName)));
        NodeProcess.AssertHoldsOnlyTheLog(temp["worker"]);
    }

    [Fact]
    public void A_worker_with_a_different_run_configuration_refuses_and_names_the_difference()
    {
        using var temp = new TempFolder();
        var ports = NodeProcess.FreePorts(2);
        string seed = $"127.0.0.1:{ports[0]}";
        using var group = new NodeGroup();
        var master = group.Start(Node(ports[0], seed, "master", "--workers", "1", "--out", temp["master"]));
        var worker = group.Start([.. Node(ports[1], seed, "worker", "--workers", "1", "--out", temp["worker"]), "--hidden", "32", "--batch-size", "16"]);

        int workerExit = worker.WaitForExit(Bound);
        int masterExit = master.WaitForExit(Bound);
        Assert.True(workerExit == ExitCodes.TrainingFailed, worker.Output);
        Assert.Contains("model: mlp 20-32-4 relu on this node vs mlp 20-16-4 relu at the master", worker.Output);
        Assert.Contains("batch size per worker: 16 on this node vs 64 at the master", worker.Output);
        Assert.True(masterExit == ExitCodes.TrainingFailed, master.Output);
        Assert.Contains("refused to join", master.Output);
        Assert.False(File.Exists(Path.Combine(temp["master"], RunFiles.ModelFileName)));
    }

    [Fact]
    public void A_peer_with_a_different_seed_fails_the_run_naming_the_seeds()
    {
        var ports = NodeProcess.FreePorts(2);
        string seed = $"127.0.0.1:{ports[0]}";
        using var group = new NodeGroup();
        using var temp = new TempFolder();
        var first = group.Start(Node(ports[0], seed, "peer", "--mode", "decentralized", "--workers", "2", "--out", temp["a"]));
        var second = group.Start(Node(ports[1], seed, "peer", "--mode", "decentralized", "--workers", "2", "--out", temp["b"], "--seed", "2"));

        Assert.True(first.WaitForExit(Bound) == ExitCodes.TrainingFailed, first.Output);
        Assert.True(second.WaitForExit(Bound) == ExitCodes.TrainingFailed, second.Output);
        Assert.Matches(@"seed: 1 here vs 2 at akka\.tcp://distsgd@127\.0\.0\.1:\d+", first.Output);
        Assert.Matches(@"seed: 2 here vs 1 at akka\.tcp://distsgd@127\.0\.0\.1:\d+", second.Output);
    }

    [Fact]
    public void A_node_whose_seed_nodes_are_unreachable_gives_up_after_the_join_timeout()
    {
        var ports = NodeProcess.FreePorts(2);
        using var node = NodeProcess.Start(Node(ports[0], $"127.0.0.1:{ports[1]}", "worker", "--join-timeout", "3"));
        var clock = System.Diagnostics.Stopwatch.StartNew();
        Assert.True(node.WaitForExit(Bound) == ExitCodes.BadInput, node.Output);
        Assert.InRange(clock.Elapsed.TotalSeconds, 0, 30);
        Assert.Contains($"--seed-nodes: could not join the cluster through akka.tcp://distsgd@127.0.0.1:{ports[1]} within 3s", node.Output);
    }

    [Fact]
    public void A_node_whose_port_is_in_use_says_so()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        try
        {
            int port = ((IPEndPoint)listener.LocalEndpoint).Port;
            using var node = NodeProcess.Start(Node(port, $"127.0.0.1:{port}", "master"));
            Assert.True(node.WaitForExit(Bound) == ExitCodes.BadInput, node.Output);
            Assert.Contains($"--host 127.0.0.1 --port {port}: cannot listen for Akka remoting there", node.Output);
        }
        finally
        {
            listener.Stop();
        }
    }

    [Fact]
    public void SIGTERM_makes_a_waiting_node_leave_the_cluster_and_exit()
    {
        var ports = NodeProcess.FreePorts(1);
        using var node = NodeProcess.Start(["node", "--host", "127.0.0.1", "--port", $"{ports[0]}", "--workers", "1",
                                            "--dataset", "blobs", "--samples", "600", "--hidden", "16"]);
        node.WaitForOutput("worker waiting for the master", Bound);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        node.Terminate();
        Assert.True(node.WaitForExit(Bound) == ExitCodes.TrainingFailed, node.Output);
        Assert.InRange(clock.Elapsed.TotalSeconds, 0, 20);
        Assert.Contains("interrupted: leaving the cluster", node.Output);
    }

    [Fact]
    public void Environment_variables_stand_in_for_flags_and_flags_win()
    {
        var environment = new Dictionary<string, string>
        {
            ["DISTSGD_PORT"] = "4711",
            ["DISTSGD_ROLES"] = "master,worker",
            ["DISTSGD_SEED_NODES"] = "10.0.0.1:4053,10.0.0.2:4053",
            ["DISTSGD_HOST"] = "10.0.0.9",
            ["DISTSGD_PRINT_CONFIG"] = "1",
        };
        using var node = NodeProcess.Start(["node", "--dataset", "blobs", "--samples", "200", "--hidden", "4", "--host", "0.0.0.0"], environment);
        Assert.True(node.WaitForExit(Bound) == 0, node.Output);
        Assert.Contains("akka.remote.dot-netty.tcp.port = 4711", node.Output);
        Assert.Contains("akka.remote.dot-netty.tcp.hostname = 0.0.0.0", node.Output);
        Assert.Contains("akka.cluster.roles = [\"master\", \"worker\"]", node.Output);
        Assert.Contains("akka.cluster.seed-nodes = [\"akka.tcp://distsgd@10.0.0.1:4053\", \"akka.tcp://distsgd@10.0.0.2:4053\"]", node.Output);

        using var bad = NodeProcess.Start(["node", "--dataset", "blobs"], new Dictionary<string, string> { ["DISTSGD_PORT"] = "many" });
        Assert.True(bad.WaitForExit(Bound) == ExitCodes.BadInput, bad.Output);
        Assert.Contains("(from the environment variable DISTSGD_PORT)", bad.Output);
    }
}
