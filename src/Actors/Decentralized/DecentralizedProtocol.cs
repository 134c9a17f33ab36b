using DistSgd.Actors.Steps;
using Akka.Actor;
using DistSgd.Actors.Protocol;
using DistSgd.Actors.Transport;
using DistSgd.Numerics.Training;

namespace DistSgd.Actors.Decentralized;

// Every message here travels on the run's DistributedPubSub topic (DecentralizedDeployment.Topic), except
// PeerReadyAck, which goes straight back to the peer that published PeerReady. A peer receives its own
// publications too and treats them like any other peer's: one path into its step buffer.

/// <summary>
/// Peer → every peer (published on the run's topic): this peer is subscribed to the topic and runs
/// <paramref name="Plan"/>. Published again every distsgd.ready-interval until the start barrier passes.
/// Reply: <see cref="PeerReadyAck"/> to <paramref name="Peer"/>, from every peer that received it, whatever its phase.
/// </summary>
/// <param name="NodeAddress">The publishing node's cluster address; peers are ordered by it to get node ids.</param>
/// <param name="DataEndpoint">"host:port" of the peer's direct data plane, where shares go; empty on the Akka transport.</param>
/// <param name="DataKey">The peer data plane's key (<see cref="DirectDataPlane.Key"/>): its data connections prove it
/// (<see cref="DataPlaneHandshake"/>); null on the Akka transport.</param>
public sealed record PeerReady(RunPlan Plan, string NodeAddress, IActorRef Peer, string DataEndpoint = "", byte[]? DataKey = null) : IDistSgdMessage;

/// <summary>
/// Peer → the peer whose <see cref="PeerReady"/> it received (a direct reply): "your publications reach
/// <paramref name="NodeAddress"/>". No reply.
/// </summary>
public sealed record PeerReadyAck(string RunId, string NodeAddress) : IDistSgdMessage;

/// <summary>
/// Peer → every peer (published on the run's topic): the mean gradient of node <paramref name="NodeId"/>'s
/// batch for <paramref name="Step"/> at its replica's θ, over <paramref name="SampleCount"/> samples (empty
/// when its shard ran out), with the summed loss and the compute time. No reply; every peer, the sender
/// included, adds it to its step buffer.
/// </summary>
public sealed record GradientShare(string RunId, long Step, int NodeId, int SampleCount, double LossSum,
                                   double ComputeSeconds, float[] Gradient) : IGradientContribution
{
    /// <inheritdoc/>
    public int PayloadBytes => WireFormat.Header(RunId) + 8 + 4 + 4 + 8 + 8 + WireFormat.Vector(Gradient);

    int IGradientContribution.Participant => NodeId;

    /// <inheritdoc/>
    public long FrameBytes { get; init; }

    /// <inheritdoc/>
    public bool? FiniteOnArrival { get; init; }

    /// <inheritdoc/>
    public Numerics.Tensors.SparseVector? Entries { get; init; }

    /// <summary>The share a data-plane frame carries (<see cref="FrameDecoder"/>).</summary>
    public static object FromFrame(in FrameHeader h, string runId, float[] values, bool? finite, Numerics.Tensors.SparseVector? entries) =>
        new GradientShare(runId, h.Step, h.Sender, h.SampleCount, h.LossSum, h.ComputeSeconds, values) { FrameBytes = h.FrameBytes, FiniteOnArrival = finite, Entries = entries };
}

/// <summary>
/// Peer → every peer (published on the run's topic) at the end of <paramref name="Epoch"/>: the SHA-256 of the
/// node's replica (θ and optimizer state, <see cref="ReplicaCheck.Hash"/>) and whether its stop rule says
/// the run should end. No reply; the next epoch starts once every participant's hash is in.
/// </summary>
public sealed record ParameterHash(string RunId, int Epoch, int NodeId, byte[] Hash, bool VotesToStop) : IDistSgdMessage
{
    /// <summary>
    /// The lead peer's hash only: the late peers it admits at this epoch's end, each with the node id it takes
    /// (<see cref="PeerAdmission.Admit"/>). Every participant reads them from the lead's hash once the round is complete,
    /// so a join is decided once and shared, as a loss is (decision 0097); empty in every other hash.
    /// </summary>
    public PeerJoin[] Joiners { get; init; } = [];
}

