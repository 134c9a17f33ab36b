using System.Runtime.Serialization;
using Akka.Actor;
using Akka.Serialization;
using DistSgd.Actors.Centralized;
using DistSgd.Actors.Decentralized;
using DistSgd.Actors.Codec;
using DistSgd.Actors.Protocol;
using DistSgd.Actors.Transport;
using DistSgd.Numerics.Models;
using DistSgd.Numerics.Training;

namespace DistSgd.Actors.Tests.Codec;

public class DistSgdSerializerSpec : Akka.TestKit.Xunit2.TestKit
{
    public DistSgdSerializerSpec() : base(TestConfig.Node(), "serializer-spec")
    {
    }

    private static readonly RunPlan Plan = new("run-1", new ModelSpec(ModelKind.Mlp, 784, 10, [256, 128], Activation.Tanh), 64, 7, 10, 60000, 469,
                                                  "workers=2;lr=0.05;momentum=0.9;normalize=scale");

    public static TheoryData<string> MessageNames => new(Messages(TestActor: null).Keys);

    internal static Dictionary<string, IDistSgdMessage> Messages(IActorRef? TestActor) => new()
    {
        ["RegisterWorker"] = new RegisterWorker(TestActor ?? ActorRefs.Nobody),
        ["JoinRun"] = new JoinRun(Plan, 2, 4, "10.0.0.5:7000", Key(1)),
        ["JoinRun over Akka"] = new JoinRun(Plan, 2, 4),
        ["JoinAccepted"] = new JoinAccepted("run-1", 2, "127.0.0.1:40123", Key(2)),
        ["JoinRefused"] = new JoinRefused("run-1", 2, "this node has 10 samples, the run expects 60000"),
        ["ComputeGradient"] = new ComputeGradient("run-1", 12345678901, 3, 17, [1f, -2.5f, float.Epsilon, 3e38f], 2, 3),
        ["RegisterWorker with a position"] = new RegisterWorker(TestActor ?? ActorRefs.Nobody, new WorkerPosition("run-1", 3, 12345678901, 4, 17, 1, 2, true)),
        ["RequestHeldParameters"] = new RequestHeldParameters("run-1"),
        ["HeldParameters"] = new HeldParameters("run-1", 12345678900, [1f, -2.5f, float.MaxValue]),
        ["GradientReply"] = new GradientReply("run-1", 42, 1, 64, 123.456, 0.0012, [0.5f, -0.25f]),
        ["RunEnded"] = new RunEnded("run-1"),
        ["MessageChunk"] = new DistSgd.Actors.Transport.MessageChunk(9, 1, 3, 300, 100, "GR", [1, 2, 3, 250]),
        ["PeerReady"] = new PeerReady(Plan, "akka.tcp://distsgd@127.0.0.1:4053", TestActor ?? ActorRefs.Nobody, "127.0.0.1:40999", Key(3)),
        ["PeerReady of a ring run"] = new PeerReady(Plan with { Collective = Collective.Ring }, "akka.tcp://distsgd@127.0.0.1:4053",
                                                    TestActor ?? ActorRefs.Nobody, "127.0.0.1:40999", Key(3)),
        ["PeerReadyAck"] = new PeerReadyAck("run-1", "akka.tcp://distsgd@127.0.0.1:4054"),
        ["GradientShare"] = new GradientShare("run-1", 9876543210, 3, 64, 98.5, 0.0021, [0.5f, -0.25f, float.MaxValue]),
        ["ParameterHash"] = new ParameterHash("run-1", 7, 2, Enumerable.Range(0, 32).Select(i => (byte)(i * 7)).ToArray(), true),
        ["ParameterHash of a lead admitting late peers"] = new ParameterHash("run-1", 7, 0, Enumerable.Range(0, 32).Select(i => (byte)i).ToArray(), false)
        {
            Joiners = [new PeerJoin(3, "akka.tcp://distsgd@127.0.0.1:4057", TestActor ?? ActorRefs.Nobody, "127.0.0.1:41000", Key(4)),
                       new PeerJoin(4, "akka.tcp://distsgd@127.0.0.1:4058", TestActor ?? ActorRefs.Nobody, "", null)],
        },
        ["RunUnderWay"] = new RunUnderWay("run-1", 3, 3) { Members = ["akka.tcp://distsgd@127.0.0.1:4053", "akka.tcp://distsgd@127.0.0.1:4054"] },
        ["PeerPresent"] = new PeerPresent("run-1", "akka.tcp://distsgd@127.0.0.1:4053"),
        ["JoinReady"] = new JoinReady("run-1", "akka.tcp://distsgd@127.0.0.1:4057"),
        ["RunUnderWay refusing"] = new RunUnderWay("run-1", 3, 6, "the run has 6 peers and takes at most 6"),
        ["JoinState"] = new JoinState("run-1", 3, [new PeerJoin(0, "akka.tcp://distsgd@127.0.0.1:4053", TestActor ?? ActorRefs.Nobody, "127.0.0.1:40999", Key(3)),
                                                   new PeerJoin(3, "akka.tcp://distsgd@127.0.0.1:4057", TestActor ?? ActorRefs.Nobody, "127.0.0.1:41000", Key(4))],
                                      [0, 1, 2], 2, [9, 8, 7, 6, 5]),
        ["ReplicaResync"] = new ReplicaResync("run-1", 7, 0, [1, 2, 3, 4], 4242, [1f, 2f, -3f], [0.1f, 0.2f, 0.3f]),
        ["MembershipReport"] = new MembershipReport("run-1", 1, [3], 41, [0, 1, 2, 3], 42, [1]),
        ["ClockProbe"] = new DistSgd.Actors.Steps.ClockProbe(123_456_789_012),
        ["ClockEcho"] = new DistSgd.Actors.Steps.ClockEcho(123_456_789_012, -98_765),
    };

