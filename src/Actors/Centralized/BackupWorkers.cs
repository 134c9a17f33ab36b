namespace DistSgd.Actors.Centralized;

/// <summary>
/// The master's backup workers (--backup-workers B; Chen et al., "Revisiting Distributed Synchronous SGD"): a step
/// of an epoch with N participants finishes with the first N − B gradients to arrive; the others come late, are
/// dropped and counted (late_gradient). The master alone decides which gradients a step uses, so there is nothing to
/// agree on: the average is over those, in worker-index order. A worker still computing an earlier step's gradient is
/// not asked again until that gradient arrives (or until distsgd.step-timeout passed since it was asked), so a slow
/// worker never queues up work it cannot finish in time. A plain class: the master does the messaging.
/// </summary>
/// <remarks>
/// A worker left out of a step leaves its batch of that step unused: a batch is a function of (seed, epoch, step in
/// epoch, shard), so the shard's next batch is the next step's whatever happened to this one, and the samples of the
/// batches a worker missed are not seen in that epoch (docs/decisions/0093).
/// </remarks>
public sealed class BackupWorkers
{
    /// <summary>For each worker asked and not yet answered: the step and when (a <see cref="System.Diagnostics.Stopwatch"/> timestamp).</summary>
    private readonly Dictionary<int, (long Step, long AskedAt)> _outstanding = new();
    private readonly long _patience;

    /// <param name="backups">B: gradients a step may go without (0 = off: every step waits for all its participants).</param>
    /// <param name="patienceTicks">After this long (<see cref="System.Diagnostics.Stopwatch"/> ticks: distsgd.step-timeout)
    /// an unanswered worker is asked again (its answer was lost).</param>
    public BackupWorkers(int backups, long patienceTicks)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(backups);
        Backups = backups;
        _patience = patienceTicks;
    }

    /// <summary>B: gradients a step may go without.</summary>
    public int Backups { get; }

    /// <summary>True with B &gt; 0; with B = 0 the master steps as it always did.</summary>
    public bool Enabled => Backups > 0;

    /// <summary>
    /// The gradients a step finishes with: N − B of the epoch's <paramref name="participants"/> (at least 1), but no
    /// more than the <paramref name="asked"/> (the others still compute an earlier step); 0 = all asked (B = 0).
    /// </summary>
    public static int FinishWith(int participants, int asked, int backups) =>
        backups <= 0 ? 0 : Math.Min(asked, Math.Max(1, participants - backups));

    /// <summary>The gradients a step finishes with, for this master's B (<see cref="FinishWith(int, int, int)"/>).</summary>
    public int FinishWith(int participants, int asked) => FinishWith(participants, asked, Backups);

    /// <summary>True when <paramref name="worker"/> still computes a step it was asked at most a step-timeout ago: not asked now.</summary>
    public bool IsBusy(int worker, long now) =>
        Enabled && _outstanding.TryGetValue(worker, out var asked) && now - asked.AskedAt < _patience;

    /// <summary><paramref name="worker"/> was sent θ of <paramref name="step"/> at <paramref name="now"/>.</summary>
    public void Asked(int worker, long step, long now)
    {
        if (Enabled)
            _outstanding[worker] = (step, now);
    }

    /// <summary>
    /// A gradient of <paramref name="worker"/> for <paramref name="step"/> arrived while step <paramref name="openStep"/>
    /// is gathered (or finished, when not <paramref name="open"/>). The worker is free again; true when the gradient is
    /// late: it was asked for a step that finished without it.
    /// </summary>
    public bool Answered(int worker, long step, long openStep, bool open)
    {
        if (!Enabled || !_outstanding.TryGetValue(worker, out var asked) || asked.Step != step)
            return false;
        _outstanding.Remove(worker);
        return step < openStep || (step == openStep && !open);
    }

    /// <summary>The worker is out of the run (lost, evicted): nothing is awaited from it.</summary>
    public void Forget(int worker) => _outstanding.Remove(worker);

    /// <summary>A step nobody answered is asked again: every worker is asked, busy or not.</summary>
    public void Clear() => _outstanding.Clear();
}
