using DistSgd.Host.Settings;
using DistSgd.Numerics.Data;
using DistSgd.Numerics.Models;

namespace DistSgd.Host.Runs;

/// <summary>
/// Checks of a run's flags against its data, made once the data is read and before anything is trained or
/// written: a value that cannot work is refused (exit 2, naming the flag, what it accepts and what was found),
/// never clamped silently.
/// </summary>
public static class InputChecks
{
    /// <summary>
    /// Refuses straggler flags the mode cannot use (before any data is read): --backup-workers is centralized, below
    /// --workers; --balance speed needs workers or peers, with a global batch a frame's 16-bit unit index can count.
    /// </summary>
    public static void CheckStragglerFlags(TrainSettings settings)
    {
        if (settings.BalanceBySpeed && settings.Mode == RunMode.Sequential)
            throw new UsageException("--balance: speed balancing shares a global batch among workers or peers; found --mode sequential");
        if (settings.BalanceBySpeed && (long)settings.ComputeNodes * settings.BatchSize > ushort.MaxValue)
            throw new UsageException($"--balance: speed balancing needs --workers × --batch-size ≤ {ushort.MaxValue}, found {settings.ComputeNodes} × {settings.BatchSize}");
        if (settings.BackupWorkers == 0)
            return;
        if (settings.Mode != RunMode.Centralized)
            throw new UsageException($"--backup-workers: only a centralized run has backup workers (the master decides alone which gradients a step uses); found --mode {settings.Mode.Name()}");
        if (settings.BackupWorkers >= settings.ComputeNodes)
            throw new UsageException($"--backup-workers: expected fewer than --workers ({settings.ComputeNodes}: a step needs at least one gradient), found {settings.BackupWorkers}");
    }

    /// <summary>Throws a <see cref="UsageException"/> when --workers or --batch-size cannot fit <paramref name="train"/>.</summary>
    public static void CheckAgainstData(TrainSettings settings, Dataset train)
    {
        if (settings.Mode == RunMode.Sequential)
        {
            if (settings.BatchSize > train.Count)
                throw new UsageException(
                    $"--batch-size: expected at most {train.Count} (the training set's samples), found {settings.BatchSize}");
            return;
        }
        string nodes = settings.Mode == RunMode.Decentralized ? "peers" : "workers";
        if (settings.ComputeNodes > train.Count)
            throw new UsageException(
                $"--workers: expected at most {train.Count} (every {nodes[..^1]} needs a training sample; the training set has {train.Count}), found {settings.ComputeNodes}");
        // Shards are contiguous and balanced (DataSplit.ShardRange): the smallest holds ⌊samples / workers⌋.
        int smallestShard = train.Count / settings.ComputeNodes;
        if (settings.BatchSize > smallestShard)
            throw new UsageException(
                $"--batch-size: expected at most {smallestShard} (the smallest shard: {train.Count} training samples over {settings.ComputeNodes} {nodes}; " +
                $"the batch size is per {nodes[..^1]}), found {settings.BatchSize}");
    }

    /// <summary>
    /// The copies of θ-sized buffers a run holds, counted generously: a sequential run's θ, gradient, optimizer state and
    /// the saved model; a distributed run's master (or each peer) with the same, plus each compute node's θ, gradient
    /// and the buffers its messages are serialized into.
    /// </summary>
    public static long ParameterCopies(TrainSettings settings) =>
        settings.Mode == RunMode.Sequential ? 4 : 4 + 4L * settings.ComputeNodes;

    /// <summary>
    /// Refuses a model that one buffer cannot hold, or whose buffers (<see cref="ParameterCopies"/>) need more memory
    /// than <paramref name="availableBytes"/>: before anything is allocated, instead of an overflow or minutes of paging.
    /// The flag named is --hidden for an MLP (its layer sizes set the size), else --data (its feature count does).
    /// </summary>
    public static void CheckModelSize(TrainSettings settings, ModelSpec spec, long availableBytes)
    {
        string flag = spec.Kind == ModelKind.Mlp ? "--hidden" : "--data";
        long count = spec.ParameterCountUnbounded;
        if (count > Array.MaxLength)
            throw new UsageException(
                $"{flag}: the model {spec} has {count:N0} parameters; expected at most {Array.MaxLength:N0} (what one buffer holds)");
        long copies = ParameterCopies(settings);
        long needed = count * sizeof(float) * copies;
        if (needed > availableBytes)
            throw new UsageException(
                $"{flag}: the model {spec} has {count:N0} parameters; the run needs about {Gib(needed)} for {copies} copies " +
                $"(θ, gradients, optimizer state, every worker's), more than the {Gib(availableBytes)} this machine has");
    }

    private static string Gib(long bytes) => $"{bytes / (1024.0 * 1024 * 1024):0.#} GiB";

    /// <summary>
    /// Refuses an --out that is empty, names a file, or lies where nothing can be written (a read-only file system, a
    /// folder without write permission): found before any training, not when the results are saved. The folder itself
    /// is made once the data is read, so a refused run leaves none behind.
    /// </summary>
    public static void CheckResultsFolder(string results)
    {
        if (string.IsNullOrWhiteSpace(results))
            throw new UsageException($"--out: expected a folder for the results, found '{results}'");
        if (File.Exists(results))
            throw new UsageException($"--out: {results} is a file; expected a folder for the results (model.bin, metrics.csv, summary.json)");
        // The folder, or the nearest one above it that exists: where the first file or folder will be made.
        string? existing = Path.GetFullPath(results);
        while (existing is not null && !Directory.Exists(existing))
            existing = Path.GetDirectoryName(existing);
        if (existing is null)
            return;
        string probe = Path.Combine(existing, $".distsgd-write-check-{Environment.ProcessId}-{Guid.NewGuid():N}");
        try
        {
            using var file = new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"--out: cannot write the results folder {results}: nothing can be written in {existing} ({e.Message})");
        }
    }

    /// <summary>Makes the results folder, before any training: a folder that cannot be made is bad input, not a failed run.</summary>
    public static void CreateResultsFolder(string results)
    {
        try
        {
            Directory.CreateDirectory(results);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"--out: cannot create the results folder {results}: {e.Message}");
        }
    }
}