    private static byte[] Key(int seed) => Enumerable.Range(0, DataPlaneHandshake.KeySize).Select(i => (byte)(i * 11 + seed)).ToArray();

    [Theory]
    [MemberData(nameof(MessageNames))]
    public void Every_message_is_taken_by_the_distsgd_serializer_and_round_trips(string name)
    {
        var message = Messages(TestActor)[name];
        var serialization = Sys.Serialization;
        var serializer = serialization.FindSerializerFor(message);
        Assert.IsType<DistSgdSerializer>(serializer);
        Assert.Equal(DistSgdSerializer.SerializerId, serializer.Identifier);

        var bytes = serializer.ToBinary(message);
        string manifest = Akka.Serialization.Serialization.ManifestFor(serializer, message);
        var back = serialization.Deserialize(bytes, serializer.Identifier, manifest);
        Assert.Equal(message.GetType(), back.GetType());
        switch (message)
        {
            case ComputeGradient m:
                var c = (ComputeGradient)back;
                Assert.Equal((m.RunId, m.Step, m.Epoch, m.StepInEpoch, m.ShardIndex, m.ShardCount), (c.RunId, c.Step, c.Epoch, c.StepInEpoch, c.ShardIndex, c.ShardCount));
                Assert.Equal(m.Parameters, c.Parameters);
                Assert.Equal(WireFormat.PayloadBytes(m), bytes.Length);
                break;
            case GradientReply m:
                var g = (GradientReply)back;
                Assert.Equal((m.RunId, m.Step, m.WorkerIndex, m.SampleCount, m.LossSum, m.ComputeSeconds), (g.RunId, g.Step, g.WorkerIndex, g.SampleCount, g.LossSum, g.ComputeSeconds));
                Assert.Equal(m.Gradient, g.Gradient);
                Assert.Equal(WireFormat.PayloadBytes(m), bytes.Length);
                break;
            case JoinRun m:
                var j = (JoinRun)back;
                Assert.Equal(m.Plan, j.Plan);
                Assert.Equal((m.WorkerIndex, m.WorkerCount, m.MasterEndpoint), (j.WorkerIndex, j.WorkerCount, j.MasterEndpoint));
                Assert.Equal(m.MasterKey, j.MasterKey);
                break;
            case JoinAccepted m:
                var a = (JoinAccepted)back;
                Assert.Equal((m.RunId, m.WorkerIndex, m.DataEndpoint), (a.RunId, a.WorkerIndex, a.DataEndpoint));
                Assert.Equal(m.DataKey, a.DataKey);
                break;
            case DistSgd.Actors.Transport.MessageChunk m:
                var k = (DistSgd.Actors.Transport.MessageChunk)back;
                Assert.Equal((m.MessageId, m.Index, m.Count, m.TotalBytes, m.Offset, m.Manifest), (k.MessageId, k.Index, k.Count, k.TotalBytes, k.Offset, k.Manifest));
                Assert.Equal(m.Bytes, k.Bytes);
                break;
            case RegisterWorker m:
                Assert.Equal(m.Worker, ((RegisterWorker)back).Worker);
                Assert.Equal(m.Position, ((RegisterWorker)back).Position);
                break;
            case HeldParameters m:
                var held = (HeldParameters)back;
                Assert.Equal((m.RunId, m.Step), (held.RunId, held.Step));
                Assert.Equal(m.Parameters, held.Parameters);
                Assert.Equal(WireFormat.PayloadBytes(m), bytes.Length);
                break;
            case PeerReady m:
                var r = (PeerReady)back;
                Assert.Equal((m.Plan, m.NodeAddress, m.Peer, m.DataEndpoint), (r.Plan, r.NodeAddress, r.Peer, r.DataEndpoint));
                Assert.Equal(m.DataKey, r.DataKey);
                break;
            case GradientShare m:
                var s = (GradientShare)back;
                Assert.Equal((m.RunId, m.Step, m.NodeId, m.SampleCount, m.LossSum, m.ComputeSeconds), (s.RunId, s.Step, s.NodeId, s.SampleCount, s.LossSum, s.ComputeSeconds));
                Assert.Equal(m.Gradient, s.Gradient);
                Assert.Equal(WireFormat.PayloadBytes(m), bytes.Length);
                break;
            case ParameterHash m:
                var h = (ParameterHash)back;
                Assert.Equal((m.RunId, m.Epoch, m.NodeId, m.VotesToStop), (h.RunId, h.Epoch, h.NodeId, h.VotesToStop));
                Assert.Equal(m.Hash, h.Hash);
                AssertSameJoins(m.Joiners, h.Joiners);
                break;
            case RunUnderWay m:
                var underWay = (RunUnderWay)back;
                Assert.Equal((m.RunId, m.Epoch, m.Peers, m.Refusal), (underWay.RunId, underWay.Epoch, underWay.Peers, underWay.Refusal));
                Assert.Equal(m.Members, underWay.Members);
                break;
            case JoinState m:
                var state = (JoinState)back;
                Assert.Equal((m.RunId, m.NodeId, m.SkippedSteps), (state.RunId, state.NodeId, state.SkippedSteps));
                AssertSameJoins(m.Members, state.Members);
                Assert.Equal(m.AppliedSenders, state.AppliedSenders);
                Assert.Equal(m.State, state.State);
                break;
            case ReplicaResync m:
                var y = (ReplicaResync)back;
                Assert.Equal((m.RunId, m.Epoch, m.SourceNodeId, m.OptimizerStep), (y.RunId, y.Epoch, y.SourceNodeId, y.OptimizerStep));
                Assert.Equal(m.Hash, y.Hash);
                Assert.Equal(m.Parameters, y.Parameters);
                Assert.Equal(m.Velocity, y.Velocity);
                Assert.Equal(WireFormat.PayloadBytes(m), bytes.Length);
                break;
            case MembershipReport m:
                var report = (MembershipReport)back;
                Assert.Equal((m.RunId, m.NodeId, m.AppliedStep, m.OpenStep), (report.RunId, report.NodeId, report.AppliedStep, report.OpenStep));
                Assert.Equal(m.Lost, report.Lost);
                Assert.Equal(m.AppliedSenders, report.AppliedSenders);
                Assert.Equal(m.HeldSenders, report.HeldSenders);
                break;
            default:
                Assert.Equal(message, back);
                break;
        }
    }

