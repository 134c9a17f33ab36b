using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Runtime.Serialization;
using System.Text;
using Akka.Actor;
using Akka.Serialization;
using DistSgd.Actors.Centralized;
using DistSgd.Actors.Decentralized;
using DistSgd.Actors.Protocol;
using DistSgd.Actors.Steps;
using DistSgd.Actors.Transport;
using DistSgd.Numerics.Models;
using DistSgd.Numerics.Training;

namespace DistSgd.Actors.Codec;

/// <summary>
/// The one serializer of every <see cref="IDistSgdMessage"/>: a compact binary layout per message type,
/// vector payloads as raw little-endian float32 bytes (a 235k-parameter gradient is 940 KB and a
/// memcpy, where Akka's default JSON takes seconds and megabytes). A malformed payload throws
/// <see cref="SerializationException"/>, which makes Akka drop that message and keep the connection.
/// </summary>
public sealed class DistSgdSerializer : SerializerWithStringManifest
{
    /// <summary>Akka reserves 0–100 for its own serializers.</summary>
    public const int SerializerId = WireFormat.SerializerId;

    private const string RegisterWorkerManifest = "RW";
    private const string JoinRunManifest = "JR";
    private const string JoinAcceptedManifest = "JA";
    private const string JoinRefusedManifest = "JX";
    private const string ComputeGradientManifest = "CG";
    private const string GradientReplyManifest = "GR";
    private const string RunEndedManifest = "RE";
    private const string MessageChunkManifest = "CK";
    private const string PeerReadyManifest = "PR";
    private const string PeerReadyAckManifest = "PA";
    private const string GradientShareManifest = "GS";
    private const string ParameterHashManifest = "PH";
    private const string ReplicaResyncManifest = "RS";
    private const string RequestHeldParametersManifest = "RH";
    private const string HeldParametersManifest = "HP";
    private const string MembershipReportManifest = "MR";
    private const string ClockProbeManifest = "TP";
    private const string ClockEchoManifest = "TE";
    private const string RunUnderWayManifest = "RU";
    private const string JoinStateManifest = "JS";
    private const string PeerPresentManifest = "PP";
    private const string JoinReadyManifest = "JY";

    /// <summary>The longest parameter hash accepted (SHA-256 is 32 bytes).</summary>
    private const int MaxHashLength = 64;

    public DistSgdSerializer(ExtendedActorSystem system) : base(system)
    {
    }

    public override int Identifier => SerializerId;

    public override string Manifest(object o) => o switch
    {
        RegisterWorker => RegisterWorkerManifest,
        JoinRun => JoinRunManifest,
        JoinAccepted => JoinAcceptedManifest,
        JoinRefused => JoinRefusedManifest,
        ComputeGradient => ComputeGradientManifest,
        GradientReply => GradientReplyManifest,
        RunEnded => RunEndedManifest,
        MessageChunk => MessageChunkManifest,
        PeerReady => PeerReadyManifest,
        PeerReadyAck => PeerReadyAckManifest,
        GradientShare => GradientShareManifest,
        ParameterHash => ParameterHashManifest,
        ReplicaResync => ReplicaResyncManifest,
        RequestHeldParameters => RequestHeldParametersManifest,
        HeldParameters => HeldParametersManifest,
        MembershipReport => MembershipReportManifest,
        ClockProbe => ClockProbeManifest,
        ClockEcho => ClockEchoManifest,
        RunUnderWay => RunUnderWayManifest,
        JoinState => JoinStateManifest,
        PeerPresent => PeerPresentManifest,
        JoinReady => JoinReadyManifest,
        _ => throw new ArgumentException($"DistSgdSerializer cannot serialize {o.GetType()}"),
    };

