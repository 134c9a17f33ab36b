using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.RegularExpressions;
using DistSgd.Actors.Transport;
using DistSgd.Host.Runs;

namespace DistSgd.Host.Tests.Runs;

/// <summary>
/// Issue 18's attacks on the data plane of a real 1 master + 2 worker cluster of node processes, all on 127.0.0.1 (so
/// the attacker's address is a member's and distsgd.direct.members-only refuses nothing): each is refused and counted
/// by kind, no worker is dropped, and the model is byte for byte the fault-free run's.
/// </summary>
[Collection(NodeProcessCollection.Name)]
public sealed partial class DataPlaneAttackTests
{
    /// <summary>Small steps (batch 8) so the run trains for several seconds: the attacks land while it steps.</summary>
    private static readonly string[] Run = ["--dataset", "blobs", "--samples", "8000", "--batch-size", "8", "--epochs", "30", "--hidden", "16", "--workers", "2"];

    private const int Parameters = 20 * 16 + 16 + 16 * 4 + 4;   // blobs: 20 features, 4 classes
    private const int IdleConnections = 200;
    private static readonly TimeSpan Judged = TimeSpan.FromSeconds(10);

    [GeneratedRegex(@"run (\S+) started with 2 workers")]
    private static partial Regex Started();

    private static string[] Node(int port, string seed, string roles, string outDir, params string[] extra) =>
        ["node", "--host", "127.0.0.1", "--port", $"{port}", "--seed-nodes", seed, "--roles", roles, .. Run, "--out", outDir, .. extra];

