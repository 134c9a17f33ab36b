using Akka.Actor;
using Akka.Configuration;
using DistSgd.Actors.Centralized;
using DistSgd.Actors.Transport;

namespace DistSgd.Actors.Tests.Transport;

public class ChunkedDeliverySpec : Akka.TestKit.Xunit2.TestKit
{
    public ChunkedDeliverySpec() : base(TestConfig.Node(), "chunk-spec")
    {
    }

    private static GradientReply Large(int length = 100_000) =>
        new("run", 3, 1, 64, 12.5, 0.01, Enumerable.Range(0, length).Select(i => i * 0.5f).ToArray());

    [Fact]
    public void A_large_message_is_cut_into_pieces_and_reassembled_exactly()
    {
        var sender = new ChunkSender(Sys, chunkSize: 64 * 1024);
        sender.Tell(TestActor, Large(), TestActor);
        var pieces = ReceiveN(7, TimeSpan.FromSeconds(3)).Cast<MessageChunk>().ToList();   // 400 KB / 64 KiB
        Assert.All(pieces, p => Assert.True(p.Bytes.Length <= 64 * 1024));

        var assembler = new ChunkAssembler(Sys);
        object? whole = null;
        foreach (var piece in pieces)
            whole = assembler.Add(piece, TestActor);
        var reply = Assert.IsType<GradientReply>(whole);
        Assert.Equal(Large().Gradient, reply.Gradient);
        Assert.Equal((3L, 1, 64, 12.5), (reply.Step, reply.WorkerIndex, reply.SampleCount, reply.LossSum));
    }

    [Fact]
    public void Pieces_arriving_out_of_order_still_reassemble()
    {
        var sender = new ChunkSender(Sys, chunkSize: 100_000);
        sender.Tell(TestActor, Large(), TestActor);
        var pieces = ReceiveN(5, TimeSpan.FromSeconds(3)).Cast<MessageChunk>().Reverse().ToList();
        var assembler = new ChunkAssembler(Sys);
        var results = pieces.Select(p => assembler.Add(p, TestActor)).ToList();
        Assert.All(results.SkipLast(1), r => Assert.Null(r));
        Assert.IsType<GradientReply>(results[^1]);
    }

    [Fact]
    public void A_small_message_travels_whole_and_chunking_off_sends_everything_whole()
    {
        new ChunkSender(Sys, chunkSize: 64 * 1024).Tell(TestActor, new RunEnded("run"), TestActor);
        ExpectMsg<RunEnded>();
        new ChunkSender(Sys, chunkSize: 0).Tell(TestActor, Large(), TestActor);
        ExpectMsg<GradientReply>();
    }

    [Fact]
    public void Inconsistent_and_duplicate_pieces_are_dropped_and_counted()
    {
        var assembler = new ChunkAssembler(Sys);
        Assert.Null(assembler.Add(new MessageChunk(1, 0, 2, 10, 0, "GR", new byte[5]), TestActor));
        Assert.Null(assembler.Add(new MessageChunk(1, 0, 2, 10, 0, "GR", new byte[5]), TestActor));   // duplicate
        Assert.Null(assembler.Add(new MessageChunk(1, 1, 3, 10, 5, "GR", new byte[5]), TestActor));   // count changed
        Assert.Null(assembler.Add(new MessageChunk(1, 1, 2, 10, 8, "GR", new byte[5]), TestActor));   // past the end
        Assert.Null(assembler.Add(new MessageChunk(2, 0, 2, -1, 0, "GR", new byte[5]), TestActor));   // negative total
        Assert.Null(assembler.Add(new MessageChunk(3, 0, 2, int.MaxValue, 0, "GR", new byte[5]), TestActor)); // too large
        Assert.Equal(5, assembler.Dropped);
    }

    [Fact]
    public void Hostile_pieces_allocate_nothing_and_a_malformed_whole_is_dropped_not_thrown()
    {
        var assembler = new ChunkAssembler(Sys) { MaxMessageBytes = 1000 };
        Assert.Null(assembler.Add(new MessageChunk(1, 0, 2, 1001, 0, "GR", new byte[5]), TestActor));          // over the model's size
        Assert.Null(assembler.Add(new MessageChunk(2, 0, 500, 10, 0, "GR", new byte[5]), TestActor));         // more pieces than bytes
        Assert.Null(assembler.Add(new MessageChunk(3, 0, 2, 10, 0, "GR", new byte[5]), TestActor));
        Assert.Null(assembler.Add(new MessageChunk(3, 1, 2, 10, 5, "GR", new byte[5]), TestActor));           // whole, but not a GradientReply
        Assert.Equal(3, assembler.Dropped);
    }

    [Fact]
    public void A_sender_that_never_finishes_cannot_hold_more_than_a_few_partial_messages()
    {
        var assembler = new ChunkAssembler(Sys);
        for (long id = 1; id <= 10; id++)
            assembler.Add(new MessageChunk(id, 0, 2, 10, 0, "GR", new byte[5]), TestActor);
        Assert.Equal(6, assembler.Dropped);   // the 6 oldest of 10 partials were given up on
    }
}

public class ChunkedCentralizedStepSpec : Akka.TestKit.Xunit2.TestKit
{
    public ChunkedCentralizedStepSpec()
        : base(ConfigurationFactory.ParseString("distsgd.akka-chunk-size = 1KiB").WithFallback(TestConfig.Node()), "chunked-step-spec")
    {
    }

    [Fact]
    public void A_worker_with_chunking_on_answers_in_pieces_that_reassemble_into_its_gradient()
    {
        var train = DistSgd.Numerics.Data.Synthetic.GaussianBlobs(40, 30, 3, 2, 1);
        var spec = new DistSgd.Numerics.Models.ModelSpec(DistSgd.Numerics.Models.ModelKind.Mlp, 30, 3, [20]);
        var plan = new DistSgd.Actors.Protocol.RunPlan("run", spec, 8, 1, 1, 40, 3);
        var worker = Sys.ActorOf(WorkerActor.Props(TestActor, train));
        ExpectMsg<RegisterWorker>();
        worker.Tell(new JoinRun(plan, 0, 2));
        ExpectMsg<JoinAccepted>();
        worker.Tell(new ComputeGradient("run", 0, 1, 0, new float[spec.ParameterCount]));
        var assembler = new ChunkAssembler(Sys);
        object? whole = null;
        while (whole is null)
            whole = assembler.Add(ExpectMsg<MessageChunk>(), LastSender);
        var reply = Assert.IsType<GradientReply>(whole);
        Assert.Equal(spec.ParameterCount, reply.Gradient.Length);
        Assert.Equal(8, reply.SampleCount);
    }
}