    public override byte[] ToBinary(object obj)
    {
        switch (obj)
        {
            case ComputeGradient m:
            {
                // Hot path: one exact-size buffer, header then the raw floats.
                var writer = new FrameWriter(m.PayloadBytes);
                writer.String(m.RunId);
                writer.Int64(m.Step);
                writer.Int32(m.Epoch);
                writer.Int32(m.StepInEpoch);
                writer.Int32(m.ShardIndex);
                writer.Int32(m.BatchSize);
                writer.Int32(m.ShardCount);
                writer.Vector(m.Parameters);
                return writer.Done();
            }
            case HeldParameters m:
            {
                var writer = new FrameWriter(m.PayloadBytes);
                writer.String(m.RunId);
                writer.Int64(m.Step);
                writer.Vector(m.Parameters);
                return writer.Done();
            }
            case IGradientContribution m:
            {
                // GradientReply and GradientShare: run, step, participant, samples, loss sum, compute seconds, gradient.
                var writer = new FrameWriter(m.PayloadBytes);
                writer.String(m.RunId);
                writer.Int64(m.Step);
                writer.Int32(m.Participant);
                writer.Int32(m.SampleCount);
                writer.Double(m.LossSum);
                writer.Double(m.ComputeSeconds);
                writer.Vector(m.Gradient);
                return writer.Done();
            }
            case MessageChunk m:
            {
                var writer = new FrameWriter(8 + 4 * 4 + WireFormat.Header(m.Manifest) + WireFormat.Bytes(m.Bytes));
                writer.Int64(m.MessageId);
                writer.Int32(m.Index);
                writer.Int32(m.Count);
                writer.Int32(m.TotalBytes);
                writer.Int32(m.Offset);
                writer.String(m.Manifest);
                writer.Bytes(m.Bytes);
                return writer.Done();
            }
            case ReplicaResync m:
            {
                var writer = new FrameWriter(m.PayloadBytes);
                writer.String(m.RunId);
                writer.Int32(m.Epoch);
                writer.Int32(m.SourceNodeId);
                writer.Bytes(m.Hash);
                writer.Int64(m.OptimizerStep);
                writer.Vector(m.Parameters);
                writer.Vector(m.Velocity);
                return writer.Done();
            }
        }

        using var buffer = new MemoryStream();
        using (var w = new BinaryWriter(buffer, Encoding.UTF8, leaveOpen: true))
        {
            switch (obj)
            {
                case RegisterWorker m:
                    w.Write(Akka.Serialization.Serialization.SerializedActorPath(m.Worker));
                    w.Write(m.Position is not null);
                    if (m.Position is { } p)
                    {
                        w.Write(p.RunId);
                        w.Write(p.WorkerIndex);
                        w.Write(p.Step);
                        w.Write(p.Epoch);
                        w.Write(p.StepInEpoch);
                        w.Write(p.ShardIndex);
                        w.Write(p.ShardCount);
                        w.Write(p.HasPrevious);
                    }
                    break;
                case RequestHeldParameters m:
                    w.Write(m.RunId);
                    break;
                case JoinRun m:
                    WritePlan(w, m.Plan);
                    w.Write(m.WorkerIndex);
                    w.Write(m.WorkerCount);
                    w.Write(m.MasterEndpoint);
                    WriteShortBytes(w, m.MasterKey);
                    break;
                case JoinAccepted m:
                    w.Write(m.RunId);
                    w.Write(m.WorkerIndex);
                    w.Write(m.DataEndpoint);
                    WriteShortBytes(w, m.DataKey);
                    break;
                case JoinRefused m:
                    w.Write(m.RunId);
                    w.Write(m.WorkerIndex);
                    w.Write(m.Reason);
                    break;
                case RunEnded m:
                    w.Write(m.RunId);
                    break;
                case ClockProbe m:
                    w.Write(m.SentAt);
                    break;
                case ClockEcho m:
                    w.Write(m.SentAt);
                    w.Write(m.EchoAt);
                    break;
                case PeerReady m:
                    WritePlan(w, m.Plan);
                    w.Write(m.NodeAddress);
                    w.Write(Akka.Serialization.Serialization.SerializedActorPath(m.Peer));
                    w.Write(m.DataEndpoint);
                    WriteShortBytes(w, m.DataKey);
                    break;
                case PeerReadyAck m:
                    w.Write(m.RunId);
                    w.Write(m.NodeAddress);
                    break;
                case ParameterHash m:
                    w.Write(m.RunId);
                    w.Write(m.Epoch);
                    w.Write(m.NodeId);
                    WriteShortBytes(w, m.Hash);
                    w.Write(m.VotesToStop);
                    WriteJoins(w, m.Joiners);
                    break;
                case RunUnderWay m:
                    w.Write(m.RunId);
                    w.Write(m.Epoch);
                    w.Write(m.Peers);
                    w.Write(m.Refusal is not null);
                    if (m.Refusal is not null)
                        w.Write(m.Refusal);
                    WriteStrings(w, m.Members);
                    break;
                case PeerPresent m:
                    w.Write(m.RunId);
                    w.Write(m.NodeAddress);
                    break;
                case JoinReady m:
                    w.Write(m.RunId);
                    w.Write(m.NodeAddress);
                    break;
                case JoinState m:
                    w.Write(m.RunId);
                    w.Write(m.NodeId);
                    WriteJoins(w, m.Members);
                    WriteIds(w, m.AppliedSenders);
                    w.Write(m.SkippedSteps);
                    w.Write(m.State.Length);
                    w.Write(m.State);
                    break;
                case MembershipReport m:
                    w.Write(m.RunId);
                    w.Write(m.NodeId);
                    WriteIds(w, m.Lost);
                    w.Write(m.AppliedStep);
                    WriteIds(w, m.AppliedSenders);
                    w.Write(m.OpenStep);
                    WriteIds(w, m.HeldSenders);
                    break;
                default:
                    throw new ArgumentException($"DistSgdSerializer cannot serialize {obj.GetType()}");
            }
        }
        return buffer.ToArray();
    }

