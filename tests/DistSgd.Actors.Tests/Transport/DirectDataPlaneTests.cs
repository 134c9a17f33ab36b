using System.Net;
using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using DistSgd.Actors.Centralized;
using DistSgd.Actors.Steps;
using DistSgd.Actors.Transport;

namespace DistSgd.Actors.Tests.Transport;

/// <summary>
/// The direct data plane's reader against hand-made byte streams on connections that proved their node
/// (<see cref="DataPlaneHandshake"/>; the handshake's own refusals are <see cref="DataPlaneIdentityTests"/>): what it
/// delivers, what it refuses, and that a refused or broken frame never reaches the step while a good connection goes on
/// working. Every wait is bounded.
/// </summary>
public sealed class DirectDataPlaneTests() : MasterPlaneTest(RunId, Parameters, TimeSpan.FromSeconds(1))
{
    private new const string RunId = "frame-run";
    private const int Parameters = 1000;   // a master of 2 workers: gradient replies from senders 0 and 1 of at most 1000 floats

    private static byte[] Frame(int sender, long step, float[] values, string runId = RunId, int? announcedCount = null,
                                FrameKind kind = FrameKind.GradientReply)
    {
        var bytes = new byte[FrameHeader.Size + values.Length * sizeof(float)];
        new FrameHeader(kind, FrameHeader.HashRunId(runId), step, sender, 1, (int)step, values.Length == 0 ? 0 : 8, 1.5, 0.001,
                        announcedCount ?? values.Length).Write(bytes);
        MemoryMarshal.AsBytes(values.AsSpan()).CopyTo(bytes.AsSpan(FrameHeader.Size));
        return bytes;
    }

    private static float[] Gradient(float value, int count = Parameters) => Enumerable.Repeat(value, count).ToArray();

    private T Next<T>()
    {
        Assert.True(Delivered.TryTake(out var message, Wait), $"nothing delivered within {Wait.TotalSeconds:0}s, expected a {typeof(T).Name}");
        return Assert.IsType<T>(message);
    }

    private void NothingMore() => Assert.False(Delivered.TryTake(out var extra, TimeSpan.FromMilliseconds(200)), $"unexpected delivery {extra}");

    private void AGoodConnectionStillWorks(int sender = 1)
    {
        Connect(sender).Send(Frame(sender, 9, Gradient(2f)));
        var reply = Next<GradientReply>();
        Assert.Equal(9, reply.Step);
        Assert.Equal(Gradient(2f), reply.Gradient);
    }

    [Fact]
    public void A_frame_arrives_as_the_gradient_reply_it_carries()
    {
        var gradient = Enumerable.Range(0, Parameters).Select(i => i * 0.25f - 3f).ToArray();
        Connect(1).Send(Frame(sender: 1, step: 7, gradient));

        var reply = Next<GradientReply>();
        Assert.Equal((RunId, 7L, 1, 8, 1.5, 0.001), (reply.RunId, reply.Step, reply.WorkerIndex, reply.SampleCount, reply.LossSum, reply.ComputeSeconds));
        Assert.Equal(gradient, reply.Gradient);
        Assert.Equal(0, Master.BadFrames);
    }

    [Theory]
    [InlineData(float.NaN)]
    [InlineData(float.NegativeInfinity)]
    public void The_reader_judges_a_gradient_finite_as_it_arrives_even_with_a_value_split_between_two_reads(float bad)
    {
        var gradient = Gradient(0.5f);
        gradient[600] = bad;
        var frame = Frame(1, 4, gradient);
        int split = FrameHeader.Size + 600 * sizeof(float) + 2;   // inside the bad value's four bytes
        var client = Connect(1);
        client.Send(frame.AsSpan(0, split));
        Thread.Sleep(100);   // the reader has judged the first part by now
        client.Send(frame.AsSpan(split));
        client.Send(Frame(1, 4, Gradient(float.MaxValue)));   // finite, though its sum overflows

        var notFinite = Next<GradientReply>();
        var finite = Next<GradientReply>();
        Assert.Equal((false, true), (notFinite.FiniteOnArrival, finite.FiniteOnArrival));
        var gather = new StepGather(RunId, Parameters);
        gather.Begin(4, [0, 1]);
        Assert.Equal(GatherOutcome.NonFinite, gather.Offer(notFinite));
        gather.Begin(4, [0, 1]);
        Assert.Equal(GatherOutcome.Accepted, gather.Offer(finite));
    }

