using DistSgd.Host.Runs;

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
    public void A_bad_node_flag_is_named(string[] flags, string message)
    {
        var outcome = Node([.. flags, "--print-config"]);
        Assert.Equal(ExitCodes.BadInput, outcome.ExitCode);
        Assert.Contains(message, outcome.Error);
    }

    internal static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "DistSgd.sln")) || Directory.Exists(Path.Combine(dir.FullName, "hocon")))
                return dir.FullName;
        throw new DirectoryNotFoundException("the repository root (with hocon/) above " + AppContext.BaseDirectory);
    }
}