    public override object FromBinary(byte[] bytes, string manifest)
    {
        try
        {
            switch (manifest)
            {
                case ComputeGradientManifest:
                {
                    var r = new FrameReader(bytes);
                    var message = new ComputeGradient(r.String(), r.Int64(), r.Int32(), r.Int32(), ShardIndex: r.Int32(), BatchSize: r.Int32(), ShardCount: r.Int32(), Parameters: r.Vector());
                    r.End();
                    return message;
                }
                case HeldParametersManifest:
                {
                    var r = new FrameReader(bytes);
                    var message = new HeldParameters(r.String(), r.Int64(), r.Vector());
                    r.End();
                    return message;
                }
                case GradientReplyManifest:
                {
                    var r = new FrameReader(bytes);
                    var message = new GradientReply(r.String(), r.Int64(), r.Int32(), r.Int32(), r.Double(), r.Double(), r.Vector());
                    r.End();
                    return message;
                }
                case MessageChunkManifest:
                {
                    var r = new FrameReader(bytes);
                    var message = new MessageChunk(r.Int64(), r.Int32(), r.Int32(), r.Int32(), r.Int32(), r.String(), r.Bytes(WireFormat.LargestMessage));
                    r.End();
                    return message;
                }
                case GradientShareManifest:
                {
                    var r = new FrameReader(bytes);
                    var message = new GradientShare(r.String(), r.Int64(), r.Int32(), r.Int32(), r.Double(), r.Double(), r.Vector());
                    r.End();
                    return message;
                }
                case ReplicaResyncManifest:
                {
                    var r = new FrameReader(bytes);
                    var message = new ReplicaResync(r.String(), r.Int32(), r.Int32(), r.Bytes(MaxHashLength), r.Int64(), r.Vector(), r.Vector());
                    r.End();
                    return message;
                }
            }

            using var reader = new BinaryReader(new MemoryStream(bytes, writable: false), Encoding.UTF8);
            object result = manifest switch
            {
                RegisterWorkerManifest => new RegisterWorker(system.Provider.ResolveActorRef(reader.ReadString()),
                    reader.ReadBoolean()
                        ? new WorkerPosition(reader.ReadString(), reader.ReadInt32(), reader.ReadInt64(), reader.ReadInt32(), reader.ReadInt32(),
                                             reader.ReadInt32(), reader.ReadInt32(), reader.ReadBoolean())
                        : null),
                RequestHeldParametersManifest => new RequestHeldParameters(reader.ReadString()),
                JoinRunManifest => new JoinRun(ReadPlan(reader), reader.ReadInt32(), reader.ReadInt32(), ReadEndpoint(reader), ReadKey(reader)),
                JoinAcceptedManifest => new JoinAccepted(reader.ReadString(), reader.ReadInt32(), ReadEndpoint(reader), ReadKey(reader)),
                JoinRefusedManifest => new JoinRefused(reader.ReadString(), reader.ReadInt32(), reader.ReadString()),
                RunEndedManifest => new RunEnded(reader.ReadString()),
                ClockProbeManifest => new ClockProbe(reader.ReadInt64()),
                ClockEchoManifest => new ClockEcho(reader.ReadInt64(), reader.ReadInt64()),
                PeerReadyManifest => new PeerReady(ReadPlan(reader), reader.ReadString(), system.Provider.ResolveActorRef(reader.ReadString()), ReadEndpoint(reader), ReadKey(reader)),
                PeerReadyAckManifest => new PeerReadyAck(reader.ReadString(), reader.ReadString()),
                ParameterHashManifest => new ParameterHash(reader.ReadString(), reader.ReadInt32(), reader.ReadInt32(), ReadShortBytes(reader, "a parameter hash"), reader.ReadBoolean())
                {
                    Joiners = ReadJoins(reader),
                },
                RunUnderWayManifest => new RunUnderWay(reader.ReadString(), reader.ReadInt32(), reader.ReadInt32(), reader.ReadBoolean() ? reader.ReadString() : null)
                {
                    Members = ReadStrings(reader),
                },
                PeerPresentManifest => new PeerPresent(reader.ReadString(), reader.ReadString()),
                JoinReadyManifest => new JoinReady(reader.ReadString(), reader.ReadString()),
                JoinStateManifest => new JoinState(reader.ReadString(), reader.ReadInt32(), ReadJoins(reader), ReadIds(reader), reader.ReadInt64(),
                                                   ReadCountedBytes(reader, "a join state")),
                MembershipReportManifest => new MembershipReport(reader.ReadString(), reader.ReadInt32(), ReadIds(reader), reader.ReadInt64(),
                                                                 ReadIds(reader), reader.ReadInt64(), ReadIds(reader)),
                _ => throw new SerializationException($"DistSgdSerializer: unknown manifest '{manifest}'"),
            };
            if (reader.BaseStream.Position != bytes.Length)
                throw new SerializationException($"DistSgdSerializer: {bytes.Length - reader.BaseStream.Position} unexpected trailing bytes in a '{manifest}' message");
            return result;
        }
        catch (Exception e) when (e is IOException or ArgumentException or FormatException or DecoderFallbackException or IndexOutOfRangeException or OverflowException)
        {
            throw new SerializationException($"DistSgdSerializer: malformed '{manifest}' message of {bytes.Length} bytes: {e.Message}", e);
        }
    }

