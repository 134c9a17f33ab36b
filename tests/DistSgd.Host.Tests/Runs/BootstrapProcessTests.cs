using DistSgd.Host.Runs;

namespace DistSgd.Host.Tests.Runs;

/// <summary>`distsgd node` processes that find each other through Akka.Management's cluster bootstrap instead of seed nodes.</summary>
[Collection(NodeProcessCollection.Name)]
public class BootstrapProcessTests
{
    [Fact]
    public void Three_peers_with_config_discovery_and_no_seed_nodes_form_a_cluster_and_train_the_model_seed_nodes_train()
    {
        using var temp = new TempFolder();
        var ports = NodeProcess.FreePorts(9);
        string endpoints = string.Join(",", ports[3..6].Select(p => $"127.0.0.1:{p}"));
        string[] Peer(int i, string folder, params string[] join) =>
            ["node", "--host", "127.0.0.1", "--port", $"{ports[i]}", .. join, "--roles", "peer", "--mode", "decentralized", "--workers", "3",
             .. NodeProcessTests.SmallRun, "--out", temp[$"{folder}-{i}"]];

        // Akka.Management's timings come from the --config file like any Akka key (defaults: 5 s stable margin, 5 s probes).
        File.WriteAllText(temp["bootstrap.conf"], """
            akka.management.cluster.bootstrap.contact-point-discovery.stable-margin = 2s
            akka.management.cluster.bootstrap.contact-point.probe-interval = 1s
            """);
        // The same run through seed nodes (the default) on other ports, at the same time.
        string seed = $"127.0.0.1:{ports[6]}";
        using var group = new NodeGroup();
        var bootstrapped = Enumerable.Range(0, 3).Select(i => group.Start(
            Peer(i, "bootstrap", "--discovery", "config", "--discovery-endpoints", endpoints, "--management-port", $"{ports[3 + i]}",
                 "--config", temp["bootstrap.conf"]))).ToList();
        var seeded = Enumerable.Range(6, 3).Select(i => group.Start(Peer(i, "seeds", "--seed-nodes", seed))).ToList();
        foreach (var peer in bootstrapped.Concat(seeded))
            Assert.True(peer.WaitForExit(NodeProcessTests.Bound) == 0, peer.Output);

        // Akka.Management's bootstrap joined them: the lowest contact point started the cluster, the others joined it.
        string[] logs = Enumerable.Range(0, 3).Select(i => File.ReadAllText(Path.Combine(temp[$"bootstrap-{i}"], DistSgd.Host.Results.RunLog.FileName))).ToArray();
        Assert.Single(logs, log => log.Contains("Initiating new cluster, self-joining", StringComparison.Ordinal));
        Assert.Equal(2, logs.Count(log => log.Contains("to existing cluster", StringComparison.Ordinal)));

        byte[] Model(string folder, IEnumerable<int> nodes) =>
            File.ReadAllBytes(Assert.Single(nodes.Select(i => Path.Combine(temp[$"{folder}-{i}"], RunFiles.ModelFileName)), File.Exists));
        Assert.Equal(Model("seeds", [6, 7, 8]), Model("bootstrap", [0, 1, 2]));
    }

    [Fact]
    public void A_node_whose_contact_points_never_answer_gives_up_after_the_join_timeout_naming_the_discovery()
    {
        using var temp = new TempFolder();
        var ports = NodeProcess.FreePorts(3);
        using var node = NodeProcess.Start(["node", "--host", "127.0.0.1", "--port", $"{ports[0]}", "--discovery", "config",
            "--discovery-endpoints", $"127.0.0.1:{ports[1]},127.0.0.1:{ports[2]}", "--management-port", $"{ports[1]}", "--join-timeout", "8",
            "--mode", "decentralized", "--workers", "2", .. NodeProcessTests.SmallRun, "--out", temp["node"]]);
        Assert.Equal(ExitCodes.BadInput, node.WaitForExit(NodeProcessTests.Bound));
        Assert.Contains($"error: --discovery config: could not join a cluster through config discovery of 'distsgd' at 127.0.0.1:{ports[1]}, 127.0.0.1:{ports[2]} " +
                        "(2 contact points required) within 8s", node.Output);
    }
}
