using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using DistSgd.Actors.Centralized;
using DistSgd.Actors.Transport;

namespace DistSgd.Actors.Tests.Transport;

/// <summary>
/// The data plane against connections that do not prove the node they claim: each is closed and counted by kind, and
/// none ever reports the node it named as lost (<see cref="DataConnectionLost"/>), while that node's own proven
/// connection goes on working. Every wait is bounded.
/// </summary>
public sealed class DataPlaneIdentityTests() : MasterPlaneTest(RunId, Parameters, FrameTimeout)
{
    private new const string RunId = "identity-run";
    private const int Parameters = 100;
    // Long enough for a loaded machine to start a reader thread and answer; the trickle below outlasts it 4 times.
    private static readonly TimeSpan FrameTimeout = TimeSpan.FromSeconds(1);

    private static byte[] Hello(Socket client)
    {
        using var stream = new NetworkStream(client, ownsSocket: false);
        return HandshakeClient.Hello(stream);
    }

    private static byte[] Frame(int sender, float value, string runId = RunId, int count = Parameters)
    {
        var bytes = new byte[FrameHeader.Size + count * sizeof(float)];
        new FrameHeader(FrameKind.GradientReply, FrameHeader.HashRunId(runId), 1, sender, 1, 1, 8, 1, 0, count).Write(bytes);
        MemoryMarshal.AsBytes(Enumerable.Repeat(value, count).ToArray().AsSpan()).CopyTo(bytes.AsSpan(FrameHeader.Size));
        return bytes;
    }

    /// <summary>Waits until the plane counted <paramref name="count"/> refusals of <paramref name="kind"/>, then checks that nothing was delivered.</summary>
    private void RefusedAs(ConnectionRefusal kind, long count = 1)
    {
        var deadline = DateTime.UtcNow + Wait;
        while (Master.Refusals.GetValueOrDefault(kind) < count)
        {
            Assert.True(DateTime.UtcNow < deadline, $"no {count} × {kind} within {Wait.TotalSeconds:0}s; counted: {string.Join(", ", Master.Refusals)}");
            Thread.Sleep(20);
        }
        Assert.Equal(count, Master.Refusals[kind]);
        Assert.False(Delivered.TryTake(out var extra, TimeSpan.FromMilliseconds(200)), $"unexpected delivery {extra}");
        Assert.Equal(0, Master.BadFrames);
    }

    /// <summary>Worker 0's own connection proves itself, delivers, and only its loss is reported as worker 0's.</summary>
    private void TheRealWorkerStillWorks()
    {
        var client = Connect(0);
        client.Send(Frame(0, 4f));
        Assert.True(Delivered.TryTake(out var message, Wait), "worker 0's genuine frame was not delivered");
        Assert.Equal(Enumerable.Repeat(4f, Parameters), Assert.IsType<GradientReply>(message).Gradient);
        client.Close();
        Assert.True(Delivered.TryTake(out var lost, Wait), "the proven connection's close was not reported");
        Assert.Equal(0, Assert.IsType<DataConnectionLost>(lost).Sender);
    }

    [Fact]
    public void An_answer_under_the_wrong_key_is_refused_as_a_bad_proof()
    {
        var client = Open();
        client.Send(HandshakeClient.Answer(Hello(client), RunId, 0, Keys[1]));

        Assert.True(ClosedByPeer(client));
        RefusedAs(ConnectionRefusal.BadProof);
        TheRealWorkerStillWorks();
    }

    [Fact]
    public void A_replayed_answer_of_a_genuine_connection_is_refused_as_a_bad_proof()
    {
        var genuine = Open();
        var answer = HandshakeClient.Answer(Hello(genuine), RunId, 0, Keys[0]);
        genuine.Send(answer);   // an eavesdropper records this

        var replay = Open();
        Hello(replay);
        replay.Send(answer);

        Assert.True(ClosedByPeer(replay));
        RefusedAs(ConnectionRefusal.BadProof);
    }

    [Fact]
    public void A_node_index_out_of_range_is_refused_as_an_unknown_node()
    {
        var client = Open();
        client.Send(HandshakeClient.Answer(Hello(client), RunId, 5, Keys[0]));

        Assert.True(ClosedByPeer(client));
        RefusedAs(ConnectionRefusal.UnknownNode);
    }

    [Fact]
    public void An_answer_of_another_run_is_refused_as_wrong_run()
    {
        var client = Open();
        client.Send(HandshakeClient.Answer(Hello(client), "another-run", 0, Keys[0]));

        Assert.True(ClosedByPeer(client));
        RefusedAs(ConnectionRefusal.WrongRun);
    }

