namespace DistSgd.Actors.Decentralized;

// The data each PeerActor behaviour carries (Joining carries a StartBarrier, Stepping the run's position, which every
// behaviour shares). Plain objects handed to the behaviour when the peer becomes it, as ClusterSingletonManager's states.

/// <summary>The <c>Verifying</c> behaviour's data: this peer's hash of the epoch just ended, which the round waits to match.</summary>
internal sealed record HashWait(ParameterHash Own);

/// <summary>
/// The <c>Resyncing</c> behaviour's data: the replica differs from the agreed source's, whose <see cref="ReplicaResync"/>
/// it waits for; the source's stop vote decides what follows.
/// </summary>
internal sealed record ResyncWait(ParameterHash Own, int Source, bool VotesToStop);

/// <summary>
/// The <c>Agreeing</c> behaviour's data: the agreement on the survivors after a peer loss, what it interrupted, and
/// whether the report grace is over.
/// </summary>
/// <param name="epochEnd">The interrupted epoch end (a <see cref="HashWait"/> or <see cref="ResyncWait"/>); null when it interrupted the steps.</param>
internal sealed class PeerLossRound(MembershipAgreement agreement, object? epochEnd)
{
    public MembershipAgreement Agreement { get; } = agreement;

    public object? EpochEnd { get; } = epochEnd;

    public bool InterruptedSteps => EpochEnd is null;

    /// <summary>Set once the open step waited long enough for survivors' shares; this peer reports what it holds then.</summary>
    public bool GraceOver { get; set; }
}
