namespace DistSgd.Actors.Decentralized;

/// <summary>
/// What the surviving peers agreed after losing some: who is left, and exactly which shares the contested step
/// used. The same on every survivor, because it is a function of the same reports (<see cref="MembershipAgreement.Decide"/>).
/// </summary>
/// <param name="Survivors">The participants from now on, in node-id order.</param>
/// <param name="Lost">The participants dropped by this agreement, in node-id order.</param>
/// <param name="Step">The contested step: the latest step any survivor applied (−1: none yet).</param>
/// <param name="Senders">Whose shares <paramref name="Step"/> uses on every survivor: the intersection of what each holds.</param>
/// <param name="RolledBack">Survivors that applied <paramref name="Step"/> with other shares and must redo it with <paramref name="Senders"/>.</param>
/// <param name="NextStep">The step number the survivors go on with: Step + 2, so that shares already sent for Step + 1 become
/// stale, or past every survivor's open step when one is further (local SGD: a survivor may have run on into a round's local steps).</param>
/// <param name="Problem">Why the reports cannot be reconciled (a bug, not a fault), or null.</param>
public sealed record MembershipDecision(IReadOnlyList<int> Survivors, IReadOnlyList<int> Lost, long Step, IReadOnlyList<int> Senders,
                                        IReadOnlyList<int> RolledBack, long NextStep, string? Problem = null)
{
    /// <summary>The decision in words, for the log and the lead's note.</summary>
    public string Describe() =>
        $"peers {string.Join(", ", Lost)} lost: {Survivors.Count} peers go on (nodes {string.Join(", ", Survivors)}); " +
        $"step {Step} uses the shares of nodes {string.Join(", ", Senders)}" +
        (RolledBack.Count > 0 ? $", redone by nodes {string.Join(", ", RolledBack)}" : "");
}

/// <summary>
/// The peers' agreement on a new membership after a loss, as a plain class the actor drives: it collects suspicions
/// (an unreachable or removed member, a closed data connection, a step or hash round that timed out) and the other
/// survivors' <see cref="MembershipReport"/>s, and decides once every survivor has reported for the same lost set.
/// </summary>
/// <remarks>
/// <para><b>Why a round is needed.</b> A crashing peer may have delivered its share of step s to some peers and not
/// others: those that got it finished step s (and may already have sent their share of s + 1), the others wait.
/// Going on with what each holds would split the replicas. Instead every survivor reports the last step it applied,
/// with whose shares, and whose shares it holds for the step it has open; every survivor then applies the contested
/// step (the latest one applied anywhere) with the intersection of those sets, redoing it when it applied more,
/// and all continue at step + 2, recomputing their shares, so nothing sent before the agreement counts.</para>
/// <para><b>One instance per lost set.</b> Lost sets only grow, so a lost set names the agreement it belongs to: a
/// report whose lost set is larger than this peer's makes it adopt the union (and report again); a survivor whose
/// report does not come within the timeout is suspected too. Each growth removes a peer, so the round ends.</para>
/// <para><b>Quorum.</b> The survivors go on only if they are a majority of the participants before the loss, or
/// exactly half holding the lowest node id (the Split Brain Resolver's keep-majority rule, ties to the lowest
/// address). Otherwise they are the minority side of a partition: they stop, and the majority trains on.</para>
/// </remarks>
public sealed class MembershipAgreement
{
    private readonly SortedSet<int> _participants;
    private readonly SortedSet<int> _lost = new();
    private readonly Dictionary<int, MembershipReport> _reports = new();
    private readonly SortedSet<int> _reportedFor = new();

    /// <param name="participants">The participants before the loss (this peer included).</param>
    public MembershipAgreement(IEnumerable<int> participants, int self)
    {
        _participants = new SortedSet<int>(participants);
        if (!_participants.Contains(self))
            throw new ArgumentException($"node {self} is not a participant", nameof(self));
        Self = self;
    }

    public int Self { get; }

    public IReadOnlyCollection<int> Participants => _participants;

    public IReadOnlyCollection<int> Lost => _lost;

    public IEnumerable<int> Survivors => _participants.Where(p => !_lost.Contains(p));

    /// <summary>True when another peer reported this one as lost: the others go on without it.</summary>
    public bool SelfExcluded => _lost.Contains(Self);

    /// <summary>Whether the survivors may go on (majority, or half with the lowest node id).</summary>
    public bool HasQuorum => HasQuorumOf(_participants, Survivors.ToList());

    /// <summary>Why this peer must stop (the others count it as lost, or it is on the minority side), or null while it may go on.</summary>
    public string? Problem()
    {
        if (SelfExcluded)
            return $"the other peers count this peer (node {Self}) as lost (unreachable, or silent past distsgd.step-timeout) " +
                   "and go on without it; it stops here";
        if (!HasQuorum)
            return $"this peer reaches only {Survivors.Count()} of the run's {Participants.Count} peers " +
                   $"(nodes {string.Join(", ", Survivors)}; lost {string.Join(", ", Lost)}): on the minority side " +
                   "of a partition it stops, so that only the majority trains on and writes the results";
        return null;
    }

