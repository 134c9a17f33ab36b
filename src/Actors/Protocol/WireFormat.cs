using System.Text;

namespace DistSgd.Actors.Protocol;

/// <summary>
/// A message that carries vectors (θ, a gradient, a replica): its exact serialized size is known without
/// serializing it, so the modes count the bytes a step moves and the serializer sizes its one buffer from the same number.
/// </summary>
public interface IPayloadMessage : IDistSgdMessage
{
    /// <summary>Exact serialized size: what the wire carries (before Akka's envelope); built from <see cref="WireFormat"/>'s parts.</summary>
    int PayloadBytes { get; }
}

/// <summary>
/// The layout facts of DistSgd's binary wire format that the layers above the serializer need: its id, the size of
/// its parts, and the bounds a node accepts. The serializer itself (<c>DistSgd.Actors.Codec</c>) sits above
/// the modes because it knows every message; this class lets the modes and the transports use its sizes without
/// depending on it.
/// </summary>
public static class WireFormat
{
    /// <summary>The id <c>DistSgdSerializer</c> is bound to in reference.conf.</summary>
    public const int SerializerId = 4711;

    /// <summary>The largest message a node reassembles (the largest frame Akka.Remote could carry).</summary>
    public const int LargestMessage = 1 << 30;

    /// <summary>A length-prefixed UTF-8 run id (every message starts with one).</summary>
    public static int Header(string runId) => 4 + Encoding.UTF8.GetByteCount(runId);

    /// <summary>A length-prefixed float32 vector.</summary>
    public static int Vector(float[] vector) => 4 + vector.Length * sizeof(float);

    /// <summary>A length-prefixed byte string.</summary>
    public static int Bytes(byte[] bytes) => 4 + bytes.Length;

    /// <summary>The largest ComputeGradient or GradientReply of a model with <paramref name="parameterCount"/> parameters (a run id of up to 1024 bytes).</summary>
    public static int LargestVectorMessage(int parameterCount) =>
        (int)Math.Min(LargestMessage, Header("") + 1024 + 32 + 4 + 4L * parameterCount);

    /// <summary>Exact serialized size of a vector message (<see cref="IPayloadMessage"/>); 0 for the small control messages.</summary>
    public static long PayloadBytes(IDistSgdMessage message) => message is IPayloadMessage payload ? payload.PayloadBytes : 0;
}