    private static void WritePlan(BinaryWriter w, RunPlan plan)
    {
        w.Write(plan.RunId);
        w.Write((byte)plan.Spec.Kind);
        w.Write((byte)plan.Spec.Activation);
        w.Write(plan.Spec.InputCount);
        w.Write(plan.Spec.ClassCount);
        w.Write(plan.Spec.HiddenSizes.Count);
        foreach (int size in plan.Spec.HiddenSizes)
            w.Write(size);
        w.Write(plan.BatchSizePerWorker);
        w.Write(plan.Seed);
        w.Write(plan.Epochs);
        w.Write(plan.TrainCount);
        w.Write(plan.StepsPerEpoch);
        w.Write(plan.Hyperparameters);
        w.Write((byte)plan.Collective);
    }

    private static RunPlan ReadPlan(BinaryReader r)
    {
        string runId = r.ReadString();
        var kind = (ModelKind)r.ReadByte();
        var activation = (Activation)r.ReadByte();
        if (!Enum.IsDefined(kind) || !Enum.IsDefined(activation))
            throw new SerializationException($"DistSgdSerializer: unknown model kind {(int)kind} or activation {(int)activation}");
        int inputs = r.ReadInt32();
        int classes = r.ReadInt32();
        int hiddenCount = r.ReadInt32();
        if (hiddenCount is < 0 or > 1000)
            throw new SerializationException($"DistSgdSerializer: hidden-layer count {hiddenCount} out of range");
        var hidden = new int[hiddenCount];
        for (int i = 0; i < hidden.Length; i++)
            hidden[i] = r.ReadInt32();
        var spec = new ModelSpec(kind, inputs, classes, hidden, activation);
        _ = spec.ParameterCount;   // throws (ArgumentException) for a model no buffer can hold
        int batch = r.ReadInt32(), seed = r.ReadInt32(), epochs = r.ReadInt32(), trainCount = r.ReadInt32(), stepsPerEpoch = r.ReadInt32();
        if (batch < 1 || epochs < 1 || trainCount < 1 || stepsPerEpoch < 1 || batch > trainCount)
            throw new SerializationException(
                $"DistSgdSerializer: a run plan with batch {batch}, {epochs} epochs, {trainCount} samples, {stepsPerEpoch} steps per epoch");
        string hyperparameters = r.ReadString();
        var collective = (Collective)r.ReadByte();
        if (!Enum.IsDefined(collective))
            throw new SerializationException($"DistSgdSerializer: unknown collective {(int)collective}");
        return new RunPlan(runId, spec, batch, seed, epochs, trainCount, stepsPerEpoch, hyperparameters, collective);
    }

