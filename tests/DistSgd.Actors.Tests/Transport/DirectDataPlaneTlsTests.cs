using System.Collections.Concurrent;
using System.Net.Security;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using DistSgd.Actors.Centralized;
using DistSgd.Actors.Security;
using DistSgd.Actors.Tests.Security;
using DistSgd.Actors.Transport;

namespace DistSgd.Actors.Tests.Transport;

/// <summary>
/// The direct data plane with TLS: frames between nodes of one CA arrive intact; a plain sender, a sender with a
/// certificate of another CA, or a receiver of another CA gets no byte through, and nothing is ever delivered from
/// them. Every wait is bounded.
/// </summary>
public sealed class DirectDataPlaneTlsTests : IDisposable
{
    private const string RunId = "tls-run";
    private const int Parameters = 250_000;   // 1 MB frames: many TLS records each
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan FrameTimeout = TimeSpan.FromSeconds(1);

    private readonly TestCertificates _ca = new();
    private readonly TestCertificates _otherCa = new("Another CA");
    private readonly BlockingCollection<object> _delivered = new();
    private readonly List<IDisposable> _owned = new();

    public void Dispose()
    {
        foreach (var owned in _owned)
            owned.Dispose();
        _ca.Dispose();
        _otherCa.Dispose();
    }

    private DirectDataPlane Plane(NodeTls? tls, FrameKind accepts = FrameKind.GradientReply, Action<object>? deliver = null)
    {
        var plane = new DirectDataPlane(new DataPlaneOptions(RunId, Parameters, accepts, SenderCount: 2, "127.0.0.1", 0, FrameTimeout, Tls: tls),
                                        accepts == FrameKind.ComputeGradient ? ComputeGradient.FromFrame : GradientReply.FromFrame,
                                        deliver ?? (_ => { }));
        _owned.Add(plane);
        return plane;
    }

    private DirectDataPlane Master(NodeTls? tls) => Plane(tls, deliver: _delivered.Add);

    /// <summary>What the control plane does: each plane learns the other's endpoint and key (the worker is node 1, the master node 0).</summary>
    private static void Introduce(DirectDataPlane master, DirectDataPlane worker, int workerNode = 1)
    {
        master.Trust(workerNode, worker.Endpoint, worker.Key);
        worker.Trust(0, master.Endpoint, master.Key);
    }

    private static FrameHeader Header(int sender, long step) =>
        new(FrameKind.GradientReply, 0, step, sender, 1, (int)step, 8, 1.5, 0.001, 0);

    private static float[] Gradient(float seed) => Enumerable.Range(0, Parameters).Select(i => seed + i * 0.5f).ToArray();

    private T Next<T>()
    {
        Assert.True(_delivered.TryTake(out var message, Wait), $"nothing delivered within {Wait.TotalSeconds:0}s, expected a {typeof(T).Name}");
        return Assert.IsType<T>(message);
    }

    private void NothingDelivered() => Assert.False(_delivered.TryTake(out var extra, TimeSpan.FromMilliseconds(300)), $"unexpected delivery {extra}");

    /// <summary>Sends until a send fails (a refused TLS 1.3 client learns it at its next write), at most 10 tries.</summary>
    private static bool SendFailsWithin(DirectDataPlane sender, string endpoint, float[] payload)
    {
        for (int attempt = 0; attempt < 10; attempt++)
        {
            if (!sender.Send(endpoint, Header(0, attempt), payload))
                return true;
            Thread.Sleep(100);
        }
        return false;
    }

