namespace DistSgd.Actors.Decentralized;

/// <summary>
/// The epoch-end hash round as a plain class the <see cref="PeerActor"/> drives: it holds every participant's
/// <see cref="ParameterHash"/> by epoch (a faster peer's hash may arrive before this peer ends that epoch) and
/// completes a round once every participant's hash of the epoch is in.
/// </summary>
/// <remarks>
/// Complete, the round agrees on a source (<see cref="ReplicaCheck.ChooseSource"/>): every replica whose hash differs
/// from the source's copies it (<see cref="ReplicaResync"/>), and every peer stops or goes on by the source's vote,
/// so all peers stop at the same epoch.
/// </remarks>
public sealed class HashRound
{
    private readonly Dictionary<int, SortedDictionary<int, ParameterHash>> _hashes = new();

    /// <summary>A complete round: the participants' hashes, the agreed source and its vote.</summary>
    /// <param name="Hashes">Every participant's hash, by node id.</param>
    /// <param name="Source">The node whose replica every differing one copies (<see cref="ReplicaCheck.ChooseSource"/>).</param>
    /// <param name="VotesToStop">The source's stop vote: the run ends after this epoch on every peer, or on none.</param>
    public sealed record Agreed(IReadOnlyDictionary<int, byte[]> Hashes, int Source, bool VotesToStop)
    {
        /// <summary>True when every hash equals the source's: nothing to repair.</summary>
        public bool AllEqual => Hashes.Values.All(Matches);

        /// <summary>Whether <paramref name="hash"/> is the source's.</summary>
        public bool Matches(byte[] hash) => hash.AsSpan().SequenceEqual(Hashes[Source]);

        /// <summary>
        /// The late peers the lead (the lowest node id of the round) admits at this epoch's end (<see cref="ParameterHash.Joiners"/>):
        /// taken in by every participant that goes on, the same everywhere.
        /// </summary>
        public PeerJoin[] Joiners { get; init; } = [];

        /// <summary>The error a mismatch is reported with.</summary>
        public string Describe(int epoch) =>
            $"REPLICA MISMATCH after epoch {epoch}: parameter hashes " +
            string.Join(", ", Hashes.Select(h => $"node {h.Key} {ReplicaCheck.Short(h.Value)}")) +
            $"; re-synchronising every differing replica from node {Source}";
    }

    /// <summary>What became of an arriving hash (<see cref="Admit"/>).</summary>
    public enum Arrival
    {
        /// <summary>Held for its epoch's round.</summary>
        Held,
        /// <summary>This peer's own, handed back by the topic after its round was over: nothing to judge, let alone a drop.</summary>
        OwnEcho,
        /// <summary>Of another run or of an epoch already over: dropped (and counted).</summary>
        Dropped,
    }

    /// <summary>Holds <paramref name="hash"/> when it is of this run and of <paramref name="epoch"/> (this peer's) or later.</summary>
    public Arrival Admit(ParameterHash hash, string runId, int self, int epoch)
    {
        // The topic hands a peer its own publication too, maybe after it has completed that round without it (its own
        // hash is always counted).
        if (hash.RunId == runId && hash.NodeId == self && hash.Epoch < epoch)
            return Arrival.OwnEcho;
        if (hash.RunId != runId || hash.Epoch < epoch)
            return Arrival.Dropped;
        Offer(hash);
        return Arrival.Held;
    }

    /// <summary>Holds a participant's hash; the latest wins (a peer that redid its epoch end publishes again).</summary>
    public void Offer(ParameterHash hash)
    {
        if (!_hashes.TryGetValue(hash.Epoch, out var round))
            _hashes[hash.Epoch] = round = new SortedDictionary<int, ParameterHash>();
        round[hash.NodeId] = hash;
    }

    /// <summary>Whether <paramref name="nodeId"/>'s hash of <paramref name="epoch"/> is in.</summary>
    public bool Holds(int epoch, int nodeId) => _hashes.GetValueOrDefault(epoch)?.ContainsKey(nodeId) == true;

    /// <summary>
    /// Drops every hash <paramref name="nodeId"/> published so far: it reported a peer loss, and the agreement may redo
    /// its epoch end; it publishes its latest hash again once it has decided.
    /// </summary>
    public void Withdraw(int nodeId)
    {
        foreach (var round in _hashes.Values)
            round.Remove(nodeId);
    }

    /// <summary>
    /// Completes the round of <paramref name="own"/>'s epoch when every participant's hash is in (this peer's is
    /// <paramref name="own"/>), forgetting every round up to that epoch; else returns null and lists who is missing.
    /// </summary>
    public Agreed? TryComplete(ParameterHash own, IReadOnlyCollection<int> participants, out IReadOnlyList<int> missing)
    {
        var round = _hashes.GetValueOrDefault(own.Epoch) ?? new SortedDictionary<int, ParameterHash>();
        round[own.NodeId] = own;
        missing = participants.Where(p => !round.ContainsKey(p)).ToList();
        if (missing.Count > 0)
            return null;
        var hashes = round.Where(h => participants.Contains(h.Key)).ToDictionary(h => h.Key, h => h.Value);
        foreach (int epoch in _hashes.Keys.Where(e => e <= own.Epoch).ToList())
            _hashes.Remove(epoch);
        return Decide(hashes);
    }

    /// <summary>
    /// The source and its vote, and the lead's joiners, from every participant's hash. Pure: every peer decides the same
    /// from the same hashes.
    /// </summary>
    public static Agreed Decide(IReadOnlyDictionary<int, ParameterHash> hashes)
    {
        var bytes = hashes.ToDictionary(h => h.Key, h => h.Value.Hash);
        int source = ReplicaCheck.ChooseSource(bytes);
        return new Agreed(bytes, source, hashes[source].VotesToStop) { Joiners = hashes[hashes.Keys.Min()].Joiners };
    }
}