    [Fact]
    public void A_truncated_answer_is_refused_when_the_connection_closes()
    {
        var client = Open();
        client.Send(HandshakeClient.Answer(Hello(client), RunId, 0, Keys[0]).AsSpan(0, 40));
        client.Shutdown(SocketShutdown.Send);

        Assert.True(ClosedByPeer(client));
        RefusedAs(ConnectionRefusal.HandshakeClosed);
    }

    [Fact]
    public void A_stalled_answer_is_refused_after_the_frame_timeout()
    {
        var client = Open();
        client.Send(HandshakeClient.Answer(Hello(client), RunId, 0, Keys[0]).AsSpan(0, 40));   // then silence

        Assert.True(ClosedByPeer(client));
        RefusedAs(ConnectionRefusal.HandshakeTimeout);
    }

    [Fact]
    public void An_answer_trickled_a_byte_at_a_time_is_bounded_by_the_frame_timeout_as_a_whole()
    {
        var client = Open();
        var answer = HandshakeClient.Answer(Hello(client), RunId, 0, Keys[0]);
        var started = DateTime.UtcNow;
        bool cut = false;
        for (int i = 0; i < answer.Length && !cut; i++)
        {
            try
            {
                client.Send(answer.AsSpan(i, 1));   // 80 bytes × 50 ms: 4 s, each gap well inside the frame timeout
            }
            catch (SocketException)
            {
                cut = true;
            }
            Thread.Sleep(50);
            cut |= Master.Refusals.ContainsKey(ConnectionRefusal.HandshakeTimeout);
        }

        Assert.True(cut, "the trickle was never cut off");
        Assert.True(DateTime.UtcNow - started < FrameTimeout * 3, $"cut after {(DateTime.UtcNow - started).TotalSeconds:0.0}s, the frame timeout is {FrameTimeout.TotalSeconds:0}s");
        RefusedAs(ConnectionRefusal.HandshakeTimeout);
    }

    [Fact]
    public void Random_bytes_instead_of_an_answer_are_refused_as_garbage()
    {
        var client = Open();
        Hello(client);
        var garbage = DataPlaneHandshake.NewRandom(500);
        garbage[0] = (byte)'x';
        client.Send(garbage);

        Assert.True(ClosedByPeer(client));
        RefusedAs(ConnectionRefusal.Garbage);
    }

    [Theory]
    [InlineData("forged header naming worker 0", "")]
    [InlineData("another run's frame", "another-run")]
    [InlineData("NaN frame", "nan")]
    [InlineData("half a frame, then a stall", "half")]
    public void A_frame_sent_without_the_handshake_is_refused_and_never_reports_the_worker_it_names_lost(string attack, string variant)
    {
        var client = Open();
        var frame = variant switch
        {
            "another-run" => Frame(0, 1f, runId: "another-run"),
            "nan" => Frame(0, float.NaN),
            _ => Frame(0, 1f),
        };
        client.Send(variant == "half" ? frame.AsSpan(0, FrameHeader.Size / 2) : frame);
        if (variant != "half")
            client.Close();

        RefusedAs(ConnectionRefusal.FrameBeforeHandshake);
        Assert.True(Master.FramesReceived == 0, $"{attack}: a frame was read");
        TheRealWorkerStillWorks();   // its own connection's close is the only loss reported
    }

    [Fact]
    public void Idle_connections_beyond_the_cap_close_the_oldest_at_once_and_the_others_time_out()
    {
        int cap = DataPlaneHandshake.UnprovenCap(2);
        var idle = Enumerable.Range(0, cap + 20).Select(_ => Open()).ToList();

        RefusedAs(ConnectionRefusal.UnprovenCap, 20);
        Assert.All(idle.Take(20), c => Assert.True(ClosedByPeer(c)));   // the oldest made room
        RefusedAs(ConnectionRefusal.HandshakeTimeout, cap);
        Assert.All(idle, c => Assert.True(ClosedByPeer(c)));
        TheRealWorkerStillWorks();
    }

