using DistSgd.Actors.Protocol;
using DistSgd.Numerics.Training;

namespace DistSgd.Actors.Steps;

/// <summary>
/// --balance speed: measures each compute node's throughput (samples per compute second) over an epoch and, at the next
/// epoch's start, plans per-node batches that follow it (<see cref="SpeedBalance.Plan"/>), the global batch kept. A plain
/// class: the centralized master records the gradients it used (<see cref="Record"/>) and asks for each worker's
/// assignment; every decentralized peer records the same applied shares (<see cref="RecordStep"/>: held until the step
/// can no longer be taken back) and so plans the same batches, with no message of its own (decision 0123).
/// </summary>
/// <remarks>
/// The first epoch, and any epoch whose plan gives every worker the run's batch, is cut the ordinary way (shard =
/// rank, the run's batch), so a run whose workers are equally fast is the run without balancing. The plan in effect
/// and the timings so far go into each checkpoint (<see cref="State"/>); a resumed master takes them back
/// (<see cref="BatchBalancer(int, BalanceState?)"/>) and so plans the next epoch from the same timings as the
/// uninterrupted run.
/// </remarks>
public sealed class BatchBalancer
{
    private readonly int _batchPerWorker;
    private readonly SortedDictionary<int, (long Samples, double Seconds)> _timings = new();
    private IReadOnlyList<WorkerBatch> _plan = [];
    private IReadOnlyDictionary<int, int> _firstUnits = new Dictionary<int, int>();
    private Dictionary<int, int> _batchOf = new();
    private BalanceState? _resumed;
    /// <summary>The latest step recorded by <see cref="RecordStep"/> (−1: none held) and its contributions, not yet counted.</summary>
    private long _heldStep = -1;
    private readonly List<(int Node, int Samples, double Seconds)> _held = [];