    private static void AssertSameJoins(PeerJoin[] sent, PeerJoin[] received)
    {
        Assert.Equal(sent.Length, received.Length);
        foreach (var (a, b) in sent.Zip(received))
        {
            Assert.Equal((a.NodeId, a.NodeAddress, a.Peer, a.DataEndpoint), (b.NodeId, b.NodeAddress, b.Peer, b.DataEndpoint));
            Assert.Equal(a.DataKey, b.DataKey);
        }
    }

    [Fact]
    public void A_join_state_claiming_more_bytes_than_it_holds_is_refused()
    {
        var serializer = (SerializerWithStringManifest)Sys.Serialization.FindSerializerForType(typeof(IDistSgdMessage));
        var bytes = serializer.ToBinary(new JoinState("run", 1, [], [0], 0, [1, 2, 3, 4]));
        // The state's length sits just before its 4 bytes: claim a billion.
        BitConverter.GetBytes(1_000_000_000).CopyTo(bytes, bytes.Length - 8);
        var error = Assert.Throws<SerializationException>(() => serializer.FromBinary(bytes, "JS"));
        Assert.Contains("a join state of 1000000000 bytes", error.Message);
    }

    [Fact]
    public void A_large_gradient_is_raw_float_bytes_not_json()
    {
        var gradient = new float[235_146];
        var bytes = Sys.Serialization.Serialize(new GradientReply("r", 1, 0, 64, 1, 0, gradient));
        Assert.InRange(bytes.Length, gradient.Length * 4, gradient.Length * 4 + 64);
    }