    /// <summary>Survivors whose report for the current lost set has not arrived.</summary>
    public IEnumerable<int> MissingReports => Survivors.Where(s => !_reports.TryGetValue(s, out var r) || !SameSet(r.Lost, _lost));

    /// <summary>The latest report of <paramref name="nodeId"/>, whatever its lost set; null before any.</summary>
    public MembershipReport? ReportOf(int nodeId) => _reports.GetValueOrDefault(nodeId);

    /// <summary>True when this peer has not reported for its current lost set yet.</summary>
    public bool OwnReportDue => !_reportedFor.SetEquals(_lost);

    /// <summary>
    /// Whether this peer may report now: at once, except while its open step (<paramref name="openStep"/>, whose gather
    /// still waits for <paramref name="waitingFor"/>; null when it gathers nothing) waits for the share of a survivor
    /// that has sent it (for at most the report grace): one that has not reported yet, or reported this step open or a
    /// later one. A survivor that reported an earlier open step never sends one for this step before the agreement.
    /// </summary>
    public bool MayReport(bool graceOver, IReadOnlyCollection<int>? waitingFor, long openStep) =>
        graceOver || waitingFor is null || !Survivors.Any(s => waitingFor.Contains(s) && !(ReportOf(s)?.OpenStep < openStep));

    /// <summary>Records this peer's own report for the current lost set (offered like any other survivor's).</summary>
    public void Reported(MembershipReport own)
    {
        _reportedFor.Clear();
        _reportedFor.UnionWith(_lost);
        Offer(own);
    }

    /// <summary>Adds suspects; true when the lost set grew (this peer must report again).</summary>
    public bool Suspect(IEnumerable<int> nodeIds)
    {
        bool grew = false;
        foreach (int id in nodeIds)
            grew |= _participants.Contains(id) && _lost.Add(id);
        return grew;
    }

    /// <summary>Records a survivor's report (its latest wins) and adopts its lost set; true when this peer's lost set grew.</summary>
    public bool Offer(MembershipReport report)
    {
        if (!_participants.Contains(report.NodeId))
            return false;
        _reports[report.NodeId] = report;
        return Suspect(report.Lost);
    }

    /// <summary>The decision, once every survivor has reported for this peer's lost set; null before.</summary>
    public MembershipDecision? TryDecide()
    {
        if (_lost.Count == 0 || SelfExcluded || !HasQuorum || MissingReports.Any())
            return null;
        return Decide(_participants, Survivors.Select(s => _reports[s]).ToList());
    }

    /// <summary>
    /// The decision from every survivor's report: contested step c = the latest step any survivor applied (with local SGD,
    /// the latest averaging step: a peer's undo and report skip its local steps); each
    /// survivor holds, for c, the shares it applied (if it applied c) or those it gathered (if c is its open step);
    /// c uses the intersection. Pure: every survivor computes the same from the same reports.
    /// </summary>
    public static MembershipDecision Decide(IReadOnlyCollection<int> participantsBefore, IReadOnlyCollection<MembershipReport> reports)
    {
        if (reports.Count == 0)
            throw new ArgumentException("no reports", nameof(reports));
        var survivors = reports.Select(r => r.NodeId).Order().ToList();
        var lost = participantsBefore.Where(p => !survivors.Contains(p)).Order().ToList();
        long step = reports.Max(r => r.AppliedStep);
        IEnumerable<int>? senders = null;
        foreach (var report in reports.OrderBy(r => r.NodeId))
        {
            int[] held;
            if (report.AppliedStep == step)
                held = report.AppliedSenders;
            else if (report.OpenStep == step)
                held = report.HeldSenders;
            else
                return new MembershipDecision(survivors, lost, step, [], [], step + 2,
                    $"node {report.NodeId} applied step {report.AppliedStep} and has step {report.OpenStep} open, but another survivor applied step {step}: " +
                    "survivors more than one step apart cannot be reconciled");
            senders = senders is null ? held : senders.Intersect(held);
        }
        var agreed = senders!.Distinct().Order().ToList();
        var rolledBack = reports.Where(r => r.AppliedStep == step && !SameSet(r.AppliedSenders, agreed))
                                .Select(r => r.NodeId).Order().ToList();
        // With gradient averaging no survivor has a step past Step + 1 open. With local SGD the applied step is a round's
        // averaging step (a local step is a peer's own: nothing to agree on, StepUndo keeps the averaging step's undo through
        // the round), and a survivor may have run on into the next round's local steps: the survivors go on past them all.
        return new MembershipDecision(survivors, lost, step, agreed, rolledBack, Math.Max(step + 2, reports.Max(r => r.OpenStep) + 1));
    }

    /// <summary>Majority of <paramref name="before"/>, or exactly half that holds its lowest node id.</summary>
    public static bool HasQuorumOf(IReadOnlyCollection<int> before, IReadOnlyCollection<int> survivors) =>
        2 * survivors.Count > before.Count || (2 * survivors.Count == before.Count && survivors.Contains(before.Min()));

    private static bool SameSet(IEnumerable<int> a, IEnumerable<int> b) => new SortedSet<int>(a).SetEquals(b);
}