    /// <summary>A data-plane "host:port", empty on the Akka transport; a longer one is malformed.</summary>
    private static string ReadEndpoint(BinaryReader r)
    {
        string endpoint = r.ReadString();
        if (endpoint.Length > 300)
            throw new SerializationException($"DistSgdSerializer: a data endpoint of {endpoint.Length} characters (at most 300)");
        return endpoint;
    }

    /// <summary>Node ids of a cluster: a few thousand at most, however the bytes claim otherwise.</summary>
    private const int MaxNodeIds = 4096;

    /// <summary>A count, then each item as <paramref name="write"/> writes it.</summary>
    private static void WriteList<T>(BinaryWriter w, IReadOnlyCollection<T> items, Action<BinaryWriter, T> write)
    {
        w.Write(items.Count);
        foreach (var item in items)
            write(w, item);
    }

    /// <summary>What <see cref="WriteList{T}"/> wrote: a count of at most <see cref="MaxNodeIds"/> (one item per node at most), then the items.</summary>
    private static T[] ReadList<T>(BinaryReader r, string what, Func<BinaryReader, T> read)
    {
        int count = r.ReadInt32();
        if (count is < 0 or > MaxNodeIds)
            throw new SerializationException($"DistSgdSerializer: a list of {count} {what} (expected 0 to {MaxNodeIds})");
        var items = new T[count];
        for (int i = 0; i < count; i++)
            items[i] = read(r);
        return items;
    }

    private static void WriteIds(BinaryWriter w, int[] ids) => WriteList(w, ids, (writer, id) => writer.Write(id));

    private static int[] ReadIds(BinaryReader r) => ReadList(r, "node ids", reader => reader.ReadInt32());

    /// <summary>Late peers of a decentralized run (<see cref="PeerJoin"/>): a count, then each one's id, address, actor, endpoint and key.</summary>
    private static void WriteJoins(BinaryWriter w, PeerJoin[] joins) => WriteList(w, joins, (writer, join) =>
    {
        writer.Write(join.NodeId);
        writer.Write(join.NodeAddress);
        writer.Write(Akka.Serialization.Serialization.SerializedActorPath(join.Peer));
        writer.Write(join.DataEndpoint);
        WriteShortBytes(writer, join.DataKey);
    });

    private PeerJoin[] ReadJoins(BinaryReader r) => ReadList(r, "peers", reader =>
        new PeerJoin(reader.ReadInt32(), reader.ReadString(), system.Provider.ResolveActorRef(reader.ReadString()), ReadEndpoint(reader), ReadKey(reader)));

    private static void WriteStrings(BinaryWriter w, string[] values) => WriteList(w, values, (writer, value) => writer.Write(value));

    private static string[] ReadStrings(BinaryReader r) => ReadList(r, "addresses", reader => reader.ReadString());

    /// <summary>A length (0 to <see cref="WireFormat.LargestMessage"/>, and no more than the bytes left) and that many bytes.</summary>
    private static byte[] ReadCountedBytes(BinaryReader r, string what)
    {
        int length = r.ReadInt32();
        if (length < 0 || length > r.BaseStream.Length - r.BaseStream.Position)
            throw new SerializationException($"DistSgdSerializer: {what} of {length} bytes, {r.BaseStream.Length - r.BaseStream.Position} left in the message");
        return r.ReadBytes(length);
    }

    /// <summary>A parameter hash or a data-plane key: a length (0 to <see cref="MaxHashLength"/>) and that many bytes.</summary>
    private static byte[] ReadShortBytes(BinaryReader r, string what)
    {
        int length = r.ReadInt32();
        if (length is < 0 or > MaxHashLength)
            throw new SerializationException($"DistSgdSerializer: {what} of {length} bytes (expected 0 to {MaxHashLength})");
        var bytes = r.ReadBytes(length);
        if (bytes.Length != length)
            throw new EndOfStreamException($"{what} of {length} bytes is truncated to {bytes.Length}");
        return bytes;
    }

