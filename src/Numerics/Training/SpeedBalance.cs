namespace DistSgd.Numerics.Training;

/// <summary>One worker's measured throughput over an epoch: the samples it computed and the compute seconds they took.</summary>
public readonly record struct WorkerSpeed(int Worker, long Samples, double Seconds)
{
    /// <summary>Samples per compute second; 0 when nothing was measured.</summary>
    public double Rate => Samples > 0 && Seconds > 0 ? Samples / Seconds : 0;
}

/// <summary>One worker's batch size in a balanced epoch.</summary>
public readonly record struct WorkerBatch(int Worker, int BatchSize);

/// <summary>
/// What --balance speed keeps across a checkpoint: the batch plan in effect (empty: every worker takes the run's
/// batch) and the timings measured so far towards the next plan, so a resumed run plans exactly as the uninterrupted
/// one would from the same timings.
/// </summary>
/// <param name="Plan">The batch of each participant in the current epoch, by worker; empty = the run's batch for all.</param>
/// <param name="Timings">The throughput measured since the current plan was made, by worker.</param>
public sealed record BalanceState(IReadOnlyList<WorkerBatch> Plan, IReadOnlyList<WorkerSpeed> Timings);

/// <summary>
/// --balance speed: per-worker batch sizes that follow each worker's measured throughput, with the global batch kept.
/// A pure function of the timings, so every run (and every resume) that records the same timings plans the same
/// batches; the seed's weighted average Σ nᵢ·gᵢ / Σ nᵢ does the rest.
/// </summary>
/// <remarks>
/// A balanced epoch cuts the training set into G equal slices ("units", <see cref="Data.DataSplit.ShardRange"/> of G),
/// G the global batch; worker i with batch bᵢ takes bᵢ consecutive units in worker order, so its shard is bᵢ/G of the
/// data and every worker runs out after the same ⌈samples / G⌉ steps.
/// </remarks>
public static class SpeedBalance
{
    /// <summary>
    /// Batch sizes bᵢ ∝ each worker's rate (samples per compute second), Σ bᵢ = <paramref name="globalBatch"/>, every
    /// bᵢ ≥ <paramref name="minBatch"/>. A worker without a measurement counts at the mean rate of those with one (all
    /// equal when none has). Rounding is by largest remainder, ties to the lower worker id; deterministic.
    /// </summary>
    /// <param name="workers">The epoch's participants (any order; the plan is in ascending order).</param>
    /// <param name="timings">Measured throughput; workers not in <paramref name="workers"/> are ignored.</param>
    public static IReadOnlyList<WorkerBatch> Plan(IEnumerable<int> workers, IEnumerable<WorkerSpeed> timings, int globalBatch, int minBatch = 1)
    {
        var ids = workers.Distinct().Order().ToList();
        ArgumentOutOfRangeException.ThrowIfLessThan(minBatch, 1);
        if (ids.Count == 0)
            return [];
        if (globalBatch < ids.Count * minBatch)
            throw new ArgumentOutOfRangeException(nameof(globalBatch), globalBatch, $"a global batch of at least {ids.Count} × {minBatch}");
        var measured = timings.Where(t => t.Rate > 0).GroupBy(t => t.Worker)
                              .ToDictionary(g => g.Key, g => new WorkerSpeed(g.Key, g.Sum(t => t.Samples), g.Sum(t => t.Seconds)).Rate);
        var known = ids.Where(measured.ContainsKey).Select(id => measured[id]).ToList();
        double fallback = known.Count > 0 ? known.Sum() / known.Count : 1;
        var rates = ids.Select(id => measured.GetValueOrDefault(id, fallback)).ToList();
        double total = rates.Sum();
        var ideal = rates.Select(r => globalBatch * r / total).ToList();
        var batches = ideal.Select(x => Math.Max(minBatch, (int)Math.Floor(x))).ToArray();
        int left = globalBatch - batches.Sum();
        // Largest remainder first (ties: the lower worker id); a surplus from the minimum comes off the largest batches.
        var byRemainder = Enumerable.Range(0, ids.Count).OrderByDescending(i => ideal[i] - Math.Floor(ideal[i])).ThenBy(i => ids[i]).ToList();
        for (int k = 0; left > 0; k = (k + 1) % ids.Count, left--)
            batches[byRemainder[k]]++;
        while (left < 0)
        {
            int largest = Enumerable.Range(0, ids.Count).Where(i => batches[i] > minBatch)
                                    .OrderByDescending(i => batches[i]).ThenByDescending(i => ids[i]).First();
            batches[largest]--;
            left++;
        }
        return ids.Select((id, i) => new WorkerBatch(id, batches[i])).ToList();
    }

    /// <summary>The first unit of each worker's shard: the batches before it in worker order (<see cref="SpeedBalance"/>'s remarks).</summary>
    public static IReadOnlyDictionary<int, int> FirstUnits(IReadOnlyList<WorkerBatch> plan)
    {
        var first = new Dictionary<int, int>();
        int unit = 0;
        foreach (var b in plan.OrderBy(b => b.Worker))
        {
            first[b.Worker] = unit;
            unit += b.BatchSize;
        }
        return first;
    }
}