/// <summary>
/// A late peer admitted to a run under way (carried in the lead's <see cref="ParameterHash"/> and in <see cref="JoinState"/>):
/// what every participant needs to take it in, as the start barrier gives it for the first peers.
/// </summary>
/// <param name="NodeId">The node id it takes: a new one, never used in this run before (a peer coming back gets a new one too).</param>
/// <param name="NodeAddress">Its node's cluster address.</param>
/// <param name="Peer">Its peer actor: on the Akka transport its shares must come from it.</param>
/// <param name="DataEndpoint">"host:port" of its data plane; empty on the Akka transport.</param>
/// <param name="DataKey">Its data-plane key (its data connections prove it); null on the Akka transport.</param>
public sealed record PeerJoin(int NodeId, string NodeAddress, IActorRef Peer, string DataEndpoint, byte[]? DataKey)
{
    /// <summary>The same peer as announced in <paramref name="ready"/>, taking node id <paramref name="nodeId"/>.</summary>
    public static PeerJoin Of(int nodeId, PeerReady ready) => new(nodeId, ready.NodeAddress, ready.Peer, ready.DataEndpoint, ready.DataKey);
}

/// <summary>
/// The lead peer → a late peer whose <see cref="PeerReady"/> it received while the run is under way (a direct reply, to
/// <see cref="PeerReady.Peer"/>; again for each PeerReady): the run is at <paramref name="Epoch"/> with
/// <paramref name="Peers"/> participants, and the late peer joins at the end of that epoch, or, with a
/// <paramref name="Refusal"/>, cannot join (why, for the user). No reply.
/// </summary>
public sealed record RunUnderWay(string RunId, int Epoch, int Peers, string? Refusal = null) : IDistSgdMessage
{
    /// <summary>
    /// The participants' addresses: the late peer tells the lead <see cref="JoinReady"/> once a <see cref="PeerPresent"/> of each
    /// has reached it.
    /// </summary>
    public string[] Members { get; init; } = [];
}

/// <summary>
/// Every participant → every peer (published on the run's topic), in answer to a late peer's <see cref="PeerReady"/> it
/// records: "<paramref name="NodeAddress"/> heard you, and this publication shows its publications reach you".
/// DistributedPubSub spreads its registry by gossip, so a late peer is admitted only once every participant's
/// publications reach it, as the start barrier waits for the first peers'. No reply.
/// </summary>
public sealed record PeerPresent(string RunId, string NodeAddress) : IDistSgdMessage;

/// <summary>
/// A late peer → the lead (a direct reply to <see cref="RunUnderWay"/>): a <see cref="PeerPresent"/> of every participant
/// reached <paramref name="NodeAddress"/>, so it can take part; the lead admits only late peers that said so. No reply.
/// </summary>
public sealed record JoinReady(string RunId, string NodeAddress) : IDistSgdMessage;

/// <summary>
/// The lead peer → a late peer it admitted (a direct reply, at the end of the epoch the join was decided): the replica
/// every participant holds as the next epoch starts, as a checkpoint (<see cref="CheckpointFile"/>: θ, optimizer state with
/// the learning-rate schedule's re-plans, step, epoch, stop rule, finished epochs), and who takes part. The late peer adopts
/// it and takes its first step with the others; its hash is checked from that epoch's end. No reply.
/// </summary>
/// <param name="NodeId">The node id the late peer takes.</param>
/// <param name="Members">Every participant from now on, the late peer included (node ids, addresses, actors, data endpoints and keys).</param>
/// <param name="AppliedSenders">Whose shares the last step before the join used (what the late peer reports if a loss is agreed in its first step).</param>
/// <param name="SkippedSteps">Step numbers the run skipped after peer losses (left out of the epochs' step counts).</param>
/// <param name="State">The checkpoint's bytes (<see cref="CheckpointFile.Serialize"/>), checked by its checksum on arrival.</param>
public sealed record JoinState(string RunId, int NodeId, PeerJoin[] Members, int[] AppliedSenders, long SkippedSteps, byte[] State) : IDistSgdMessage;

/// <summary>
/// The agreed peer → every peer (published on the run's topic) after hashes differed at the end of
/// <paramref name="Epoch"/>: its replica, θ and optimizer state (step and velocity), whose hash is
/// <paramref name="Hash"/>. Peers whose hash differs adopt it; the others ignore it. No reply.
/// </summary>
public sealed record ReplicaResync(string RunId, int Epoch, int SourceNodeId, byte[] Hash, long OptimizerStep,
                                   float[] Parameters, float[] Velocity) : IPayloadMessage
{
    /// <inheritdoc/>
    public int PayloadBytes =>
        WireFormat.Header(RunId) + 4 + 4 + WireFormat.Bytes(Hash) + 8 + WireFormat.Vector(Parameters) + WireFormat.Vector(Velocity);
}