    /// <param name="batchPerWorker">The run's batch per worker: the global batch is this × the epoch's participants.</param>
    /// <param name="resumed">The balance of the checkpoint the run resumes from, taken at the first epoch start; or null.</param>
    public BatchBalancer(int batchPerWorker, BalanceState? resumed = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchPerWorker, 1);
        _batchPerWorker = batchPerWorker;
        _resumed = resumed;
    }

    /// <summary>
    /// Takes <paramref name="state"/> as a resumed checkpoint's, at the next <see cref="StartEpoch"/> (a late peer adopting
    /// the lead's replica: its plan for the epoch being started, its timings); what this balancer held is dropped.
    /// </summary>
    public void Resume(BalanceState state)
    {
        _resumed = state;
        _timings.Clear();
        _held.Clear();
        _heldStep = -1;
        Use([]);
    }

    /// <summary>True when the open epoch's batches follow the workers' speeds (else: shard = rank, the run's batch).</summary>
    public bool IsBalanced => _plan.Count > 0;

    /// <summary>The open epoch's plan (empty when not balanced).</summary>
    public IReadOnlyList<WorkerBatch> Plan => _plan;

    /// <summary>The units the training set is cut into in a balanced epoch: the global batch.</summary>
    public int UnitCount { get; private set; }

    /// <summary>Adds the step's used gradients to their workers' timings (an empty share, 0 samples, measures nothing).</summary>
    public void Record(IReadOnlyList<IGradientContribution> used)
    {
        for (int i = 0; i < used.Count; i++)
            Add(_timings, used[i].Participant, used[i].SampleCount, used[i].ComputeSeconds);
    }

    /// <summary>Adds a gradient's samples and compute seconds to <paramref name="node"/>'s timing; an empty one (0 samples) measures nothing.</summary>
    private static void Add(SortedDictionary<int, (long Samples, double Seconds)> timings, int node, int samples, double seconds)
    {
        if (samples <= 0)
            return;
        var (s, t) = timings.GetValueOrDefault(node);
        timings[node] = (s + samples, t + seconds);
    }

    private static List<WorkerSpeed> Speeds(SortedDictionary<int, (long Samples, double Seconds)> timings) =>
        timings.Select(t => new WorkerSpeed(t.Key, t.Value.Samples, t.Value.Seconds)).ToList();

    /// <summary>
    /// A decentralized peer's applied step <paramref name="step"/>: held, because a peer loss may still take the step back
    /// and apply it again (<c>StepUndo</c>); recording the same step again replaces what was held, a later step counts it.
    /// <see cref="StartEpoch"/> and <see cref="State"/> count what is held: the epoch's last step is final once the
    /// epoch-end hash round agreed. Allocates nothing once the list has room for the participants.
    /// </summary>
    public void RecordStep(long step, IReadOnlyList<IGradientContribution> applied)
    {
        if (step > _heldStep)
            CountHeld();
        _heldStep = step;
        _held.Clear();
        for (int i = 0; i < applied.Count; i++)
            _held.Add((applied[i].Participant, applied[i].SampleCount, applied[i].ComputeSeconds));
    }

    private void CountHeld()
    {
        foreach (var (node, samples, seconds) in _held)
            Add(_timings, node, samples, seconds);
        _held.Clear();
    }

    /// <summary>
    /// A new epoch among <paramref name="participants"/>: plans it from the timings measured since the last plan (or
    /// takes the resumed checkpoint's plan, when it is for these participants), and starts measuring afresh.
    /// </summary>
    public void StartEpoch(IReadOnlyCollection<int> participants)
    {
        CountHeld();
        if (_resumed is { } resumed)
        {
            _resumed = null;
            if (resumed.Plan.Count == 0 || resumed.Plan.Select(b => b.Worker).Order().SequenceEqual(participants.Order()))
            {
                Use(resumed.Plan);
                _timings.Clear();
                foreach (var t in resumed.Timings)
                    _timings[t.Worker] = (t.Samples, t.Seconds);
                return;
            }
        }
        var timings = Speeds(_timings);
        var plan = timings.Count == 0 ? [] : SpeedBalance.Plan(participants, timings, participants.Count * _batchPerWorker);
        Use(plan.All(b => b.BatchSize == _batchPerWorker) ? [] : plan);
        _timings.Clear();
    }

    /// <summary>
    /// What <paramref name="worker"/> computes on in the open epoch, as a <see cref="Centralized.ComputeGradient"/> says it: units
    /// (first unit, unit count, its batch) when balanced, else its <paramref name="shard"/> of <paramref name="shardCount"/>
    /// with the run's batch (0).
    /// </summary>
    public (int ShardIndex, int ShardCount, int BatchSize) Assignment(int worker, int shard, int shardCount) =>
        IsBalanced && _firstUnits.TryGetValue(worker, out int first)
            ? (first, UnitCount, _batchOf[worker])
            : (shard, shardCount, 0);

    /// <summary>What a checkpoint keeps: the plan in effect and the timings since it was made.</summary>
    public BalanceState State()
    {
        // A checkpoint is taken between steps: the held step is the replica's (it stays held here, as it may still be
        // taken back and applied again).
        var timings = new SortedDictionary<int, (long Samples, double Seconds)>(_timings);
        foreach (var (node, samples, seconds) in _held)
            Add(timings, node, samples, seconds);
        return new(_plan, Speeds(timings));
    }

    /// <summary>"0:77 1:77 2:77 3:25", for the run's notes.</summary>
    public string Describe() => string.Join(' ', _plan.Select(b => $"{b.Worker}:{b.BatchSize}"));

    /// <summary>
    /// The run's note at the start of <paramref name="epoch"/> of <paramref name="steps"/> steps: the plan when balanced, else
    /// the return to the run's batch; <paramref name="node"/> names a compute node ("worker", "peer"), <paramref name="source"/>
    /// says where a plan came from when not from this run's timings.
    /// </summary>
    public string Note(int epoch, int steps, string node, string source = "") => IsBalanced
        ? $"{RunProgress.Now} epoch {epoch}: batches by measured speed (--balance speed), {node}:batch {Describe()} ({steps} steps{source})"
        : $"{RunProgress.Now} epoch {epoch}: every {node} at the run's batch again (--balance speed)";

    private void Use(IReadOnlyList<WorkerBatch> plan)
    {
        _plan = plan;
        _firstUnits = SpeedBalance.FirstUnits(plan);
        _batchOf = plan.ToDictionary(b => b.Worker, b => b.BatchSize);
        UnitCount = plan.Sum(b => b.BatchSize);
    }
}