    [Fact]
    public void Frames_of_another_run_or_of_the_wrong_length_areDelivered_for_the_gather_to_drop_and_count()
    {
        var client = Connect(0);
        client.Send(Frame(0, 3, Gradient(1f), runId: "another-run"));
        client.Send(Frame(0, 3, Gradient(1f, count: 10)));
        client.Send(Frame(0, 3, Gradient(1f)));

        var gather = new StepGather(RunId, Parameters);
        gather.Begin(3, [0, 1]);
        Assert.Equal(GatherOutcome.ForeignRun, gather.Offer(Next<GradientReply>()));
        Assert.Equal(GatherOutcome.WrongLength, gather.Offer(Next<GradientReply>()));
        Assert.Equal(GatherOutcome.Accepted, gather.Offer(Next<GradientReply>()));
        Assert.Equal([1], gather.WaitingFor);
        Assert.Equal(2, gather.DroppedTotal);
    }

    [Fact]
    public void A_garbage_header_closes_the_proven_connection_and_is_counted_as_its_nodes_loss()
    {
        var client = Connect(0);
        client.Send(Enumerable.Range(0, FrameHeader.Size + 40).Select(i => (byte)(i * 37)).ToArray());

        Assert.True(ClosedByPeer(client));
        Assert.Equal(0, Next<DataConnectionLost>().Sender);
        NothingMore();
        Assert.Equal(1, Master.BadFrames);
        AGoodConnectionStillWorks();
    }

    [Fact]
    public void A_frame_naming_a_sender_other_than_the_proven_one_closes_the_connection()
    {
        var client = Connect(0);
        client.Send(Frame(sender: 5, step: 1, Gradient(1f)));

        Assert.True(ClosedByPeer(client));
        Assert.Equal(0, Next<DataConnectionLost>().Sender);
        NothingMore();
        Assert.Equal(1, Master.BadFrames);
        AGoodConnectionStillWorks();
    }

    [Fact]
    public void A_frame_announcing_more_than_the_model_closes_the_connection_before_its_payload_is_read()
    {
        var client = Connect(0);
        client.Send(Frame(0, 1, [], announcedCount: int.MaxValue / 8));

        Assert.True(ClosedByPeer(client));
        Assert.Equal(0, Next<DataConnectionLost>().Sender);
        NothingMore();
        Assert.Equal(1, Master.BadFrames);
    }

    [Fact]
    public void A_frame_of_a_kind_this_node_does_not_receive_closes_the_connection()
    {
        var client = Connect(0);
        client.Send(Frame(0, 1, Gradient(1f), kind: FrameKind.ComputeGradient));

        Assert.True(ClosedByPeer(client));
        Assert.Equal(0, Next<DataConnectionLost>().Sender);
        NothingMore();
        Assert.Equal(1, Master.BadFrames);
    }

    [Fact]
    public void A_truncated_frame_is_cut_off_after_the_frame_timeout_and_its_sender_is_lost_for_the_step()
    {
        var client = Connect(1);
        var frame = Frame(1, 4, Gradient(1f));
        client.Send(frame.AsSpan(0, FrameHeader.Size + 100));   // then silence, the connection left open

        Assert.True(ClosedByPeer(client));
        var lost = Next<DataConnectionLost>();
        Assert.Equal(1, lost.Sender);
        NothingMore();
        Assert.Equal(1, Master.BadFrames);
        AGoodConnectionStillWorks(sender: 1);
    }

    [Fact]
    public void A_connection_dropped_mid_frame_delivers_nothing_partial_and_reports_the_sender_lost()
    {
        var client = Connect(0);
        client.Send(Frame(0, 2, Gradient(1f)));
        client.Send(Frame(0, 3, Gradient(1f)).AsSpan(0, FrameHeader.Size + 2000));
        client.Close();

        Assert.Equal(2, Next<GradientReply>().Step);
        var lost = Next<DataConnectionLost>();
        Assert.Equal(0, lost.Sender);
        NothingMore();
        Assert.Equal(1, Master.BadFrames);
        AGoodConnectionStillWorks(sender: 0);
    }

