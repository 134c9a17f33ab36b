using DistSgd.Host.Runs;
using DistSgd.Host.Settings;

namespace DistSgd.Host.Tests.Cli;

/// <summary>`distsgd node` errors that are found before any port is opened, run in-process.</summary>
public class NodeCommandTests
{
    private static CliRunner.Outcome Node(params string[] args) =>
        CliRunner.Run(["node", "--dataset", "blobs", "--samples", "200", "--hidden", "4", .. args]);

    [Fact]
    public void A_malformed_hocon_file_is_named_with_the_line_of_the_problem()
    {
        using var temp = new TempFolder();
        File.WriteAllText(temp["node.conf"], "distsgd {\n  step-timeout = 10s\n\nakka.loglevel = INFO\n");
        var outcome = Node("--config", temp["node.conf"], "--print-config");
        Assert.Equal(ExitCodes.BadInput, outcome.ExitCode);
        Assert.Contains($"--config: {temp["node.conf"]} is not valid HOCON: line 1: '{{' is never closed", outcome.Error);
    }

    [Fact]
    public void A_bad_distsgd_value_in_the_config_file_names_its_key()
    {
        using var temp = new TempFolder();
        File.WriteAllText(temp["node.conf"], "distsgd.start-timeout = soon\n");
        var outcome = Node("--config", temp["node.conf"], "--print-config");
        Assert.Equal(ExitCodes.BadInput, outcome.ExitCode);
        Assert.Contains("distsgd.start-timeout: expected a duration such as 30s, found 'soon'", outcome.Error);
    }

    [Fact]
    public void Print_config_shows_the_file_s_overrides_and_the_flags_over_them()
    {
        using var temp = new TempFolder();
        File.WriteAllText(temp["node.conf"], "distsgd.step-timeout = 45s\nakka.remote.dot-netty.tcp.port = 9999\nakka.cluster.seed-nodes = [\"akka.tcp://distsgd@10.1.1.1:4053\"]\n");
        var outcome = Node("--config", temp["node.conf"], "--print-config", "--port", "5000", "--roles", "master,worker", "--public-host", "node1.example");
        Assert.True(outcome.ExitCode == 0, outcome.Error);
        Assert.Contains("distsgd.step-timeout = 45s", outcome.Output);
        Assert.Contains("akka.remote.dot-netty.tcp.port = 5000", outcome.Output);
        Assert.Contains("akka.remote.dot-netty.tcp.public-hostname = node1.example", outcome.Output);
        Assert.Contains("akka.cluster.roles = [\"master\", \"worker\"]", outcome.Output);
        Assert.Contains("akka.cluster.seed-nodes = [\"akka.tcp://distsgd@10.1.1.1:4053\"]", outcome.Output);
        Assert.Contains("akka.cluster.downing-provider-class = Akka.Cluster.SBR.SplitBrainResolverProvider", outcome.Output);
    }

    [Fact]
    public void The_shipped_hocon_files_load()
    {
        string hocon = Path.Combine(RepositoryRoot(), "hocon");
        // tls.conf names a certificate file to create first: TlsFlagsTests loads it with one.
        foreach (string file in new[] { "local.conf", "node.conf" })
        {
            var outcome = Node("--config", Path.Combine(hocon, file), "--print-config");
            Assert.True(outcome.ExitCode == 0, $"{file}: {outcome.Error}");
            Assert.Contains("distsgd.step-timeout = 30s", outcome.Output);
        }
    }

    [Theory]
    [InlineData(new[] { "--roles", "peer" }, "--roles: a centralized node holds master, worker or both, found 'peer'")]
    [InlineData(new[] { "--mode", "decentralized", "--roles", "master" }, "--roles: a decentralized node holds the role peer only, found 'master'")]
    [InlineData(new[] { "--roles", "boss" }, "--roles: expected comma-separated roles among master, worker, peer, found 'boss'")]
    [InlineData(new[] { "--mode", "sequential" }, "--mode: a node takes part in a centralized or decentralized run")]
    [InlineData(new[] { "--seed-nodes", "10.0.0.1" }, "--seed-nodes: expected host:port with a port from 1 to 65535, found '10.0.0.1'")]
    [InlineData(new[] { "--seed-nodes", "akka.tcp://other@10.0.0.1:4053" }, "--seed-nodes: every DistSgd node's actor system is 'distsgd', found 'other'")]
    [InlineData(new[] { "--port", "70000" }, "--port: expected a port from 0 to 65535, found '70000'")]
    [InlineData(new[] { "--join-timeout", "0" }, "--join-timeout: expected a number of seconds > 0, found '0'")]
    [InlineData(new[] { "--discovery", "dns" }, "--discovery: expected one of seed-nodes, config, kubernetes, found 'dns'")]
    [InlineData(new[] { "--discovery", "config", "--seed-nodes", "10.0.0.1:4053", "--discovery-endpoints", "10.0.0.1:8558" }, "--seed-nodes: not with --discovery config")]
    [InlineData(new[] { "--discovery", "config" }, "--discovery-endpoints: --discovery config needs the contact points' management endpoints")]
    [InlineData(new[] { "--discovery-endpoints", "10.0.0.1:8558" }, "--discovery-endpoints: only with --discovery config or kubernetes")]
    [InlineData(new[] { "--discovery", "config", "--discovery-endpoints", "10.0.0.1:8558,10.0.0.2" }, "--discovery-endpoints: expected host:port with a port from 1 to 65535 (the node's --management-port), found '10.0.0.2'")]
    [InlineData(new[] { "--discovery", "kubernetes", "--management-port", "4053" }, "--management-port: 4053 is also --port")]
    [InlineData(new[] { "--discovery", "kubernetes", "--management-port", "x" }, "--management-port")]
    public void A_bad_node_flag_is_named(string[] flags, string message)
    {
        var outcome = Node([.. flags, "--print-config"]);
        Assert.Equal(ExitCodes.BadInput, outcome.ExitCode);
        Assert.Contains(message, outcome.Error);
    }