    [Theory]
    [InlineData("CG", 3)]
    [InlineData("GR", 20)]
    [InlineData("JR", 5)]
    [InlineData("RE", 0)]
    [InlineData("GS", 30)]
    [InlineData("PH", 20)]
    [InlineData("RS", 40)]
    [InlineData("PA", 6)]
    [InlineData("MR", 30)]
    [InlineData("TE", 12)]
    [InlineData("RU", 10)]
    [InlineData("JS", 20)]
    public void A_truncated_payload_fails_with_a_serialization_exception(string manifest, int length)
    {
        var serializer = (SerializerWithStringManifest)Sys.Serialization.FindSerializerForType(typeof(IDistSgdMessage));
        var full = serializer.ToBinary(manifest switch
        {
            "CG" => new ComputeGradient("run", 1, 1, 1, [1f, 2f]),
            "GR" => new GradientReply("run", 1, 1, 1, 1, 1, [1f, 2f]),
            "JR" => new JoinRun(Plan, 0, 1),
            "GS" => new GradientShare("run", 1, 1, 1, 1, 1, [1f, 2f]),
            "PH" => new ParameterHash("run", 1, 1, new byte[32], false),
            "RS" => new ReplicaResync("run", 1, 0, new byte[32], 5, [1f, 2f], [3f, 4f]),
            "PA" => new PeerReadyAck("run", "akka.tcp://distsgd@h:1"),
            "MR" => new MembershipReport("run", 1, [2], 5, [0, 1, 2], 6, [0, 1]),
            "TE" => new DistSgd.Actors.Steps.ClockEcho(1, 2),
            "RU" => new RunUnderWay("run", 1, 3, "refused"),
            "JS" => new JoinState("run", 1, [], [0, 1], 0, [1, 2, 3]),
            _ => new RunEnded("run"),
        });
        Assert.Throws<SerializationException>(() => serializer.FromBinary(full[..Math.Min(length, full.Length - 1)], manifest));
    }

    [Fact]
    public void A_vector_length_larger_than_the_payload_is_refused()
    {
        var serializer = (SerializerWithStringManifest)Sys.Serialization.FindSerializerForType(typeof(IDistSgdMessage));
        var bytes = serializer.ToBinary(new ComputeGradient("run", 1, 1, 1, [1f, 2f]));
        // The vector's count sits just before its 8 payload bytes: claim a billion floats.
        BitConverter.GetBytes(1_000_000_000).CopyTo(bytes, bytes.Length - 12);
        var error = Assert.Throws<SerializationException>(() => serializer.FromBinary(bytes, "CG"));
        Assert.Contains("does not fit", error.Message);
    }

    [Fact]
    public void A_parameter_hash_longer_than_64_bytes_is_refused()
    {
        var serializer = (SerializerWithStringManifest)Sys.Serialization.FindSerializerForType(typeof(IDistSgdMessage));
        var bytes = serializer.ToBinary(new ParameterHash("run", 1, 1, new byte[65], false));
        var error = Assert.Throws<SerializationException>(() => serializer.FromBinary(bytes, "PH"));
        Assert.Contains("parameter hash of 65 bytes", error.Message);
    }

    [Fact]
    public void An_unknown_manifest_is_refused()
    {
        var serializer = (SerializerWithStringManifest)Sys.Serialization.FindSerializerForType(typeof(IDistSgdMessage));
        Assert.Throws<SerializationException>(() => serializer.FromBinary([1, 2, 3], "ZZ"));
    }
}
