using DistSgd.Host.Settings;
using DistSgd.Numerics.Data;

namespace DistSgd.Host.Runs;

/// <summary>
/// Checks of a run's flags against its data, made once the data is read and before anything is trained or
/// written: a value that cannot work is refused (exit 2, naming the flag, what it accepts and what was found),
/// never clamped silently.
/// </summary>
public static class InputChecks
{
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

    /// <summary>Refuses an --out that names a file; the folder itself is made once the data is read.</summary>
    public static void CheckResultsFolder(string results)
    {
        if (File.Exists(results))
            throw new UsageException($"--out: {results} is a file; expected a folder for the results (model.bin, metrics.csv, summary.json)");
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