    [Fact]
    public void Print_config_of_a_node_that_bootstraps_shows_the_management_endpoint_and_where_it_looks()
    {
        var config = Node("--discovery", "config", "--discovery-endpoints", "10.0.0.1:8558,10.0.0.2:8559", "--management-port", "8559",
                          "--host", "0.0.0.0", "--public-host", "10.0.0.2", "--run-id", "job-7", "--print-config");
        Assert.True(config.ExitCode == 0, config.Error);
        Assert.Contains("akka.management.http.hostname = 10.0.0.2", config.Output);
        Assert.Contains("akka.management.http.bind-hostname = 0.0.0.0", config.Output);
        Assert.Contains("akka.management.http.port = 8559", config.Output);
        Assert.Contains("akka.management.cluster.bootstrap.contact-point-discovery.service-name = job-7", config.Output);
        Assert.Contains("akka.management.cluster.bootstrap.contact-point-discovery.required-contact-point-nr = 2", config.Output);
        Assert.Contains("akka.discovery.method = config", config.Output);
        Assert.Contains("akka.discovery.config.services.job-7.endpoints = [\"10.0.0.1:8558\", \"10.0.0.2:8559\"]", config.Output);
        Assert.Contains("akka.cluster.seed-nodes = []", config.Output);

        var kubernetes = Node("--discovery", "kubernetes", "--kubernetes-selector", "app=distsgd,job=7", "--kubernetes-namespace", "ml",
                              "--required-contact-points", "4", "--print-config");
        Assert.True(kubernetes.ExitCode == 0, kubernetes.Error);
        Assert.Contains("akka.discovery.method = kubernetes-api", kubernetes.Output);
        Assert.Contains("akka.discovery.kubernetes-api.pod-label-selector = app=distsgd,job=7", kubernetes.Output);
        Assert.Contains("akka.discovery.kubernetes-api.class = DistSgd.Host.Runs.KubernetesPodDiscovery, distsgd", kubernetes.Output);
        Assert.Contains("akka.discovery.kubernetes-api.pod-namespace = ml", kubernetes.Output);
        Assert.Contains("akka.management.cluster.bootstrap.contact-point-discovery.required-contact-point-nr = 4", kubernetes.Output);

        // Seed nodes, the default, show none of it.
        var seeds = Node("--print-config");
        Assert.DoesNotContain("akka.management", seeds.Output);
    }

    [Fact]
    public void Kubernetes_discovery_outside_a_pod_is_refused_before_the_data_is_read()
    {
        var e = Assert.Throws<UsageException>(() => NodeBootstrap.CheckEnvironment(
            DiscoverySettings.Create(ClusterDiscovery.Kubernetes, false, null, null, null, null, null, 4053, "127.0.0.1", null), variable: null));
        Assert.StartsWith("--discovery kubernetes: KUBERNETES_SERVICE_HOST is not set", e.Message);
        NodeBootstrap.CheckEnvironment(DiscoverySettings.Create(ClusterDiscovery.Kubernetes, false, null, null, null, null, null, 4053, "127.0.0.1", null), "10.96.0.1");
        NodeBootstrap.CheckEnvironment(DiscoverySettings.SeedNodes, variable: null);
    }

    internal static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "DistSgd.sln")) || Directory.Exists(Path.Combine(dir.FullName, "hocon")))
                return dir.FullName;
        throw new DirectoryNotFoundException("the repository root (with hocon/) above " + AppContext.BaseDirectory);
    }
}