    private static Socket Open(int port)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        socket.Connect("127.0.0.1", port);
        return socket;
    }

    /// <summary>A frame naming worker 0, as a forger writes it.</summary>
    private static byte[] Frame(string runId, float value)
    {
        var bytes = new byte[FrameHeader.Size + Parameters * sizeof(float)];
        new FrameHeader(FrameKind.GradientReply, FrameHeader.HashRunId(runId), 3, 0, 1, 3, 8, 1, 0, Parameters).Write(bytes);
        MemoryMarshal.AsBytes(Enumerable.Repeat(value, Parameters).ToArray().AsSpan()).CopyTo(bytes.AsSpan(FrameHeader.Size));
        return bytes;
    }

    private static byte[] RandomBytes(int count)
    {
        var bytes = new byte[count];
        new Random(18).NextBytes(bytes);
        bytes[0] = (byte)'x';   // never a handshake's or a frame's magic
        return bytes;
    }

    /// <summary>True once the node closed the connection (it judged it), within <see cref="Judged"/>.</summary>
    private static bool ClosedByNode(Socket socket)
    {
        socket.ReceiveTimeout = (int)Judged.TotalMilliseconds;
        try
        {
            var buffer = new byte[4096];
            while (socket.Receive(buffer) > 0)
            {
            }
            return true;
        }
        catch (SocketException e)
        {
            return e.SocketErrorCode != SocketError.TimedOut;
        }
    }

    /// <summary>Sends <paramref name="bytes"/> (the node may already have closed the connection), optionally closes, and waits until the node closed it.</summary>
    private static void Attack(int port, byte[] bytes, bool thenClose, string what)
    {
        using var socket = Open(port);
        try
        {
            socket.Send(bytes);
        }
        catch (SocketException)
        {
            // Closed by the node while the bytes were still going: judged already.
        }
        if (thenClose)
            socket.Shutdown(SocketShutdown.Send);
        Assert.True(ClosedByNode(socket), $"{what}: the master did not close the connection within {Judged.TotalSeconds:0}s");
    }

    [Fact]
    public void Forged_stalled_idle_and_garbage_connections_are_refused_by_kind_and_the_model_is_the_fault_free_one()
    {
        using var temp = new TempFolder();
        var ports = NodeProcess.FreePorts(4);
        int dataPort = ports[3];
        string seed = $"127.0.0.1:{ports[0]}";
        // The master's data plane on a known port; a short frame timeout so the idle connections are judged within the run.
        File.WriteAllText(temp["master.conf"], $"distsgd.direct.port = {dataPort}\ndistsgd.direct.frame-timeout = 1s\n");
        using var group = new NodeGroup();
        var master = group.Start(Node(ports[0], seed, "master", temp["master"], "--config", temp["master.conf"]));
        var workers = new[] { 1, 2 }.Select(i => group.Start(Node(ports[i], seed, "worker", temp[$"worker-{i}"], "--quiet"))).ToList();
        master.WaitForOutput("started with 2 workers", NodeProcessTests.Bound);
        string runId = Started().Match(master.Output).Groups[1].Value;
        // Once an epoch is done both workers hold their proven connections. (A node that has to connect anew during the
        // flood gets in too: the oldest silent connection makes room, DataPlaneIdentityTests; here the run's timing
        // stays the one the assertions below were sized for.)
        master.WaitForOutput("epoch   1/", NodeProcessTests.Bound);

        Attack(dataPort, Frame(runId, 1f), thenClose: true, "a forged header naming worker 0");
        Attack(dataPort, Frame("another-run", 1f), thenClose: true, "a frame of another run naming worker 0");
        Attack(dataPort, Frame(runId, float.NaN), thenClose: true, "NaN frames naming worker 0");
        Attack(dataPort, Frame(runId, 1f)[..(FrameHeader.Size / 2)], thenClose: false, "half a frame, then a stall");
        Attack(dataPort, RandomBytes(1000), thenClose: false, "random bytes on the data port");
        var idle = Enumerable.Range(0, IdleConnections).Select(_ => Open(dataPort)).ToList();
        Assert.All(idle, socket => Assert.True(ClosedByNode(socket), "an idle connection was never closed"));
        idle.ForEach(socket => socket.Dispose());
        using (var akka = Open(ports[0]))
            akka.Send(RandomBytes(1000));   // Akka.Remote's port: its own framing refuses it
        Assert.False(master.HasExited, "the run ended before every attack was judged: make Run longer");

        Assert.True(master.WaitForExit(NodeProcessTests.Bound) == 0, master.Output);
        Assert.All(workers, w => Assert.True(w.WaitForExit(NodeProcessTests.Bound) == 0, w.Output));
        Assert.DoesNotContain("dropped its data connection", master.Output);
        Assert.DoesNotContain("shard goes to the others", master.Output);

        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(temp["master"], RunFiles.SummaryFileName)));
        var dropped = summary.RootElement.GetProperty("dropped_messages").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetInt64());
        string all = string.Join(", ", dropped.Select(d => $"{d.Key} {d.Value}"));
        Assert.True(dropped.GetValueOrDefault("refused_frame_before_handshake") == 4, $"forged, other-run, NaN and half frames: {all}");
        Assert.True(dropped.GetValueOrDefault("refused_garbage") == 1, $"random bytes: {all}");
        long idleCounted = dropped.GetValueOrDefault("refused_handshake_timeout") + dropped.GetValueOrDefault("refused_unproven_cap");
        Assert.True(idleCounted == IdleConnections, $"idle connections (timed out or beyond the cap): {all}\nthe master's output:\n{master.Output}");
        Assert.True(dropped.GetValueOrDefault("refused_unproven_cap") > 0, $"200 idle connections must exceed the cap: {all}");
        Assert.True(dropped.Keys.All(k => k.StartsWith("refused_", StringComparison.Ordinal)), $"nothing but the refusals is dropped: {all}");

        // The fault-free run: the same flags on the simulated cluster, which writes the same model as node processes.
        var faultFree = CliRunner.Run(["train", .. Run, "--quiet", "--out", temp["fault-free"]]);
        Assert.True(faultFree.ExitCode == 0, faultFree.Error);
        Assert.Equal(File.ReadAllBytes(Path.Combine(temp["fault-free"], RunFiles.ModelFileName)),
                     File.ReadAllBytes(Path.Combine(temp["master"], RunFiles.ModelFileName)));
    }
}
