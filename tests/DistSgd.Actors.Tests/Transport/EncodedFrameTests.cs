using System.Buffers.Binary;
using System.Collections.Concurrent;
using DistSgd.Actors.Centralized;
using DistSgd.Actors.Collectives;
using DistSgd.Actors.Transport;
using DistSgd.Numerics.Compression;

namespace DistSgd.Actors.Tests.Transport;

/// <summary>
/// Gradient frames in a compressed encoding (issue 16): a sender's plane encodes, the receiver's decodes into the same
/// values, and a frame that does not fit the run's encoding (its id, its count, an index, a NaN) is refused and counted
/// like any bad frame: the connection closes, nothing is delivered but the node's loss, and other connections go on.
/// </summary>
public sealed class EncodedFrameTests() : MasterPlaneTest(RunId, Parameters, TimeSpan.FromSeconds(1), Sparse)
{
    private new const string RunId = "encoded-run";
    private const int Parameters = 1000;
    private static readonly ShareEncoding Sparse = new(WirePrecision.Fp32, 0.01);   // 10 entries at most

    private static byte[] SparseFrame(int sender, (int Index, float Value)[] entries, int samples = 8, byte encoding = 3)
    {
        var bytes = new byte[FrameHeader.Size + entries.Length * 8];
        new FrameHeader(FrameKind.GradientReply, FrameHeader.HashRunId(RunId), 4, sender, 1, 4, samples, 1.5, 0.001, entries.Length,
                        Encoding: encoding).Write(bytes);
        for (int e = 0; e < entries.Length; e++)
        {
            BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(FrameHeader.Size + 8 * e), entries[e].Index);
            BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(FrameHeader.Size + 8 * e + 4), entries[e].Value);
        }
        return bytes;
    }

    [Fact]
    public void A_sparse_frame_arrives_as_the_dense_gradient_it_encodes()
    {
        Connect(1).Send(SparseFrame(1, [(3, 0.5f), (999, -2f)]));
        Assert.True(Delivered.TryTake(out var message, Wait));
        var reply = Assert.IsType<GradientReply>(message);
        var expected = new float[Parameters];
        (expected[3], expected[999]) = (0.5f, -2f);
        Assert.Equal(expected, reply.Gradient);
        Assert.Equal(FrameHeader.Size + 2 * 8, reply.FrameBytes);
        Assert.Equal(0, Master.BadFrames);
    }

    [Fact]
    public void A_sparse_frame_arrives_with_its_entries_and_its_array_given_back_with_them_takes_the_next_frame_clear()
    {
        // Decision 0141: the reader writes a sparse frame's entries alone into an array that is all +0, and a returned
        // array has its entries cleared (O(entries)) before the next sparse frame is decoded into it.
        var client = Connect(1);
        client.Send(SparseFrame(1, [(3, 0.5f), (999, -2f)]));
        Assert.True(Delivered.TryTake(out var message, Wait));
        var first = Assert.IsType<GradientReply>(message);
        Assert.NotNull(first.Entries);
        Assert.Equal([3, 999], first.Entries.Indices.ToArray());
        Assert.Equal([0.5f, -2f], first.Entries.Values.ToArray());

        Master.Return(first.Gradient, first.Entries);
        client.Send(SparseFrame(1, [(7, 1f)]));
        Assert.True(Delivered.TryTake(out var next, Wait));
        var second = Assert.IsType<GradientReply>(next);

        Assert.Same(first.Gradient, second.Gradient);
        var expected = new float[Parameters];
        expected[7] = 1f;
        Assert.Equal(expected.Select(BitConverter.SingleToUInt32Bits), second.Gradient.Select(BitConverter.SingleToUInt32Bits));
        Assert.Equal([7], second.Entries!.Indices.ToArray());
    }

    [Fact]
    public void A_sparse_frame_is_judged_finite_by_its_entries_as_it_is_decoded()
    {
        var client = Connect(1);
        client.Send(SparseFrame(1, [(3, 0.5f), (500, float.NegativeInfinity)]));
        client.Send(SparseFrame(1, [(3, float.MaxValue), (500, float.MaxValue)]));   // finite, though their sum overflows
        Assert.True(Delivered.TryTake(out var first, Wait));
        Assert.True(Delivered.TryTake(out var second, Wait));
        Assert.Equal((false, true), (Assert.IsType<GradientReply>(first).FiniteOnArrival, Assert.IsType<GradientReply>(second).FiniteOnArrival));
        Assert.Equal(float.NegativeInfinity, ((GradientReply)first).Gradient[500]);
    }

    [Fact]
    public void A_sparse_frame_of_a_share_without_samples_is_empty()
    {
        Connect(0).Send(SparseFrame(0, [], samples: 0));
        Assert.True(Delivered.TryTake(out var message, Wait));
        Assert.Empty(Assert.IsType<GradientReply>(message).Gradient);
    }

    public static TheoryData<string, byte[]> BadFrames() => new()
    {
        { "index out of range", SparseFrame(0, [(1, 1f), (1000, 1f)]) },
        { "indices out of order", SparseFrame(0, [(5, 1f), (5, 1f)]) },
        { "NaN", SparseFrame(0, [(5, float.NaN)]) },
        { "more entries than kept", SparseFrame(0, Enumerable.Range(0, 11).Select(i => (i, 1f)).ToArray()) },
        { "entries without samples", SparseFrame(0, [(5, 1f)], samples: 0) },
        { "float32 to a sparse run", SparseFrame(0, [(5, 1f)], encoding: 0) },
        { "an encoding that does not exist", SparseFrame(0, [(5, 1f)], encoding: 9) },
    };

    [Theory]
    [MemberData(nameof(BadFrames))]
    public void A_frame_that_does_not_fit_the_runs_encoding_is_refused_and_counted(string what, byte[] frame)
    {
        var client = Connect(0);
        client.Send(frame);

        Assert.True(ClosedByPeer(client), what);
        Assert.True(Delivered.TryTake(out var lost, Wait), what);
        Assert.Equal(0, Assert.IsType<DataConnectionLost>(lost).Sender);
        Assert.False(Delivered.TryTake(out var extra, TimeSpan.FromMilliseconds(200)), $"{what}: unexpected delivery {extra}");
        Assert.Equal(1, Master.BadFrames);

        Connect(1).Send(SparseFrame(1, [(7, 1f)]));
        Assert.True(Delivered.TryTake(out var good, Wait));
        Assert.Equal(1f, Assert.IsType<GradientReply>(good).Gradient[7]);
    }

    [Theory]
    [InlineData(WirePrecision.Bf16, 1.0, 2 * Parameters)]
    [InlineData(WirePrecision.Fp16, 1.0, 2 * Parameters)]
    [InlineData(WirePrecision.Bf16, 0.01, 10 * 6)]
    public void A_plane_sends_a_compressed_gradient_that_the_other_decodes_bit_for_bit(WirePrecision precision, double kept, int payloadBytes)
    {
        var encoding = new ShareEncoding(precision, kept);
        var delivered = new BlockingCollection<object>();
        using var master = new DirectDataPlane(new DataPlaneOptions(RunId, Parameters, FrameKind.GradientReply, 2, "127.0.0.1", 0, Wait,
                                                                    Gradients: encoding), GradientReply.FromFrame, delivered.Add);
        using var worker = new DirectDataPlane(new DataPlaneOptions(RunId, Parameters, FrameKind.ComputeGradient, 1, "127.0.0.1", 0, Wait,
                                                                    Gradients: encoding), ComputeGradient.FromFrame, _ => { });
        worker.Trust(0, master.Endpoint, master.Key);
        master.Trust(1, worker.Endpoint, worker.Key);
        var gradient = Enumerable.Range(0, Parameters).Select(i => MathF.Cos(i) * 1e-3f * (i % 97 == 0 ? 100 : 1)).ToArray();
        new GradientCompressor(encoding, Parameters).Compress(gradient);

        Assert.True(worker.Send(master.Endpoint, new FrameHeader(FrameKind.GradientReply, 0, 1, 1, 1, 0, 8, 1, 0, 0), gradient));
        Assert.Equal(FrameHeader.Size + payloadBytes, worker.LastFrameBytes);
        Assert.True(delivered.TryTake(out var message, Wait));
        var reply = Assert.IsType<GradientReply>(message);
        Assert.Equal(gradient.Select(BitConverter.SingleToUInt32Bits), reply.Gradient.Select(BitConverter.SingleToUInt32Bits));
        Assert.Equal(worker.LastFrameBytes, reply.FrameBytes);
    }

    [Theory]
    [InlineData(WirePrecision.Bf16, 2 * Parameters)]
    [InlineData(WirePrecision.Fp16, 2 * Parameters)]
    public void The_masters_update_of_theta_travels_dense_in_the_wire_precision_when_gradients_are_top_k(WirePrecision precision, int payloadBytes)
    {
        var encoding = new ShareEncoding(precision, 0.01);
        var delivered = new BlockingCollection<object>();
        using var master = new DirectDataPlane(new DataPlaneOptions(RunId, Parameters, FrameKind.GradientReply, 2, "127.0.0.1", 0, Wait,
                                                                    Gradients: encoding), GradientReply.FromFrame, _ => { });
        using var worker = new DirectDataPlane(new DataPlaneOptions(RunId, Parameters, FrameKind.ComputeGradient, 1, "127.0.0.1", 0, Wait,
                                                                    Gradients: encoding), ComputeGradient.FromFrame, delivered.Add);
        worker.Trust(0, master.Endpoint, master.Key);
        master.Trust(1, worker.Endpoint, worker.Key);
        var update = Enumerable.Range(0, Parameters).Select(i => MathF.Sin(i) * 1e-3f).ToArray();
        new GradientCompressor(encoding.Dense, Parameters).Compress(update);

        var header = new FrameHeader(FrameKind.ComputeGradient, 0, 2, 0, 1, 1, 1, 0, 0, 0) { IsUpdate = true, LossSum = 0.25 };
        Assert.True(master.Send(worker.Endpoint, header, update));
        Assert.Equal(FrameHeader.Size + payloadBytes, master.LastFrameBytes);
        Assert.True(delivered.TryTake(out var message, Wait));
        var compute = Assert.IsType<ComputeGradient>(message);
        Assert.True(compute.IsUpdate);
        Assert.Equal(update.Select(BitConverter.SingleToUInt32Bits), compute.Parameters.Select(BitConverter.SingleToUInt32Bits));
    }

    [Theory]
    [InlineData(1, false, true)]
    [InlineData(2, false, true)]
    [InlineData(3, false, false)]   // sparse: an all-reduce's parts are dense
    [InlineData(1, true, false)]    // the update bit belongs to θ's frames
    public void An_all_reduce_part_may_name_a_dense_16_bit_encoding_only(byte encoding, bool isUpdate, bool valid)
    {
        var bytes = new byte[FrameHeader.Size];
        (CollectivePart.Header(5, 1, 0, 100, 1, 8, 1, 0) with { Encoding = encoding, IsUpdate = isUpdate, Count = 10 }).Write(bytes);
        var read = FrameHeader.Read(bytes);
        Assert.Equal(valid, read is not null);
        if (read is { } header)
            Assert.Equal((encoding, FrameHeader.Size + 20L), (header.Encoding, header.FrameBytes));
    }
}
