using Akka.Actor;

namespace DistSgd.Actors.Centralized;

/// <summary>
/// The master's view of its workers, in one place: who registered (and its worker index once it has one), who
/// takes part in this epoch and on which shard, who joined under way (from the next epoch), who accepted the run,
/// where each one's data endpoint is, and who was evicted (its data connection failed) and may be invited back. A
/// plain class: every rule is testable without an ActorSystem; the master does the messaging.
/// </summary>
/// <remarks>
/// Worker indices are fixed for the run (a worker keeps its index when the singleton moves); shards are not: each
/// epoch's shards are the ranks of that epoch's participants in index order. Workers lost as unreachable (to be
/// invited back when reachable) are the <see cref="Membership.ParticipantTracker{TId}"/>'s.
/// </remarks>
public sealed class WorkerRoster
{
    /// <summary>The index of a worker registered before the run's indices were given out.</summary>
    public const int NoIndex = -1;

    private readonly Dictionary<IActorRef, int> _registered = new();
    private readonly SortedDictionary<int, IActorRef> _participants = new();
    /// <summary>The participants' indices in order, kept for the steps (a sorted dictionary's enumerator allocates); rebuilt when stale.</summary>
    private readonly List<int> _participantIndices = new();
    private bool _participantIndicesStale;
    private readonly SortedDictionary<int, IActorRef> _joining = new();
    private readonly Dictionary<int, int> _shards = new();
    private readonly HashSet<int> _accepted = new();
    private readonly Dictionary<int, string> _endpoints = new();
    private readonly Dictionary<IActorRef, Address> _evicted = new();

    /// <summary>Every registered worker (a run's end is told to each).</summary>
    public IReadOnlyCollection<IActorRef> Registered => _registered.Keys;

    /// <summary>This epoch's participants by worker index, in index order (the order of the average's sum).</summary>
    public IReadOnlyDictionary<int, IActorRef> Participants => _participants;

    /// <summary>
    /// The keys of <see cref="Participants"/> in index order, as a list the master's step loops over by index without
    /// allocating (valid until the participants change).
    /// </summary>
    public IReadOnlyList<int> ParticipantIndices
    {
        get
        {
            if (_participantIndicesStale)
            {
                _participantIndices.Clear();
                foreach (int index in _participants.Keys)
                    _participantIndices.Add(index);
                _participantIndicesStale = false;
            }
            return _participantIndices;
        }
    }

    /// <summary>Workers that joined while the run is under way: they take part from the next epoch.</summary>
    public IReadOnlyDictionary<int, IActorRef> Joining => _joining;

    /// <summary>Participants that accepted the run (the first step waits for all of them).</summary>
    public int AcceptedCount => _accepted.Count;

    /// <summary>True when every participant accepted the run.</summary>
    public bool AllAccepted => _accepted.Count >= _participants.Count;

    /// <summary>Shards this epoch's training set is cut into (its participants); 0 before the first epoch is cut.</summary>
    public int ShardCount { get; private set; }

    public bool IsRegistered(IActorRef worker) => _registered.ContainsKey(worker);

    /// <summary>The worker's index, or <see cref="NoIndex"/>; null when it is not registered.</summary>
    public int? IndexOf(IActorRef worker) => _registered.TryGetValue(worker, out int index) ? index : null;

    /// <summary>The participant's shard in this epoch.</summary>
    public int ShardOf(int index) => _shards[index];

    /// <summary>The data endpoint the worker gave when it accepted, if any.</summary>
    public bool TryEndpoint(int index, out string endpoint) => _endpoints.TryGetValue(index, out endpoint!);

    /// <summary>Registered workers on the member at <paramref name="address"/>.</summary>
    public IReadOnlyList<IActorRef> At(Address address) => _registered.Keys.Where(w => w.Path.Address.Equals(address)).ToList();

    /// <summary>Registers <paramref name="worker"/> (with an index, or none yet); false when it was registered already.</summary>
    public bool Register(IActorRef worker, int index = NoIndex) => _registered.TryAdd(worker, index);

    /// <summary>
    /// Gives the registered workers their indices by address (the same cluster gives the same shards, whatever the
    /// registration order) and makes them all participants. Returns them in index order.
    /// </summary>
    public IReadOnlyList<(int Index, IActorRef Worker)> NumberByAddress()
    {
        var ordered = _registered.Keys.OrderBy(w => w.Path.Address.ToString(), StringComparer.Ordinal)
                                      .ThenBy(w => w.Path.ToString(), StringComparer.Ordinal).ToList();
        for (int index = 0; index < ordered.Count; index++)
        {
            _registered[ordered[index]] = index;
            _participants[index] = ordered[index];
        }
        _participantIndicesStale = true;
        return ordered.Select((worker, index) => (index, worker)).ToList();
    }

    /// <summary>
    /// An index for a worker registering while the run is under way: the one it held in this run if free, else the
    /// lowest free one below <paramref name="maxWorkers"/>; null when all are taken.
    /// </summary>
    public int? FreeIndex(int? held, int maxWorkers)
    {
        var used = _registered.Values.ToHashSet();
        if (held is { } h && h >= 0 && h < maxWorkers && !used.Contains(h))
            return h;
        int free = Enumerable.Range(0, maxWorkers).FirstOrDefault(i => !used.Contains(i), -1);
        return free < 0 ? null : free;
    }

