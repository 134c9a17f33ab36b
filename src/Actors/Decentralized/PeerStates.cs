using Akka.Actor;
using DistSgd.Actors.Membership;
using DistSgd.Numerics.Training;

namespace DistSgd.Actors.Decentralized;

// The data each PeerActor behaviour carries (Joining carries a StartBarrier, Stepping the run's position, which every
// behaviour shares). Plain objects handed to the behaviour when the peer becomes it, as ClusterSingletonManager's states.

/// <summary>The <c>Verifying</c> behaviour's data: this peer's hash of the epoch just ended, which the round waits to match.</summary>
internal sealed record HashWait(ParameterHash Own);

/// <summary>
/// The <c>Resyncing</c> behaviour's data: the replica differs from the agreed source's, whose <see cref="ReplicaResync"/>
/// it waits for; the source's stop vote decides what follows.
/// </summary>
/// <param name="Joiners">The late peers the lead admitted at this epoch's end (<see cref="HashRound.Agreed.Joiners"/>).</param>
internal sealed record ResyncWait(ParameterHash Own, int Source, bool VotesToStop, PeerJoin[] Joiners);

/// <summary>
/// The <c>Agreeing</c> behaviour's data: the agreement on the survivors after a peer loss, what it interrupted, and
/// whether the report grace is over.
/// </summary>
/// <param name="epochEnd">The interrupted epoch end (a <see cref="HashWait"/> or <see cref="ResyncWait"/>); null when it interrupted the steps.</param>
internal sealed class AgreementWait(MembershipAgreement agreement, object? epochEnd)
{
    public MembershipAgreement Agreement { get; } = agreement;

    public object? EpochEnd { get; } = epochEnd;

    public bool InterruptedSteps => EpochEnd is null;

    /// <summary>Set once the open step waited long enough for survivors' shares; this peer reports what it holds then.</summary>
    public bool GraceOver { get; set; }
}

/// <summary>
/// The <c>Admitting</c> behaviour's data (a late peer, decision 0097): the newest shares that arrived while it waits, and
/// whose publications reach it (<see cref="PeerPresent"/>).
/// </summary>
internal sealed class AdmissionWait(IEnumerable<(GradientShare Share, IActorRef Sender)> early)
{
    public Queue<(GradientShare Share, IActorRef Sender)> Early { get; } = new(early);

    /// <summary>Participants' addresses whose <see cref="PeerPresent"/> reached this peer.</summary>
    public HashSet<string> Heard { get; } = new(StringComparer.Ordinal);

    /// <summary>Whether every participant the lead named (<see cref="RunUnderWay.Members"/>) has been heard.</summary>
    public bool HeardAll(RunUnderWay underWay) => underWay.Members.Length > 0 && Heard.IsSupersetOf(underWay.Members);
}

/// <summary>A PeerActor timer's message: one that arrives after its phase is over is ignored.</summary>
internal interface IPeerTimerTick;

/// <summary>Publish <see cref="PeerReady"/> again (Joining).</summary>
internal sealed record PublishReady : IPeerTimerTick;

/// <summary>A late peer heard nothing from the run's lead within distsgd.start-timeout while it waited to join.</summary>
internal sealed record AdmissionTimedOut : IPeerTimerTick;

/// <summary>The start barrier was not passed within distsgd.start-timeout.</summary>
internal sealed record StartTimedOut : IPeerTimerTick;

/// <summary>Not every participant's hash of <paramref name="Epoch"/> arrived within distsgd.step-timeout.</summary>
internal sealed record HashRoundTimedOut(int Epoch) : IPeerTimerTick;

/// <summary>The agreed source's resync of <paramref name="Epoch"/> did not arrive within distsgd.step-timeout.</summary>
internal sealed record ResyncTimedOut(int Epoch) : IPeerTimerTick;

/// <summary>Not every survivor reported within distsgd.step-timeout.</summary>
internal sealed record AgreementTimedOut : IPeerTimerTick;

/// <summary>The open step waited long enough for the survivors' shares: this peer reports what it holds.</summary>
internal sealed record ReportGraceOver : IPeerTimerTick;

/// <summary>
/// What the collaborators of the <see cref="PeerActor"/> (<see cref="PeerStep"/>, <see cref="EpochEndRound"/>,
/// <see cref="PeerLossRound"/>) ask of the actor: its behaviour changes, the topic, the run's end, and the two
/// hand-overs between them (the epoch end, the agreement), which the actor routes to the collaborator that owns each.
/// </summary>
internal interface IPeerControl
{
    void BecomeStepping();

    void BecomeVerifying(HashWait wait);

    void BecomeResyncing(ResyncWait wait);

    void BecomeAgreeing(AgreementWait wait);

    /// <summary>Publishes <paramref name="message"/> on the run's topic, to every peer (this one included).</summary>
    void Publish(object message);

    /// <summary>Starts the epoch's hash round (<see cref="EpochEndRound.Start"/>).</summary>
    void StartHashRound();

    /// <summary>
    /// Counts <paramref name="nodeIds"/> as lost and starts the agreement on the survivors (<see cref="PeerLossRound.Open"/>);
    /// false when none of them is a participant.
    /// </summary>
    bool OpenAgreement(object? epochEnd, IReadOnlyCollection<int> nodeIds, LossCause cause, string detail);

    /// <summary>Opens the agreement on the peers lost while this one compared hashes, if any (<see cref="PeerLossRound.OpenDeferred"/>).</summary>
    bool OpenDeferredAgreement();

    void Finish(StopReason reason, bool lead, byte[] hash);

    void Fail(string reason);

    /// <summary>The others go on without this peer (they count it lost, or it is on the minority side): it stops, and its node may join again.</summary>
    void LeftOut(string reason);
}
