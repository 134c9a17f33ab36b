using DistSgd.Actors.Protocol;
using DistSgd.Actors.Transport;
using DistSgd.Numerics.Compression;
using DistSgd.Numerics.Training;

namespace DistSgd.Actors.Collectives;

/// <summary>
/// What the all-reduces share: the open step and its participants by rank, the parts held for later steps or until this
/// peer's share is sent, the metadata heard, the average, and sending a part. The schedules (<see cref="Pairwise"/>,
/// <see cref="Ring"/>) say what is sent first and what each part means; the arithmetic is
/// <see cref="Numerics.Training.AllReduce"/>'s.
/// </summary>
/// <remarks>
/// Nothing is allocated per step once the participants are known: the per-rank tables are made again only when the
/// participants change, parts are read by the data plane into arrays it reuses (<see cref="Release"/> gives each back as
/// soon as its values are summed or copied), and the held parts live in lists that keep their capacity.
/// </remarks>
public abstract class AllReduceBase : IAllReduce
{
    private readonly List<CollectivePart> _held = new();
    private readonly List<CollectivePart> _pending = new();
    private readonly int _window;
    private string[] _endpoints = [];
    private int[] _ranks = [];
    private long _sentBytes;

    /// <param name="direct">The data plane the parts travel on (the owner disposes it).</param>
    /// <param name="window">How many steps ahead parts are held (a synchronous peer is at most one ahead unless a step timed out).</param>
    protected AllReduceBase(DirectDataPlane direct, string runId, int parameterCount, int window, Action<long, int, string> unreachable)
    {
        Direct = direct;
        Parts = direct.EncodingOf(FrameKind.CollectivePart);
        RunId = runId;
        AverageValues = new float[parameterCount];
        _window = window;
        Unreachable = unreachable;
    }

    public abstract Collective Kind { get; }

    public Action<CollectivePart>? Noticed { get; set; }

    public long FirstStep { get; set; }

    protected DirectDataPlane Direct { get; }

    /// <summary>
    /// How the parts travel: float32, or the run's 16-bit precision (decision 0090). Whatever a peer sends and also keeps
    /// (an averaged slice or chunk) it rounds in place first (<see cref="ShareEncoding.Round"/>), so that it holds the
    /// bits every receiver decodes; partial sums are rounded before each hop for the same reason.
    /// </summary>
    protected ShareEncoding Parts { get; }

    protected string RunId { get; }

    /// <summary>This peer's node id (<see cref="Connect"/>, when the start barrier numbered the peers).</summary>
    protected int Self { get; private set; } = -1;

    /// <summary>Called with (step, node, endpoint) when a send to a peer failed.</summary>
    protected Action<long, int, string> Unreachable { get; }

    /// <summary>The open step; −1 before the first.</summary>
    protected long Step { get; private set; } = -1;

    /// <summary>Participants of the open step.</summary>
    protected int Count => _ranks.Length;

    /// <summary>This peer's rank among them (its place in the sorted node ids).</summary>
    protected int Rank { get; private set; }

    /// <summary>True once this peer's share of the open step is sent: the parts of others can be combined with it.</summary>
    protected bool Sent { get; private set; }

    /// <summary>This peer's gradient of the open step (empty with weight 0) and its sample count.</summary>
    protected ReadOnlyMemory<float> Own { get; private set; }

    protected int OwnWeight { get; private set; }

    /// <summary>Each rank's sample count of the open step; −1 until heard.</summary>
    protected int[] Weights { get; private set; } = [];

    protected float[] AverageValues { get; }

    public ReadOnlySpan<float> Average => AverageValues;

    public long Samples { get; private set; }

    public abstract bool IsComplete { get; }

    public void Connect(int self, IReadOnlyDictionary<int, string> endpoints)
    {
        Self = self;
        _endpoints = new string[endpoints.Count == 0 ? 0 : endpoints.Keys.Max() + 1];
        foreach (var (node, endpoint) in endpoints)
            _endpoints[node] = endpoint;
    }

    /// <summary>The node id of rank <paramref name="rank"/>.</summary>
    protected int NodeOf(int rank) => _ranks[rank];

    /// <summary>The rank of node <paramref name="node"/>, or −1 when it is not a participant of the open step.</summary>
    protected int RankOf(int node)
    {
        for (int i = 0; i < _ranks.Length; i++)
            if (_ranks[i] == node)
                return i;
        return -1;
    }

    public void Begin(long step, IReadOnlyCollection<int> participants)
    {
        Step = step;
        Sent = false;
        Own = default;
        OwnWeight = 0;
        Samples = 0;
        if (!SameParticipants(participants))
        {
            _ranks = participants.Order().ToArray();
            Weights = new int[_ranks.Length];
            Resize(_ranks.Length);
        }
        Rank = RankOf(Self);
        Array.Fill(Weights, -1);
        Open();
        foreach (var part in _pending)
            Release(part.Values);
        _pending.Clear();
        int due = 0;
        for (; due < _held.Count && _held[due].Step <= step; due++)
        {
            if (_held[due].Step == step)
                _pending.Add(_held[due]);
            else
                Release(_held[due].Values);
        }
        _held.RemoveRange(0, due);
    }