    [Fact]
    public void A_frame_longer_than_announced_isDelivered_as_announced_and_the_extra_bytes_close_the_connection()
    {
        var client = Connect(1);
        var frame = Frame(1, 6, Gradient(3f));
        client.Send([.. frame, .. new byte[FrameHeader.Size]]);   // 64 stray bytes: not a header

        Assert.Equal(Gradient(3f), Next<GradientReply>().Gradient);
        Assert.True(ClosedByPeer(client));
        Assert.Equal(1, Next<DataConnectionLost>().Sender);
        Assert.Equal(1, Master.BadFrames);
    }

    [Fact]
    public void A_connection_may_not_change_its_sender()
    {
        var client = Connect(0);
        client.Send(Frame(0, 1, Gradient(1f)));
        client.Send(Frame(1, 1, Gradient(1f)));

        Assert.Equal(0, Next<GradientReply>().WorkerIndex);
        Assert.True(ClosedByPeer(client));
        Assert.Equal(0, Next<DataConnectionLost>().Sender);
        Assert.Equal(1, Master.BadFrames);
    }

    [Fact]
    public void Send_reconnects_after_the_receiver_came_back()
    {
        using var worker = new DirectDataPlane(new DataPlaneOptions(RunId, Parameters, FrameKind.ComputeGradient, 1, "127.0.0.1", 0,
                                                                    TimeSpan.FromSeconds(1)), ComputeGradient.FromFrame, _ => { });
        worker.Trust(0, Master.Endpoint, Master.Key);
        Master.Trust(0, worker.Endpoint, worker.Key);
        var header = new FrameHeader(FrameKind.GradientReply, 0, 1, 0, 1, 0, 8, 1, 0, 0);
        Assert.True(worker.Send(Master.Endpoint, header, Gradient(1f)));
        Assert.Equal(1, Next<GradientReply>().Step);

        Assert.False(worker.Send("127.0.0.1:1", header, Gradient(1f)));   // nobody listens there: false, no hang
        worker.Disconnect(Master.Endpoint);
        Assert.Equal(0, Next<DataConnectionLost>().Sender);
        Assert.True(worker.Send(Master.Endpoint, header with { Step = 2 }, Gradient(1f)));
        Assert.Equal(2, Next<GradientReply>().Step);
    }

    [Fact]
    public void A_connection_from_an_address_that_is_not_a_member_is_closed_before_a_byte_is_read()
    {
        // Members live at 127.0.0.2 only: this test's client connects from 127.0.0.1.
        var members = new[] { IPAddress.Parse("127.0.0.2") };
        using var guarded = new DirectDataPlane(new DataPlaneOptions(RunId, Parameters, FrameKind.GradientReply, SenderCount: 2, "127.0.0.1", 0,
                                                                     FrameTimeout: TimeSpan.FromMilliseconds(300),
                                                                     AcceptFrom: members.Contains), GradientReply.FromFrame, Delivered.Add);
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        client.Connect("127.0.0.1", int.Parse(guarded.Endpoint.Split(':')[1]));
        client.Send(Frame(0, 1, Gradient(1f)));

        Assert.True(ClosedByPeer(client));
        NothingMore();
        Assert.Equal(1, guarded.RefusedConnections);
        Assert.Equal(new Dictionary<ConnectionRefusal, long> { [ConnectionRefusal.NotMember] = 1 }, guarded.Refusals);
        Assert.Equal(0, guarded.FramesReceived);
    }

    [Fact]
    public void The_member_check_knows_this_nodes_own_address_and_resolves_member_hosts()
    {
        Assert.Equal([IPAddress.Loopback], ClusterMemberAddresses.Addresses("127.0.0.1"));
        Assert.Contains(ClusterMemberAddresses.Addresses("localhost"), a => IPAddress.IsLoopback(a));
        Assert.Empty(ClusterMemberAddresses.Addresses("no-such-host.invalid"));
    }
}
