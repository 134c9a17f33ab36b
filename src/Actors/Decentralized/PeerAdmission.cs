using Akka.Actor;

namespace DistSgd.Actors.Decentralized;

/// <summary>What a running peer makes of a <see cref="PeerReady"/> (<see cref="PeerAdmission.Request"/>).</summary>
public enum JoinVerdict
{
    /// <summary>A participant's own (a peer still at the start barrier, or one already admitted): acknowledged as before.</summary>
    Member,
    /// <summary>A late peer that joins at the end of the open epoch: the lead says so (<see cref="RunUnderWay"/>).</summary>
    Pending,
    /// <summary>Not yet an Up member of the cluster as this peer sees it: nothing yet (it publishes again).</summary>
    NotYet,
    /// <summary>A late peer that cannot join (<see cref="JoinAnswer.Refusal"/> says why).</summary>
    Refused,
}

/// <summary>A running peer's answer to a <see cref="PeerReady"/>.</summary>
public sealed record JoinAnswer(JoinVerdict Verdict, string? Refusal = null)
{
    public static readonly JoinAnswer Member = new(JoinVerdict.Member);
    public static readonly JoinAnswer Pending = new(JoinVerdict.Pending);
    public static readonly JoinAnswer NotYet = new(JoinVerdict.NotYet);
}

/// <summary>
/// Elastic decentralized runs (issue 20, decision 0097): the late peers a running peer has heard from, and which of them
/// the lead admits at an epoch's end. Every peer keeps the requests (so that a new lead knows them); only the lead's
/// choice counts, carried in its <see cref="ParameterHash"/> (<see cref="ParameterHash.Joiners"/>), so every participant
/// takes in the same peers with the same node ids at the same epoch boundary. Pure: the actor says what it sees.
/// </summary>
/// <remarks>
/// A node id is never used twice in a run: a late peer takes the next one after every id used so far (a peer coming back
/// after it was lost takes a new one too), so nothing an earlier incarnation sent can count for the new one. Ids stay
/// below <see cref="NodeIdLimit"/>, the senders a peer's data plane accepts; the participants at once stay at most
/// <see cref="MaxPeers"/> (distsgd.max-peers).
/// </remarks>
public sealed class PeerAdmission
{
    private readonly SortedDictionary<string, PeerReady> _pending = new(StringComparer.Ordinal);
    /// <summary>Pending late peers that every participant's publications reach (<see cref="JoinReady"/>).</summary>
    private readonly HashSet<string> _reached = new(StringComparer.Ordinal);

    /// <param name="plannedPeers">The peers the run started with (--workers).</param>
    /// <param name="maxPeers">distsgd.max-peers: participants at once; 0 = twice <paramref name="plannedPeers"/>.</param>
    public PeerAdmission(int plannedPeers, int maxPeers = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(plannedPeers);
        ArgumentOutOfRangeException.ThrowIfNegative(maxPeers);
        NodeIdLimit = NodeIdLimitFor(plannedPeers);
        MaxPeers = Math.Min(maxPeers > 0 ? Math.Max(maxPeers, plannedPeers) : 2 * plannedPeers, NodeIdLimit);
    }

    /// <summary>Node ids of a run of <paramref name="plannedPeers"/> peers are below this: the senders every peer's data plane accepts.</summary>
    public static int NodeIdLimitFor(int plannedPeers) => 4 * plannedPeers + 8;

    /// <summary>Node ids are below this (<see cref="NodeIdLimitFor"/>).</summary>
    public int NodeIdLimit { get; }

    /// <summary>The most participants the run takes at once (distsgd.max-peers; by default twice the planned peers).</summary>
    public int MaxPeers { get; }

    /// <summary>Late peers waiting for the epoch's end, by address.</summary>
    public IReadOnlyCollection<string> Pending => _pending.Keys;

    /// <summary>
    /// A <see cref="PeerReady"/> that reached a running peer. <paramref name="mismatch"/>: why its plan or transport differs
    /// (<see cref="StartBarrier.Mismatch"/>), or null; <paramref name="isUpMember"/>: its address is an Up member of the cluster
    /// and its actor lives there (control-plane identity; its data connections prove its key once it takes part, as any peer's);
    /// <paramref name="nodeIds"/>, <paramref name="peers"/>, <paramref name="participants"/>: the run as this peer holds it;
    /// <paramref name="nextNodeId"/>: the id the next late peer would take; <paramref name="ending"/>: the run is over or ends
    /// at this epoch's end.
    /// </summary>
    public JoinAnswer Request(PeerReady ready, string? mismatch, bool isUpMember, IReadOnlyDictionary<string, int> nodeIds,
                              IReadOnlyDictionary<int, IActorRef> peers, IReadOnlyCollection<int> participants, int nextNodeId, bool ending)
    {
        if (IsMember(ready, nodeIds, peers, participants))
            return JoinAnswer.Member;
        if (mismatch is not null)
            return Refuse(ready, mismatch);
        if (ending)
            return Refuse(ready, "the run is ending: it takes no more peers");
        if (!isUpMember)
            return JoinAnswer.NotYet;
        int others = _pending.Keys.Count(a => a != ready.NodeAddress);
        if (participants.Count + others + 1 > MaxPeers)
            return Refuse(ready, $"the run has {participants.Count} peers and {others} more joining, and takes at most {MaxPeers} " +
                                 "(distsgd.max-peers; by default twice --workers)");
        if (nextNodeId + others + 1 > NodeIdLimit)
            return Refuse(ready, $"the run has given out {nextNodeId} node ids, and a run started with the same flags gives out at most {NodeIdLimit}");
        _pending[ready.NodeAddress] = ready;
        return JoinAnswer.Pending;
    }