    /// <summary>A data-plane key; none (the Akka transport) is written as no bytes and read back as null.</summary>
    private static byte[]? ReadKey(BinaryReader r) => ReadShortBytes(r, "a data-plane key") is { Length: > 0 } key ? key : null;

    private static void WriteShortBytes(BinaryWriter w, byte[]? bytes)
    {
        w.Write(bytes?.Length ?? 0);
        if (bytes is not null)
            w.Write(bytes);
    }

    /// <summary>Writes little-endian primitives into one pre-sized array.</summary>
    private struct FrameWriter(int size)
    {
        private readonly byte[] _bytes = new byte[size];
        private int _position;

        public void Int32(int value) { BinaryPrimitives.WriteInt32LittleEndian(_bytes.AsSpan(_position), value); _position += 4; }
        public void Int64(long value) { BinaryPrimitives.WriteInt64LittleEndian(_bytes.AsSpan(_position), value); _position += 8; }
        public void Double(double value) { BinaryPrimitives.WriteDoubleLittleEndian(_bytes.AsSpan(_position), value); _position += 8; }

        public void String(string value)
        {
            int length = Encoding.UTF8.GetBytes(value, _bytes.AsSpan(_position + 4));
            Int32(length);
            _position += length;
        }

        public void Bytes(byte[] values)
        {
            Int32(values.Length);
            values.CopyTo(_bytes.AsSpan(_position));
            _position += values.Length;
        }

        public void Vector(float[] values)
        {
            Int32(values.Length);
            var bytes = MemoryMarshal.AsBytes(values.AsSpan());
            if (!BitConverter.IsLittleEndian)
                throw new PlatformNotSupportedException("DistSgd's wire format is little-endian");
            bytes.CopyTo(_bytes.AsSpan(_position));
            _position += bytes.Length;
        }

        public readonly byte[] Done() =>
            _position == _bytes.Length ? _bytes : throw new InvalidOperationException($"frame size {_bytes.Length} but {_position} bytes written");
    }

    /// <summary>Reads what <see cref="FrameWriter"/> wrote, checking every length against what is left.</summary>
    private ref struct FrameReader(byte[] bytes)
    {
        private readonly ReadOnlySpan<byte> _bytes = bytes;
        private int _position;

        private ReadOnlySpan<byte> Take(int count)
        {
            if (count < 0 || count > _bytes.Length - _position)
                throw new SerializationException($"DistSgdSerializer: truncated message: needs {count} more bytes at offset {_position}, {_bytes.Length - _position} left");
            var span = _bytes.Slice(_position, count);
            _position += count;
            return span;
        }

        public int Int32() => BinaryPrimitives.ReadInt32LittleEndian(Take(4));
        public long Int64() => BinaryPrimitives.ReadInt64LittleEndian(Take(8));
        public double Double() => BinaryPrimitives.ReadDoubleLittleEndian(Take(8));

        public string String()
        {
            int length = Int32();
            if (length > 1024)
                throw new SerializationException($"DistSgdSerializer: a run id of {length} bytes is longer than 1024");
            return Encoding.UTF8.GetString(Take(length));
        }

        public byte[] Bytes(int maxLength)
        {
            int length = Int32();
            if (length < 0 || length > maxLength)
                throw new SerializationException($"DistSgdSerializer: a byte field of {length} bytes (expected 0 to {maxLength})");
            return Take(length).ToArray();
        }

        public float[] Vector()
        {
            int count = Int32();
            if (count < 0 || (long)count * sizeof(float) > _bytes.Length - _position)
                throw new SerializationException($"DistSgdSerializer: vector of {count} floats does not fit the {_bytes.Length - _position} bytes left");
            var values = new float[count];
            Take(count * sizeof(float)).CopyTo(MemoryMarshal.AsBytes(values.AsSpan()));
            return values;
        }

        public readonly void End()
        {
            if (_position != _bytes.Length)
                throw new SerializationException($"DistSgdSerializer: {_bytes.Length - _position} unexpected trailing bytes");
        }
    }
}
