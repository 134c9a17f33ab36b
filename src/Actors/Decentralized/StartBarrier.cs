using Akka.Actor;
using DistSgd.Actors.Protocol;
using DistSgd.Actors.Transport;

namespace DistSgd.Actors.Decentralized;

/// <summary>
/// The peers' start barrier as a plain class the joining <see cref="PeerActor"/> drives: whose <see cref="PeerReady"/>
/// reached this peer (their publications reach it) and who acknowledged this peer's (its publications reach them).
/// It passes when every expected peer has done both, and then numbers the peers.
/// </summary>
/// <remarks>Node ids are the peers' ranks by address (ordinal): every peer computes the same ids, and a node's id is its shard.</remarks>
public sealed class StartBarrier
{
    private readonly SortedSet<string> _readyFrom = new(StringComparer.Ordinal);
    private readonly HashSet<string> _ackedBy = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (string Endpoint, byte[]? Key, IActorRef? Peer)> _endpoints = new(StringComparer.Ordinal);

    /// <param name="runId">The run the peers announce.</param>
    /// <param name="selfAddress">This peer's cluster address.</param>
    /// <param name="peerCount">Peers the barrier waits for, this one included.</param>
    public StartBarrier(string runId, string selfAddress, int peerCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(peerCount);
        RunId = runId;
        SelfAddress = selfAddress;
        PeerCount = peerCount;
    }

    public string RunId { get; }

    public string SelfAddress { get; }

    public int PeerCount { get; }

    /// <summary>Peers whose <see cref="PeerReady"/> arrived.</summary>
    public int Seen => _readyFrom.Count;

    /// <summary>
    /// The barrier once passed: every peer's node id by address, every node's data endpoint ("" on the Akka transport)
    /// and data-plane key (absent on the Akka transport), or why the run cannot start (more peers announced the run than
    /// expected).
    /// </summary>
    public sealed record Passed(IReadOnlyDictionary<string, int> NodeIds, IReadOnlyDictionary<int, string> Endpoints, string? Problem = null)
    {
        /// <summary>Every node's data-plane key, by node id (<see cref="PeerReady.DataKey"/>).</summary>
        public IReadOnlyDictionary<int, byte[]> Keys { get; init; } = new Dictionary<int, byte[]>();

        /// <summary>Every node's peer actor, by node id (<see cref="PeerReady.Peer"/>): the sender its shares must have on the Akka transport.</summary>
        public IReadOnlyDictionary<int, IActorRef> Peers { get; init; } = new Dictionary<int, IActorRef>();

        public int NodeIdOf(string address) => NodeIds[address];
    }

    /// <summary>Records a <see cref="PeerReady"/> (its endpoint, key and actor, the latest wins); true when this peer is newly seen.</summary>
    public bool Ready(string address, string dataEndpoint, byte[]? dataKey = null, IActorRef? peer = null)
    {
        _endpoints[address] = (dataEndpoint, dataKey, peer);
        return _readyFrom.Add(address);
    }

    /// <summary>Records a <see cref="PeerReadyAck"/>; true when it is the first from that peer.</summary>
    public bool Acknowledged(string address) => _ackedBy.Add(address);

    /// <summary>A member that left before the barrier passed: neither its readiness nor its acknowledgement counts.</summary>
    public void Forget(string address)
    {
        _readyFrom.Remove(address);
        _ackedBy.Remove(address);
    }

    /// <summary>
    /// The node ids once every expected peer (this one included) is ready and has acknowledged this one; null before.
    /// </summary>
    public Passed? TryPass()
    {
        if (_readyFrom.Count < PeerCount || !_readyFrom.Contains(SelfAddress) || !_ackedBy.IsSupersetOf(_readyFrom))
            return null;
        if (_readyFrom.Count > PeerCount)
            return new Passed(new Dictionary<string, int>(), new Dictionary<int, string>(),
                              $"{_readyFrom.Count} peers announced run {RunId}, {PeerCount} expected: {string.Join(", ", _readyFrom)}");
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        var endpoints = new SortedDictionary<int, string>();
        var keys = new Dictionary<int, byte[]>();
        var peers = new Dictionary<int, IActorRef>();
        foreach (string address in _readyFrom)
        {
            int id = ids[address] = ids.Count;
            var (endpoint, key, peer) = _endpoints[address];
            endpoints[id] = endpoint;
            if (key is not null)
                keys[id] = key;
            if (peer is not null)
                peers[id] = peer;
        }
        return new Passed(ids, endpoints) { Keys = keys, Peers = peers };
    }

    /// <summary>
    /// Why a peer that announced this run cannot train with this one (another run configuration, another transport),
    /// or null when it can. <paramref name="direct"/>: whether this peer uses the data plane.
    /// </summary>
    public static string? Mismatch(RunPlan plan, bool direct, PeerReady message)
    {
        if (message.Plan != plan)
            return $"the peer at {message.NodeAddress} runs a different run configuration: " +
                   string.Join("; ", plan.Differences(message.Plan, "here", $"at {message.NodeAddress}"));
        if (direct == (message.DataEndpoint.Length == 0))
            return $"the peer at {message.NodeAddress} uses the {(message.DataEndpoint.Length == 0 ? "akka" : "direct")} transport, this peer " +
                   $"the {(direct ? "direct" : "akka")} one (distsgd.transport must be the same on every peer)";
        if (direct && !DataPlaneHandshake.IsKey(message.DataKey))
            return $"the peer at {message.NodeAddress} advertised its data endpoint without a {DataPlaneHandshake.KeySize}-byte data-plane key " +
                   "(every peer must run this version of DistSgd)";
        return null;
    }

    /// <summary>Why the barrier has not passed, for the failure at distsgd.start-timeout.</summary>
    public string TimeoutProblem(TimeSpan startTimeout)
    {
        var missingReady = _readyFrom.Count < PeerCount ? $"PeerReady from {_readyFrom.Count} of {PeerCount} peers" : null;
        var unacked = _readyFrom.Where(a => !_ackedBy.Contains(a)).ToList();
        return $"the start barrier did not pass within {startTimeout.TotalSeconds:0}s (distsgd.start-timeout): " +
               (missingReady ?? $"all {PeerCount} peers ready") +
               (unacked.Count > 0 ? $"; no acknowledgement from {string.Join(", ", unacked)}" : "");
    }
}
