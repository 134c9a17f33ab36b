using System.Globalization;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using DistSgd.Actors.Steps;
using DistSgd.Host.Settings;
using DistSgd.Numerics.Compression;
using DistSgd.Numerics.Data;
using DistSgd.Numerics.Training;

namespace DistSgd.Host.Runs;

/// <summary>
/// A run's checkpoints as `train` and `node` see them: the run's identity, the writer for &lt;out&gt;/checkpoints
/// (distsgd.checkpoint.* and the --checkpoint-* flags), and the checkpoint --resume continues from.
/// </summary>
public static class RunCheckpoints
{
    /// <summary>
    /// What makes two runs the same run, as "key=value;…": mode, model, batch, seed, epochs, the data (sample count,
    /// steps per epoch, SHA-256 of the prepared training set) and every hyper-parameter. Run ids, output folders,
    /// threads and transports are left out: they do not change a single bit of θ.
    /// </summary>
    public static string Identity(TrainSettings settings, PreparedRun run)
    {
        bool distributed = run.Distributed;
        // The hyper-parameters are already "key=value;…"; a sequential run has no workers.
        string hyperparameters = string.Join(';', run.Setup.Hyperparameters.Split(';', StringSplitOptions.RemoveEmptyEntries)
            .Where(p => distributed || !p.StartsWith("workers=", StringComparison.Ordinal)));
        return RunIdentity.Of(
        [
            ("mode", settings.Mode.Name()),
            ("model", run.Spec.ToString()),
            (distributed ? "batch size per worker" : "batch size", settings.BatchSize.ToString(CultureInfo.InvariantCulture)),
            ("seed", settings.Seed.ToString(CultureInfo.InvariantCulture)),
            ("epochs", settings.Epochs.ToString(CultureInfo.InvariantCulture)),
            ("training samples", run.Train.Count.ToString(CultureInfo.InvariantCulture)),
            ("steps per epoch", run.Setup.StepsPerEpoch.ToString(CultureInfo.InvariantCulture)),
            ("training data sha256", DataFingerprint(run.Train)),
        ]) + ";" + hyperparameters + (settings.BalanceBySpeed ? ";balance=speed" : "");
    }

    /// <summary>The first 16 hex digits of SHA-256 over the prepared training set's features and targets.</summary>
    public static string DataFingerprint(Dataset train)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(MemoryMarshal.AsBytes(train.Features.AsSpan()));
        hash.AppendData(MemoryMarshal.AsBytes(train.Targets.AsSpan()));
        return Convert.ToHexStringLower(hash.GetHashAndReset())[..16];
    }

    /// <summary>
    /// The checkpoint to resume from (--resume) and the writer of this run's checkpoints, for the node that holds the run's
    /// state (the sequential trainer, the master, every peer: only the lead peer writes).
    /// </summary>
    public static CheckpointSetup Setup(TrainSettings settings, EffectiveConfig config, PreparedRun run, TextWriter output)
    {
        var (schedule, keep) = Schedule(settings, config);
        if (schedule.IsOff && settings.Resume is null)
            return new CheckpointSetup(null, null);
        string identity = Identity(settings, run);
        var resume = Resume(settings, identity, output);
        // The writer of <out>/checkpoints, or none when every trigger is off.
        var writer = schedule.IsOff ? null
            : new CheckpointWriter(new CheckpointStore(Path.Combine(settings.Out, CheckpointStore.FolderName), keep), schedule, identity);
        return new CheckpointSetup(resume, writer);
    }

    /// <summary>When checkpoints are written: distsgd.checkpoint.* of the configuration, with the --checkpoint-* flags over them.</summary>
    private static (CheckpointSchedule Schedule, int Keep) Schedule(TrainSettings settings, EffectiveConfig config)
    {
        var checkpoint = config.Checkpoint;
        return (new CheckpointSchedule(settings.CheckpointEverySteps ?? checkpoint.EverySteps,
                                       TimeSpan.FromSeconds(settings.CheckpointEverySeconds ?? checkpoint.EverySeconds),
                                       checkpoint.AtEpochEnd), checkpoint.Keep);
    }

    /// <summary>
    /// The checkpoint --resume names (a checkpoint folder, or a results folder holding one): the newest that reads and
    /// verifies, every newer one skipped being reported; null without --resume. Fails (exit 2) when the folder has no
    /// valid checkpoint, or when its run differs from this one (naming each difference).
    /// </summary>
    public static Checkpoint? Resume(TrainSettings settings, string identity, TextWriter output)
    {
        if (settings.Resume is not { } resume)
            return null;
        if (!Directory.Exists(resume))
            throw new UsageException($"--resume {resume}: no such directory (expected a run's results folder or its {CheckpointStore.FolderName} folder)");
        var store = new CheckpointStore(CheckpointStore.Resolve(resume));
        var choice = store.LatestValid();
        foreach (string skipped in choice.Skipped)
            output.WriteLine($"checkpoint: skipped {skipped}");
        if (choice.Checkpoint is not { } checkpoint)
            throw new UsageException(
                $"--resume {resume}: no valid checkpoint in {store.Directory}" +
                (choice.Skipped.Count > 0 ? $" ({string.Join("; ", choice.Skipped)})" : " (it holds no step-*.ckpt file)"));
        var differences = RunIdentity.Differences(checkpoint.Identity, identity, "in the checkpoint", "now");
        if (differences.Count > 0)
            throw new UsageException(
                $"--resume {resume}: {Path.GetFileName(choice.Path)} belongs to a different run; resume it with the same flags and data. " +
                string.Join("; ", differences));
        output.WriteLine($"checkpoint: resuming from {choice.Path}: {checkpoint.Position}");
        if (ShareEncoding.FromKeys(checkpoint.Identity) is { IsSparse: true } sparse)
            output.WriteLine("checkpoint: top-k residuals are not in checkpoints: every node's error feedback " +
                             (sparse.MomentumCorrection ? "and its own velocity (momentum correction) start" : "starts") +
                             " empty, so this run goes on differently from one never stopped (decisions 0089, 0114)");
        return checkpoint;
    }

    /// <summary>The results folder of a --resume folder: its parent when it is a run's checkpoints folder.</summary>
    public static string ResultsFolderOf(string resume)
    {
        string trimmed = Path.TrimEndingDirectorySeparator(resume);
        return Path.GetFileName(trimmed) == CheckpointStore.FolderName ? Path.GetDirectoryName(trimmed) is { Length: > 0 } parent ? parent : "." : trimmed;
    }

    /// <summary>"checkpoints: 5 written, median 12.3 ms, 1.88 MB each", or null when none was written.</summary>
    public static string? Describe(CheckpointWriter? writer)
    {
        var seconds = writer?.Seconds.Order().ToList();
        if (seconds is null || seconds.Count == 0)
            return null;
        return string.Create(CultureInfo.InvariantCulture,
            $"checkpoints: {seconds.Count} written to {writer!.Store.Directory} ({writer.Schedule}), median {seconds[seconds.Count / 2] * 1000:F1} ms, {CheckpointWritten.Size(writer.Last!.Bytes)} each");
    }
}
