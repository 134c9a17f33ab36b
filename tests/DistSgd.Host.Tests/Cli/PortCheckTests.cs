using System.Net;
using System.Net.Sockets;
using DistSgd.Host.Runs;

namespace DistSgd.Host.Tests.Cli;

/// <summary>Ports that cannot be listened on are bad input found before the data is read (issue 18); loopback only.</summary>
public class PortCheckTests
{
    /// <summary>A listener holding a loopback port until disposed.</summary>
    private sealed class HeldPort : IDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);

        public HeldPort() => _listener.Start();

        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

        public void Dispose() => _listener.Stop();
    }

    private static void AssertRefusedInOneLine(CliRunner.Outcome outcome, string expected)
    {
        Assert.True(outcome.ExitCode == ExitCodes.BadInput, $"exit {outcome.ExitCode}; stderr: {outcome.Error}");
        Assert.Contains(expected, outcome.Error);
        Assert.Single(outcome.Error.TrimEnd().Split('\n'));
        Assert.DoesNotContain("   at ", outcome.Output + outcome.Error);
    }

    [Fact]
    public void A_node_whose_remoting_port_is_in_use_is_refused_naming_the_flag()
    {
        using var held = new HeldPort();
        var outcome = CliRunner.Run("node", "--dataset", "blobs", "--samples", "200", "--hidden", "4", "--host", "127.0.0.1",
                                    "--port", held.Port.ToString(), "--join-timeout", "5");
        AssertRefusedInOneLine(outcome, $"--host 127.0.0.1 --port {held.Port}: cannot listen for Akka remoting there: the port is in use");
        Assert.DoesNotContain("data:", outcome.Output);   // refused before the data is read
    }

    [Fact]
    public void A_node_whose_direct_port_is_in_use_is_refused_naming_the_key()
    {
        using var temp = new TempFolder();
        using var held = new HeldPort();
        File.WriteAllText(temp["node.conf"], $"distsgd.direct.port = {held.Port}\n");
        var outcome = CliRunner.Run("node", "--dataset", "blobs", "--samples", "200", "--hidden", "4", "--host", "127.0.0.1", "--port", "0",
                                    "--transport", "direct", "--config", temp["node.conf"], "--join-timeout", "5");
        AssertRefusedInOneLine(outcome, $"distsgd.direct.port: cannot listen on 127.0.0.1:{held.Port} for the direct data plane: the port is in use");
    }

    [Fact]
    public void A_fixed_direct_port_for_the_simulated_cluster_is_refused_before_anything_is_written()
    {
        using var temp = new TempFolder();
        File.WriteAllText(temp["run.conf"], "distsgd.direct.port = 45123\n");
        var outcome = CliRunner.Run("train", "--dataset", "blobs", "--samples", "100", "--hidden", "4", "--epochs", "1", "--workers", "2",
                                    "--transport", "direct", "--config", temp["run.conf"], "--out", temp["run"]);
        AssertRefusedInOneLine(outcome, "distsgd.direct.port: train runs its 3 nodes on one host, so they cannot share the fixed port 45123; expected 0");
        Assert.False(Directory.Exists(temp["run"]));
    }

    [Fact]
    public void A_free_port_and_port_zero_can_be_listened_on_and_a_held_one_cannot()
    {
        int free;
        using (var held = new HeldPort())
        {
            free = held.Port;
            Assert.Contains("in use", PortChecks.CannotListen("127.0.0.1", held.Port));
        }
        Assert.Null(PortChecks.CannotListen("127.0.0.1", free));
        Assert.Null(PortChecks.CannotListen("127.0.0.1", 0));
    }
}