    private static void Eventually(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + Wait;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"{what} did not happen within {Wait.TotalSeconds:0}s");
            Thread.Sleep(20);
        }
    }

    [Fact]
    public void Frames_between_nodes_of_one_CA_arrive_intact_over_TLS_also_after_an_idle_pause_longer_than_the_frame_timeout()
    {
        var master = Master(_ca.Load("master"));
        var worker = Plane(_ca.Load("worker"), FrameKind.ComputeGradient);
        Introduce(master, worker);
        var first = Gradient(1f);
        var second = Gradient(-7f);

        Assert.True(worker.Send(master.Endpoint, Header(1, 5), first));
        var reply = Next<GradientReply>();
        Assert.Equal((RunId, 5L, 1), (reply.RunId, reply.Step, reply.WorkerIndex));
        Assert.Equal(first, reply.Gradient);

        // Between frames a connection may idle as long as a step takes; only a started frame has the frame timeout.
        Thread.Sleep(FrameTimeout * 2);
        Assert.True(worker.Send(master.Endpoint, Header(1, 6), second));
        Assert.Equal(second, Next<GradientReply>().Gradient);
        Assert.Equal((0L, 0L), (master.BadFrames, master.RefusedConnections));
    }

    [Fact]
    public void A_plain_sender_is_refused_before_a_frame_is_read()
    {
        var master = Master(_ca.Load("master"));
        var plain = Plane(null, FrameKind.ComputeGradient);
        Introduce(master, plain, workerNode: 0);

        SendFailsWithin(plain, master.Endpoint, Gradient(1f));
        Eventually(() => master.Refusals.GetValueOrDefault(ConnectionRefusal.TlsFailed) >= 1, "the refusal");
        NothingDelivered();
        Assert.Equal(0, master.FramesReceived);
    }

    [Fact]
    public void A_sender_with_a_certificate_of_another_CA_gets_no_frame_through()
    {
        var master = Master(_ca.Load("master"));
        var intruder = Plane(_otherCa.Load("intruder"), FrameKind.ComputeGradient);
        Introduce(master, intruder, workerNode: 0);   // even knowing the key: the certificate is refused first

        Assert.True(SendFailsWithin(intruder, master.Endpoint, Gradient(1f)), "the intruder's sends never failed");
        Eventually(() => master.Refusals.GetValueOrDefault(ConnectionRefusal.TlsFailed) >= 1, "the refusal");
        NothingDelivered();
        Assert.Equal(0, master.FramesReceived);
    }

    [Fact]
    public void A_sender_does_not_send_to_a_receiver_of_another_CA_or_to_a_plain_one()
    {
        var worker = Plane(_ca.Load("worker"), FrameKind.ComputeGradient);
        var impostor = Master(_otherCa.Load("impostor"));
        var plain = Master(null);
        Introduce(impostor, worker, workerNode: 0);
        Introduce(plain, worker, workerNode: 0);

        // The server's certificate is checked during the handshake, before any payload byte is written.
        Assert.False(worker.Send(impostor.Endpoint, Header(0, 1), Gradient(1f)));
        Assert.False(worker.Send(plain.Endpoint, Header(0, 1), Gradient(1f)));
        NothingDelivered();
        Assert.Equal(0, impostor.FramesReceived + plain.FramesReceived);
    }

    [Fact]
    public void A_TLS_frame_that_stalls_midway_is_cut_off_after_the_frame_timeout_and_its_sender_is_lost()
    {
        var master = Master(_ca.Load("master"));
        var identity = _ca.Load("worker");
        var workerKey = DataPlaneHandshake.NewRandom();
        master.Trust(0, "worker:1", workerKey);
        int port = int.Parse(master.Endpoint.Split(':')[1]);
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Connect("127.0.0.1", port);
        using var tls = new SslStream(new NetworkStream(socket, ownsSocket: false));
        tls.AuthenticateAsClient(identity.ClientOptions("127.0.0.1"));
        using var sealer = new RecordSealer(HandshakeClient.Prove(tls, RunId, 0, workerKey, master.Key), RecordDirection.ClientToServer);

        // After the handshakes frames go as AEGIS-256 records on the bare socket.
        var bytes = new byte[FrameHeader.Size + 16 * sizeof(float)];
        (Header(0, 3) with { RunHash = FrameHeader.HashRunId(RunId), Count = 16 }).Write(bytes);
        MemoryMarshal.AsBytes(Enumerable.Repeat(2f, 16).ToArray().AsSpan()).CopyTo(bytes.AsSpan(FrameHeader.Size));
        var records = RecordSocket.SendBuffer(1024);
        void Frame(int cut)
        {
            int n = sealer.Seal(bytes.AsSpan(0, FrameHeader.Size), records);
            socket.Send(records.AsSpan(0, n));
            n = sealer.Seal(bytes.AsSpan(FrameHeader.Size), records);
            socket.Send(records.AsSpan(0, Math.Min(n, cut)));
        }
        Frame(int.MaxValue);
        Assert.Equal(Enumerable.Repeat(2f, 16).ToArray(), Next<GradientReply>().Gradient);
        Frame(DataPlaneRecords.HeaderSize + 8);   // half a frame, then silence

        var lost = Next<DataConnectionLost>();
        Assert.Equal(0, lost.Sender);
        Assert.Contains("no bytes for", lost.Reason);
        Assert.Equal(1, master.BadFrames);
    }
}
