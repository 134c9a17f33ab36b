using DistSgd.Actors.Protocol;
using DistSgd.Numerics.Training;

namespace DistSgd.Actors.Centralized;

/// <summary>
/// The master's --balance speed: measures each worker's throughput (samples per compute second) over an epoch and, at
/// the next epoch's start, plans per-worker batches that follow it (<see cref="SpeedBalance.Plan"/>), the global batch
/// kept. A plain class: the master records the gradients it used and asks for each worker's assignment.
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

    /// <param name="batchPerWorker">The run's batch per worker: the global batch is this × the epoch's participants.</param>
    /// <param name="resumed">The balance of the checkpoint the run resumes from, taken at the first epoch start; or null.</param>
    public BatchBalancer(int batchPerWorker, BalanceState? resumed = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchPerWorker, 1);
        _batchPerWorker = batchPerWorker;
        _resumed = resumed;
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
        {
            var c = used[i];
            if (c.SampleCount <= 0)
                continue;
            var (samples, seconds) = _timings.GetValueOrDefault(c.Participant);
            _timings[c.Participant] = (samples + c.SampleCount, seconds + c.ComputeSeconds);
        }
    }

    /// <summary>
    /// A new epoch among <paramref name="participants"/>: plans it from the timings measured since the last plan (or
    /// takes the resumed checkpoint's plan, when it is for these participants), and starts measuring afresh.
    /// </summary>
    public void StartEpoch(IReadOnlyCollection<int> participants)
    {
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
        var timings = _timings.Select(t => new WorkerSpeed(t.Key, t.Value.Samples, t.Value.Seconds)).ToList();
        var plan = timings.Count == 0 ? [] : SpeedBalance.Plan(participants, timings, participants.Count * _batchPerWorker);
        Use(plan.All(b => b.BatchSize == _batchPerWorker) ? [] : plan);
        _timings.Clear();
    }

    /// <summary>
    /// What <paramref name="worker"/> computes on in the open epoch, as <see cref="ComputeGradient"/> says it: units
    /// (first unit, unit count, its batch) when balanced, else its <paramref name="shard"/> of <paramref name="shardCount"/>
    /// with the run's batch (0).
    /// </summary>
    public (int ShardIndex, int ShardCount, int BatchSize) Assignment(int worker, int shard, int shardCount) =>
        IsBalanced && _firstUnits.TryGetValue(worker, out int first)
            ? (first, UnitCount, _batchOf[worker])
            : (shard, shardCount, 0);

    /// <summary>What a checkpoint keeps: the plan in effect and the timings since it was made.</summary>
    public BalanceState State() =>
        new(_plan, _timings.Select(t => new WorkerSpeed(t.Key, t.Value.Samples, t.Value.Seconds)).ToList());

    /// <summary>"0:77 1:77 2:77 3:25", for the run's notes.</summary>
    public string Describe() => string.Join(' ', _plan.Select(b => $"{b.Worker}:{b.BatchSize}"));

    private void Use(IReadOnlyList<WorkerBatch> plan)
    {
        _plan = plan;
        _firstUnits = SpeedBalance.FirstUnits(plan);
        _batchOf = plan.ToDictionary(b => b.Worker, b => b.BatchSize);
        UnitCount = plan.Sum(b => b.BatchSize);
    }
}