/// <summary>
/// Peer → every peer (published on the run's topic) after it lost one or more participants (unreachable, removed,
/// data connection closed, silent past distsgd.step-timeout), or on a report whose lost set is larger than its own:
/// what it holds, so the survivors agree on the new membership and on exactly which shares the contested step uses
/// (<see cref="MembershipAgreement"/>). Published once per lost set; a finished peer answers with one too. No reply:
/// every survivor decides once it has every survivor's report for the same lost set.
/// </summary>
/// <param name="Lost">The participants this peer counts as lost (node ids); it names the agreement.</param>
/// <param name="AppliedStep">The last step this replica applied (−1: none).</param>
/// <param name="AppliedSenders">Whose shares that step used.</param>
/// <param name="OpenStep">The step this peer gathers now (or opens next, between epochs).</param>
/// <param name="HeldSenders">Whose shares of <paramref name="OpenStep"/> it holds.</param>
public sealed record MembershipReport(string RunId, int NodeId, int[] Lost, long AppliedStep, int[] AppliedSenders,
                                      long OpenStep, int[] HeldSenders) : IDistSgdMessage
{
    public override string ToString() =>
        $"node {NodeId}: lost [{string.Join(",", Lost)}], applied step {AppliedStep} with [{string.Join(",", AppliedSenders)}], " +
        $"holds [{string.Join(",", HeldSenders)}] of step {OpenStep}";
}

/// <summary>
/// Peer → its node's local reporter when the run ends normally (every peer sends one, the lead peer also
/// sends <see cref="RunProgress.RunCompleted"/>): this replica's final θ and its hash. Local only.
/// </summary>
public sealed record PeerFinished(int NodeId, float[] Parameters, byte[] Hash);

/// <summary>
/// Peer → its node's local reporter, just before its <see cref="RunProgress.RunFailed"/>, when the others went on without it
/// (they count it as lost, or it is on the minority side): its node may join the run again as a late peer. Local only.
/// </summary>
public sealed record PeerLeftOut(int NodeId, string Reason);

/// <summary>Local queries and test hooks of a <see cref="PeerActor"/>; they never cross the network.</summary>
public static class PeerQueries
{
    /// <summary>Asks a peer for its replica. Reply: <see cref="Replica"/>.</summary>
    public sealed record GetReplica
    {
        public static readonly GetReplica Instance = new();
    }

    /// <param name="NodeId">−1 before the start barrier has passed.</param>
    /// <param name="Step">Steps this replica has taken.</param>
    /// <param name="Parameters">A copy of θ.</param>
    /// <param name="Dropped">Shares dropped so far (stale, foreign, duplicate, …).</param>
    public sealed record Replica(int NodeId, long Step, float[] Parameters, long Dropped);

    /// <summary>
    /// Test hook: at the end of <paramref name="Epoch"/>, before hashing, nudge θ₀ of this replica so it differs
    /// from the others, to exercise the mismatch report and the repair.
    /// </summary>
    internal sealed record CorruptReplicaAtEpochEnd(int Epoch);

    /// <summary>
    /// Test hook: at <paramref name="Step"/>, once this peer has sent the first part of the all-reduce's all-gather half
    /// (with the all-gather: its first share sent at that step or later, to the first other participant), it sends nothing more and its node stops
    /// abruptly, as a process killed mid-collective would: some survivors may finish the step, the others not. With the
    /// all-gather it stops once it holds every other share of the step (before it applies it), so that the participant it
    /// sent to holds them too, all but surely, and applies the step before it sees the loss.
    /// </summary>
    internal sealed record CrashMidAllReduce(long Step);

    /// <summary>
    /// Test hook: when this peer is node <paramref name="NodeId"/> and about to start <paramref name="Step"/> (or a later
    /// one), before it computes or sends anything for it, its node stops abruptly, as a process killed between two steps
    /// would. Unlike a kill from outside, the step does not depend on how fast the test sees the run go by; told to every
    /// peer before the start barrier (node ids are decided there), it cannot arrive late either.
    /// </summary>
    internal sealed record CrashAtStep(long Step, int NodeId);

    /// <summary>
    /// Test hook: when this peer is node <paramref name="Holder"/>, it holds back the share of node <paramref name="NodeId"/>
    /// for <paramref name="Step"/> until it sees a peer loss, and takes it in then, as when that share is still on its way
    /// when the loss is noticed: the others may have applied the step and run on, this peer has it open with every share
    /// but one. Told to every peer before the start barrier, like <see cref="CrashAtStep"/>.
    /// </summary>
    internal sealed record HoldShareUntilLoss(int Holder, int NodeId, long Step);
}
