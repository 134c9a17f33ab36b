using System.Numerics.Tensors;
using DistSgd.Actors.Steps;

namespace DistSgd.Actors.Decentralized;

/// <summary>
/// A peer's rules for a <see cref="ReplicaResync"/>, which overwrites its whole replica: it is applied only when it
/// is for this run, from the source the hash round agreed on, of the replica's shape and finite. Anything else is
/// dropped and counted; a peer that never gets a good one fails at distsgd.step-timeout, as when none arrives.
/// A resync may arrive before this peer's hash round of that epoch is over: it is held until then.
/// </summary>
public sealed class ResyncCheck
{
    private readonly Dictionary<GatherOutcome, long> _dropped = new();
    private readonly Dictionary<(int Epoch, int Source), ReplicaResync> _held = new();

    /// <summary>Holds a resync whose epoch's hash round has not finished here (the latest from a source wins).</summary>
    public void Hold(ReplicaResync message) => _held[(message.Epoch, message.SourceNodeId)] = message;

    /// <summary>The held resync of <paramref name="epoch"/> from <paramref name="source"/>, taken out; null when none came.</summary>
    public ReplicaResync? TakeHeld(int epoch, int source) => _held.Remove((epoch, source), out var held) ? held : null;

    /// <summary>Forgets the held resyncs of <paramref name="epoch"/> and earlier: that hash round is over.</summary>
    public void ForgetThrough(int epoch)
    {
        foreach (var key in _held.Keys.Where(k => k.Epoch <= epoch).ToList())
            _held.Remove(key);
    }

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

    /// <summary>
    /// Whether a resync that arrived is one to apply now or hold (Accepted), one to ignore (null: this peer's own coming
    /// back, or one of an epoch this peer agreed on and left), or one to refuse before judging it (counted: another run,
    /// an epoch too far ahead, a source that is no participant).
    /// </summary>
    public GatherOutcome? Admit(ReplicaResync message, string runId, int self, int epoch, IReadOnlyCollection<int> participants)
    {
        if (message.SourceNodeId == self || (message.RunId == runId && message.Epoch < epoch))
            return null;
        var reason = message.RunId != runId ? GatherOutcome.ForeignRun
                   : message.Epoch > epoch + 1 ? GatherOutcome.FutureStep
                   : !participants.Contains(message.SourceNodeId) ? GatherOutcome.NotParticipant
                   : GatherOutcome.Accepted;
        if (reason != GatherOutcome.Accepted)
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
