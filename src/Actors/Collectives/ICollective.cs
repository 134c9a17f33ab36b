using DistSgd.Actors.Protocol;
using DistSgd.Numerics.Training;

namespace DistSgd.Actors.Collectives;

/// <summary>
/// How a peer's share of a step leaves it (distsgd.collective): the all-gather sends the whole share to every other
/// participant, whose step gather averages them all; an all-reduce (<see cref="IAllReduce"/>) sends parts of it and
/// makes the step's average with the other peers.
/// </summary>
public interface ICollective : IDisposable
{
    Collective Kind { get; }

    /// <summary>This peer's node id and every node's data endpoint, known once the start barrier passed (no endpoints on the Akka transport).</summary>
    void Connect(int self, IReadOnlyDictionary<int, string> endpoints);

    /// <summary>
    /// Sends this peer's <paramref name="share"/> of the open step to the other <paramref name="participants"/>; returns the
    /// payload bytes sent and calls <paramref name="unreachable"/> (node, endpoint) for each peer a send failed to. A peer that
    /// cannot be reached is not forgotten here: its own reader sees the connection close and stops waiting for this one.
    /// </summary>
    long Send(IGradientContribution share, int epoch, int stepInEpoch, IReadOnlyCollection<int> participants, Action<int, string> unreachable);
}

/// <summary>What became of a <see cref="CollectivePart"/> offered to an <see cref="IAllReduce"/>.</summary>
public enum PartOutcome
{
    Accepted,
    /// <summary>For a later step (within the window): held until that step begins.</summary>
    Held,
    /// <summary>For a step already over (or skipped).</summary>
    Stale,
    /// <summary>Too far ahead.</summary>
    Future,
    ForeignRun,
    /// <summary>From a node that is not a participant, or not the one this part must come from (the ring's left neighbour).</summary>
    NotParticipant,
    Duplicate,
    /// <summary>Not a slice or segment this peer expects: wrong round, offset, length or origin.</summary>
    WrongSlice,
    /// <summary>For the open step while the peer does not step (an agreement after a peer loss): the step is never finished, nothing is counted.</summary>
    Interrupted,
}

/// <summary>
/// An all-reduce of the participants' shares (reduce-scatter, then all-gather) on the data plane: the step's average is
/// made here, in a fixed order, so every replica gets the same bits. A plain class the peer drives: <see cref="Begin"/>
/// at each step, <see cref="ICollective.Send"/> once its own share is computed, <see cref="Take"/> for each part that
/// arrives; the step's gather asks <see cref="IsComplete"/> and the update reads <see cref="Average"/>.
/// </summary>
/// <remarks>
/// Each participant's sample count, loss sum and compute seconds (the step's metadata) reach every peer with the parts;
/// the all-reduce hands each to the peer (<see cref="Noticed"/>), whose step gather takes it as a share with an empty gradient, so the gather's bookkeeping (who answered, the epoch's totals, a peer-loss report) is the
/// all-gather's.
/// </remarks>
public interface IAllReduce : ICollective
{
    /// <summary>Called with the first part of the open step that carries a participant's metadata (its <see cref="CollectivePart.Origin"/>), once per participant and step (not this peer's own).</summary>
    Action<CollectivePart>? Noticed { get; set; }

    /// <summary>The first step a resumed run opens: parts of the window of steps from it are held before it begins.</summary>
    long FirstStep { get; set; }

    /// <summary>Opens <paramref name="step"/> among <paramref name="participants"/>; held parts of it are taken once this peer's share is sent.</summary>
    void Begin(long step, IReadOnlyCollection<int> participants);

    /// <summary>
    /// A part from another peer: taken into the open step (which may send parts on: the bytes are added to
    /// <paramref name="bytesSent"/>), held for a later step, or dropped. With <paramref name="stepping"/> false (the peer is
    /// agreeing on a loss or ending the epoch) parts of the open step are not taken.
    /// </summary>
    PartOutcome Take(CollectivePart part, bool stepping, ref long bytesSent);

    /// <summary>True when this peer holds the whole average of the open step.</summary>
    bool IsComplete { get; }

    /// <summary>Adds the participants whose parts the open step still waits for.</summary>
    void AddMissing(ISet<int> missing);

    /// <summary>ḡ = Σ wᵢ·gᵢ / Σ wᵢ of the open step, once <see cref="IsComplete"/>.</summary>
    ReadOnlySpan<float> Average { get; }

    /// <summary>Σ wᵢ behind <see cref="Average"/>.</summary>
    long Samples { get; }
}

/// <summary>
/// Data plane → its peer (a local message, never on the network): one slice or segment of an all-reduce, from
/// <paramref name="Sender"/>. <paramref name="Round"/> is the pairwise round (0: to the slice's owner, 1: the averaged
/// slice back) or the ring hop; <paramref name="Offset"/> where <paramref name="Values"/> sit in the vector;
/// <paramref name="Origin"/> whose sample count, loss sum and compute seconds the part carries (−1: none).
/// </summary>
public sealed record CollectivePart(string RunId, long Step, int Sender, int Round, int Offset, int Origin, int SampleCount, double LossSum,
                                    double ComputeSeconds, float[] Values)
{
    /// <summary>Bytes this part took on the data plane (header and payload, float32 or 16-bit); 0: as float32 (a part made here).</summary>
    public long FrameBytes { get; init; }

    /// <summary>Bytes this part took on the data plane (header and payload).</summary>
    public long Bytes => FrameBytes > 0 ? FrameBytes : Transport.FrameHeader.Size + (long)Values.Length * sizeof(float);

    /// <summary>The part a data-plane frame carries (<see cref="Transport.FrameDecoder"/>).</summary>
    public static object FromFrame(in Transport.FrameHeader h, string runId, float[] values, bool? finite, Numerics.Tensors.SparseVector? entries) =>
        new CollectivePart(runId, h.Step, h.Sender, h.Shard, h.Epoch, h.StepInEpoch, h.SampleCount, h.LossSum, h.ComputeSeconds, values)
        {
            FrameBytes = h.FrameBytes,
        };

    /// <summary>The header of a part's frame (the data plane fills in the run hash and the count).</summary>
    public static Transport.FrameHeader Header(long step, int sender, int round, int offset, int origin, int sampleCount, double lossSum,
                                               double computeSeconds) =>
        new(Transport.FrameKind.CollectivePart, 0, step, sender, offset, origin, sampleCount, lossSum, computeSeconds, 0, checked((ushort)round));
}