    /// <summary>A participant accepted the run, with its data endpoint when payloads go over the data plane.</summary>
    public void Accept(int index, string? endpoint)
    {
        if (endpoint is not null)
            _endpoints[index] = endpoint;
        _accepted.Add(index);
    }

    /// <summary>
    /// A registered worker accepted the run under way: it takes part from the next epoch. False when it is not
    /// registered under that index or takes part already.
    /// </summary>
    public bool JoinUnderWay(IActorRef worker, int index, string? endpoint)
    {
        if (IndexOf(worker) != index || _participants.ContainsKey(index))
            return false;
        if (endpoint is not null)
            _endpoints[index] = endpoint;
        _joining[index] = worker;
        return true;
    }

    /// <summary>
    /// Takes over the workers of a run under way (the singleton moved): those computing in the recovered epoch on
    /// <paramref name="shardCount"/> shards keep their shards; the others take part from the next epoch. When none is
    /// in that epoch, nobody can finish its shards: every worker takes part, and false says the epoch starts over.
    /// </summary>
    public bool Recover(IEnumerable<(IActorRef Worker, WorkerPosition Position)> positions, int epoch, int shardCount)
    {
        ShardCount = shardCount;
        _participantIndicesStale = true;
        foreach (var (worker, position) in positions)
        {
            _registered[worker] = position.WorkerIndex;
            if (position.Epoch == epoch && position.ShardCount == shardCount && position.ShardIndex >= 0)
            {
                _participants[position.WorkerIndex] = worker;
                _shards[position.WorkerIndex] = position.ShardIndex;
            }
            else
            {
                _joining[position.WorkerIndex] = worker;
            }
        }
        if (_participants.Count > 0)
        {
            // Joins of the workers that are not in this epoch are handled while stepping, like any replacement.
            _accepted.ExceptWith(_joining.Keys);
            return true;
        }
        foreach (var (index, worker) in _joining)
            _participants[index] = worker;
        _joining.Clear();
        ShardCount = 0;
        return false;
    }

    /// <summary>
    /// A new epoch: the workers that joined meanwhile take part, and the shards are the participants' ranks in index
    /// order, turned by <paramref name="rotation"/> (shard = (rank + rotation) mod count; 0 = the rank itself). True when
    /// the shard count changed from a previous epoch's (the steps per epoch change with it).
    /// </summary>
    /// <param name="rotation">With backup workers, the epoch: a worker that is always late would otherwise leave the same
    /// shard unused in every epoch (docs/decisions/0094).</param>
    public bool StartEpoch(int rotation = 0)
    {
        foreach (var (index, worker) in _joining)
            _participants[index] = worker;
        _joining.Clear();
        _participantIndicesStale = true;
        bool changed = ShardCount != 0 && ShardCount != _participants.Count;
        _shards.Clear();
        int rank = 0;
        foreach (int index in _participants.Keys)
            _shards[index] = (int)((rank++ + (long)rotation) % _participants.Count);
        ShardCount = _participants.Count;
        return changed;
    }

    /// <summary>
    /// Forgets a worker (lost, stopped, refused). Returns its index (<see cref="NoIndex"/> when it had none yet), or
    /// null when it was not registered.
    /// </summary>
    public int? Forget(IActorRef worker)
    {
        _evicted.Remove(worker);
        if (!_registered.Remove(worker, out int index))
            return null;
        if (index != NoIndex)
            RemoveIndex(index);
        return index;
    }

    /// <summary>
    /// Takes a participant or joining worker out of the run at once, before the failure detector says anything (its
    /// data connection failed): remembered as evicted, to be invited back if its member turns out to be alive.
    /// Returns the worker, or null when no such worker takes part.
    /// </summary>
    public IActorRef? Evict(int index)
    {
        if (!_participants.TryGetValue(index, out var worker) && !_joining.TryGetValue(index, out worker))
            return null;
        _registered.Remove(worker);
        RemoveIndex(index);
        _evicted[worker] = worker.Path.Address;
        return worker;
    }

    /// <summary>The evicted workers still remembered (their members may be alive).</summary>
    public IReadOnlyCollection<IActorRef> Evicted => _evicted.Keys;

    /// <summary>The member address of an evicted worker still remembered, or null.</summary>
    public Address? EvictedAt(IActorRef worker) => _evicted.GetValueOrDefault(worker);

    /// <summary>Stops remembering an evicted worker (invited back, or its member is gone).</summary>
    public void ForgetEvicted(IActorRef worker) => _evicted.Remove(worker);

    /// <summary>The member at <paramref name="address"/> was removed: its evicted workers will not come back.</summary>
    public void ForgetEvictedAt(Address address)
    {
        foreach (var worker in _evicted.Where(e => e.Value.Equals(address)).Select(e => e.Key).ToList())
            _evicted.Remove(worker);
    }

    /// <summary>The run is over: nobody is waited for, told or invited any more.</summary>
    public void Clear()
    {
        _registered.Clear();
        _participants.Clear();
        _participantIndicesStale = true;
        _joining.Clear();
        _accepted.Clear();
        _evicted.Clear();
    }

    private void RemoveIndex(int index)
    {
        _joining.Remove(index);
        _participantIndicesStale |= _participants.Remove(index);
        _accepted.Remove(index);
    }
}