    [Fact]
    public void A_flood_of_idle_connections_during_a_real_nodes_connect_does_not_keep_it_out()
    {
        // Before, the idle connections held every unproven slot for the frame timeout and the worker's connection was
        // refused: its frame never came, and the master's step waited for distsgd.step-timeout (30 s).
        var refusals = new ConcurrentBag<DataPlaneRefusal>();
        Master.Refused = refusals.Add;
        // The worker tries again within its frame timeout, distsgd.direct.frame-timeout's default: long enough for the flood to pass.
        using var worker = new DirectDataPlane(new DataPlaneOptions(RunId, Parameters, FrameKind.ComputeGradient, 1, "127.0.0.1", 0, TimeSpan.FromSeconds(5)),
                                               ComputeGradient.FromFrame, _ => { });
        worker.Trust(0, Master.Endpoint, Master.Key);
        Master.Trust(1, worker.Endpoint, worker.Key);
        int cap = DataPlaneHandshake.UnprovenCap(2);
        var idle = Enumerable.Range(0, 2 * cap).Select(_ => Open()).ToList();   // every slot is held when the worker connects
        var flood = new Thread(() =>
        {
            while (idle.Count < 200)
                idle.Add(Open());
        });
        flood.Start();

        var started = DateTime.UtcNow;
        bool sent = worker.Send(Master.Endpoint, new FrameHeader(FrameKind.GradientReply, 0, 1, 1, 1, 0, 8, 1, 0, 0), Enumerable.Repeat(3f, Parameters).ToArray());
        bool delivered = Delivered.TryTake(out var message, Wait);
        var took = DateTime.UtcNow - started;
        flood.Join();

        Assert.True(sent, "the worker's connection was refused during the flood");
        Assert.True(delivered, "the worker's frame was not delivered during the flood");
        Assert.Equal(Enumerable.Repeat(3f, Parameters), Assert.IsType<GradientReply>(message).Gradient);
        Assert.True(took < TimeSpan.FromSeconds(10), $"the worker's frame took {took.TotalSeconds:0.0}s (the step timeout it must beat is 30 s)");
        Assert.True(Master.Refusals.GetValueOrDefault(ConnectionRefusal.UnprovenCap) >= cap, $"counted: {string.Join(", ", Master.Refusals)}");
        Assert.Contains(refusals, r => r.Kind == ConnectionRefusal.UnprovenCap && r.Remote.StartsWith("127.0.0.1:", StringComparison.Ordinal));
        Assert.DoesNotContain(Delivered, d => d is DataConnectionLost);
    }

    [Fact]
    public void A_key_advertised_while_a_connection_proves_itself_is_waited_for_within_the_frame_timeout()
    {
        using var master = new DirectDataPlane(new DataPlaneOptions(RunId, Parameters, FrameKind.GradientReply, 2, "127.0.0.1", 0, TimeSpan.FromSeconds(3)),
                                               GradientReply.FromFrame, Delivered.Add);
        using var worker = new DirectDataPlane(new DataPlaneOptions(RunId, Parameters, FrameKind.ComputeGradient, 1, "127.0.0.1", 0, TimeSpan.FromSeconds(3)),
                                               ComputeGradient.FromFrame, _ => { });
        worker.Trust(0, master.Endpoint, master.Key);
        var late = new Thread(() =>
        {
            Thread.Sleep(300);   // a peer's start barrier passes a moment after another peer's first share
            master.Trust(1, worker.Endpoint, worker.Key);
        });
        late.Start();

        Assert.True(worker.Send(master.Endpoint, new FrameHeader(FrameKind.GradientReply, 0, 1, 1, 1, 0, 8, 1, 0, 0), Enumerable.Repeat(2f, Parameters).ToArray()));
        Assert.True(Delivered.TryTake(out var message, Wait));
        Assert.Equal(1, Assert.IsType<GradientReply>(message).WorkerIndex);
        late.Join();
    }

    [Fact]
    public void A_sender_sends_nothing_to_an_endpoint_whose_key_it_does_not_know_or_that_does_not_hold_it()
    {
        using var worker = new DirectDataPlane(new DataPlaneOptions(RunId, Parameters, FrameKind.ComputeGradient, 1, "127.0.0.1", 0, FrameTimeout),
                                               ComputeGradient.FromFrame, _ => { });
        var header = new FrameHeader(FrameKind.GradientReply, 0, 1, 1, 1, 0, 8, 1, 0, 0);
        var payload = Enumerable.Repeat(2f, Parameters).ToArray();
        Master.Trust(1, worker.Endpoint, worker.Key);

        Assert.False(worker.Send(Master.Endpoint, header, payload));                   // no key advertised for it
        worker.Trust(0, Master.Endpoint, DataPlaneHandshake.NewRandom());              // an impostor's endpoint, as far as the worker knows
        Assert.False(worker.Send(Master.Endpoint, header, payload));
        Assert.False(Delivered.TryTake(out var frame, TimeSpan.FromMilliseconds(300)) && frame is GradientReply, "a frame reached a server that did not prove its key");
        Assert.Equal(0, Master.FramesReceived);
    }
}