    public long Send(IGradientContribution share, int epoch, int stepInEpoch, IReadOnlyCollection<int> participants, Action<int, string> unreachable)
    {
        _sentBytes = 0;
        Own = share.Gradient;
        OwnWeight = share.SampleCount;
        Weights[Rank] = share.SampleCount;
        Sent = true;
        SendOwn(share);
        foreach (var part in _pending)
            if (Process(part) != PartOutcome.Accepted)
                Release(part.Values);
        _pending.Clear();
        return _sentBytes;
    }

    public PartOutcome Take(CollectivePart part, bool stepping, ref long bytesSent)
    {
        if (part.RunId != RunId)
            return Drop(part, PartOutcome.ForeignRun);
        if (part.Step < Step || (part.Step == Step && IsComplete))
            return Drop(part, PartOutcome.Stale);
        if (part.Step > Step)
        {
            if (part.Step > Math.Max(Step, FirstStep - 1) + _window || _held.Count >= HoldLimit)
                return Drop(part, PartOutcome.Future);
            int at = _held.Count;
            while (at > 0 && _held[at - 1].Step > part.Step)
                at--;
            _held.Insert(at, part);
            return PartOutcome.Held;
        }
        if (!stepping)
            return Drop(part, PartOutcome.Interrupted);
        if (!Sent)
        {
            if (_pending.Count >= HoldLimit / _window)
                return Drop(part, PartOutcome.Future);
            _pending.Add(part);
            return PartOutcome.Held;
        }
        _sentBytes = 0;
        var outcome = Process(part);
        bytesSent += _sentBytes;
        return outcome == PartOutcome.Accepted ? outcome : Drop(part, outcome);
    }

    public abstract void AddMissing(ISet<int> missing);

    /// <summary>Parts held at most (for later steps, or until this peer's share is sent): a flood cannot grow them without bound.</summary>
    private int HoldLimit => _window * 4 * Math.Max(8, _ranks.Length) * PartsPerPeer;

    /// <summary>How many parts of one step may come from one peer.</summary>
    protected abstract int PartsPerPeer { get; }

    /// <summary>The participants changed: per-rank tables for <paramref name="count"/> ranks.</summary>
    protected abstract void Resize(int count);

    /// <summary>A new step opens: clears what the schedule tracks of the last one.</summary>
    protected abstract void Open();

    /// <summary>Sends what this peer sends first, and combines what it can already.</summary>
    protected abstract void SendOwn(IGradientContribution share);

    /// <summary>A part of the open step, this peer's share sent: its values are taken (and given back) or it is judged wrong.</summary>
    protected abstract PartOutcome Process(CollectivePart part);

    /// <summary>The metadata a part carries, heard for the first time this step: recorded and handed to the step's gather.</summary>
    protected void Hear(CollectivePart part)
    {
        int rank = RankOf(part.Origin);
        if (rank < 0 || Weights[rank] >= 0)
            return;
        Weights[rank] = Math.Max(0, part.SampleCount);
        Noticed?.Invoke(part);
    }

    /// <summary>Σ wᵢ of the open step once every rank's sample count is known (−1 before); also kept as <see cref="Samples"/>.</summary>
    protected long Total()
    {
        long total = 0;
        foreach (int weight in Weights)
        {
            if (weight < 0)
                return -1;
            total += weight;
        }
        Samples = total;
        return total;
    }

    /// <summary>Test hook: at this step, after the first part of the all-gather half is sent, nothing more is sent and <see cref="Crash"/> is called.</summary>
    internal long CrashAt { get; set; } = -1;

    /// <summary>Test hook: stops the node (see <see cref="CrashAt"/>).</summary>
    internal Action? Crash { get; set; }

    /// <summary>True for the rounds (or hops) of the all-gather half, which pass on averaged values.</summary>
    protected abstract bool Gathers(int round);

    /// <summary>Sends one part to the peer of <paramref name="rank"/>; a failed send is reported and the part is not counted.</summary>
    protected void SendTo(int rank, int round, int offset, int origin, int sampleCount, double lossSum, double computeSeconds, ReadOnlySpan<float> values)
    {
        if (CrashAt == long.MaxValue)
            return;   // crashed (test hook)
        int node = NodeOf(rank);
        string endpoint = node < _endpoints.Length ? _endpoints[node] ?? "" : "";
        var header = CollectivePart.Header(Step, Self, round, offset, origin, sampleCount, lossSum, computeSeconds);
        if (endpoint.Length > 0 && Direct.Send(endpoint, header, values))
            _sentBytes += Direct.LastFrameBytes;
        else
            Unreachable(Step, node, endpoint);
        if (Step == CrashAt && Gathers(round))
        {
            CrashAt = long.MaxValue;
            Crash?.Invoke();
        }
    }

    /// <summary>Gives a part's array back to the data plane (its values are summed or copied).</summary>
    protected void Release(float[] values) => Direct.Return(values);

    private PartOutcome Drop(CollectivePart part, PartOutcome outcome)
    {
        Release(part.Values);
        return outcome;
    }

    private bool SameParticipants(IReadOnlyCollection<int> participants)
    {
        if (participants.Count != _ranks.Length)
            return false;
        foreach (int rank in _ranks)
            if (!participants.Contains(rank))
                return false;
        return true;
    }

    /// <summary>The data plane is the owner's (<c>ShareExchange</c>), which disposes it.</summary>
    public void Dispose()
    {
    }
}