    /// <summary>Whether <paramref name="ready"/> is a participant's own (a peer at the start barrier, or one admitted): same address, same actor.</summary>
    public static bool IsMember(PeerReady ready, IReadOnlyDictionary<string, int> nodeIds, IReadOnlyDictionary<int, IActorRef> peers,
                                IReadOnlyCollection<int> participants) =>
        nodeIds.TryGetValue(ready.NodeAddress, out int id) && participants.Contains(id) && (!peers.TryGetValue(id, out var known) || known.Equals(ready.Peer));

    private JoinAnswer Refuse(PeerReady ready, string why)
    {
        Forget(ready.NodeAddress);
        return new JoinAnswer(JoinVerdict.Refused, why);
    }

    /// <summary>The member at <paramref name="address"/> left the cluster: a late peer there is no longer waited for.</summary>
    public void Forget(string address)
    {
        _pending.Remove(address);
        _reached.Remove(address);
    }

    /// <summary>
    /// The late peer at <paramref name="address"/> said every participant's publications reach it (<see cref="JoinReady"/>):
    /// it may be admitted. False when it is not pending (nothing changes).
    /// </summary>
    public bool Reaches(string address) => _pending.ContainsKey(address) && _reached.Add(address);

    /// <summary>
    /// The late peers the lead admits at the end of this epoch, in address order, with the node ids they take from
    /// <paramref name="nextNodeId"/> on: those every participant's publications reach (<see cref="Reaches"/>). A peer whose
    /// address a participant still holds (an earlier incarnation the others have not counted as lost yet) waits for a later
    /// epoch. Pure: the same requests give the same joins.
    /// </summary>
    public PeerJoin[] Admit(int nextNodeId, IReadOnlyDictionary<string, int> nodeIds, IReadOnlyCollection<int> participants)
    {
        var joins = new List<PeerJoin>();
        foreach (var (address, ready) in _pending)
        {
            if (!_reached.Contains(address) || (nodeIds.TryGetValue(address, out int held) && participants.Contains(held)))
                continue;
            if (participants.Count + joins.Count >= MaxPeers || nextNodeId + joins.Count >= NodeIdLimit)
                break;
            joins.Add(PeerJoin.Of(nextNodeId + joins.Count, ready));
        }
        return joins.ToArray();
    }

    /// <summary>Every late peer still waiting (the run ends: each hears it cannot join), no longer pending.</summary>
    public IReadOnlyList<PeerReady> TakePending()
    {
        var waiting = _pending.Values.ToList();
        _pending.Clear();
        _reached.Clear();
        return waiting;
    }

    /// <summary>These late peers take part now: no longer pending.</summary>
    public void Joined(IEnumerable<PeerJoin> joins)
    {
        foreach (var join in joins)
            Forget(join.NodeAddress);
    }

    /// <summary>
    /// Why a <see cref="JoinState"/> that reached the late peer at <paramref name="selfAddress"/> cannot be adopted (another run,
    /// not for this peer, a node id out of range or given twice), or null when it can.
    /// </summary>
    public static string? StateProblem(JoinState state, string runId, string selfAddress, int nodeIdLimit)
    {
        if (state.RunId != runId)
            return $"a join state of run {state.RunId}, this peer joins run {runId}";
        var self = state.Members.Where(m => m.NodeId == state.NodeId).ToList();
        if (self.Count != 1 || self[0].NodeAddress != selfAddress)
            return $"a join state for node {state.NodeId} that does not name this peer ({selfAddress}) as that node";
        if (state.Members.Any(m => m.NodeId < 0 || m.NodeId >= nodeIdLimit))
            return $"a join state with node ids {string.Join(", ", state.Members.Select(m => m.NodeId))}; this run's are 0 to {nodeIdLimit - 1}";
        if (state.Members.Select(m => m.NodeId).Distinct().Count() != state.Members.Length
            || state.Members.Select(m => m.NodeAddress).Distinct(StringComparer.Ordinal).Count() != state.Members.Length)
            return "a join state that names a node id or an address twice";
        return null;
    }
}
