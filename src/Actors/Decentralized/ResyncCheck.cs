using System.Numerics.Tensors;
using DistSgd.Actors.Steps;

namespace DistSgd.Actors.Decentralized;

/// <summary>
/// A peer's rules for a <see cref="ReplicaResync"/>, which overwrites its whole replica: it is applied only when it
/// is for this run, from the source the hash round agreed on, of the replica's shape and finite. Anything else is
/// dropped and counted; a peer that never gets a good one fails at distsgd.step-timeout, as when none arrives.
/// </summary>
public sealed class ResyncCheck
{
    private readonly Dictionary<GatherOutcome, long> _dropped = new();

    /// <summary>Resyncs dropped so far, by reason.</summary>
    public IReadOnlyDictionary<GatherOutcome, long> Dropped => _dropped;

    public long DroppedTotal => _dropped.Values.Sum();

    public GatherOutcome Judge(ReplicaResync message, string runId, int expectedSource, int parameterCount, int velocityLength)
    {
        var outcome = Rules(message, runId, expectedSource, parameterCount, velocityLength);
        if (outcome != GatherOutcome.Accepted)
            _dropped[outcome] = _dropped.GetValueOrDefault(outcome) + 1;
        return outcome;
    }

    /// <summary>Counts a resync the peer refused before judging it (another run, an epoch too far ahead, no participant).</summary>
    public GatherOutcome Refuse(GatherOutcome reason)
    {
        _dropped[reason] = _dropped.GetValueOrDefault(reason) + 1;
        return reason;
    }

    private static GatherOutcome Rules(ReplicaResync message, string runId, int expectedSource, int parameterCount, int velocityLength)
    {
        if (message.RunId != runId)
            return GatherOutcome.ForeignRun;
        if (message.SourceNodeId != expectedSource)
            return GatherOutcome.NotParticipant;
        if (message.Parameters.Length != parameterCount || message.Velocity.Length != velocityLength)
            return GatherOutcome.WrongLength;
        if (!float.IsFinite(TensorPrimitives.Sum(message.Parameters)) || !float.IsFinite(TensorPrimitives.Sum(message.Velocity)))
            return GatherOutcome.NonFinite;
        return GatherOutcome.Accepted;
    }
}
