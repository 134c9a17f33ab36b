using System.Globalization;
using DistSgd.Numerics.Data;

namespace DistSgd.Numerics.Training;

/// <summary>The newest checkpoint of a directory that reads and verifies, and every newer file that did not, with why.</summary>
/// <param name="Checkpoint">The checkpoint to resume from, or null when none is valid.</param>
/// <param name="Path">Its file, or null.</param>
/// <param name="Skipped">One line per file passed over, newest first ("step-….ckpt: the checksum does not match…").</param>
public sealed record CheckpointChoice(Checkpoint? Checkpoint, string? Path, IReadOnlyList<string> Skipped);

/// <summary>
/// A run's checkpoint directory (by default &lt;out&gt;/checkpoints): one file per checkpoint, named after its step
/// (step-000000001234.ckpt, so names sort by step), the newest <see cref="Keep"/> kept.
/// </summary>
public sealed class CheckpointStore
{
    /// <summary>The folder under a run's results folder that holds its checkpoints.</summary>
    public const string FolderName = "checkpoints";

    private const string Prefix = "step-";
    private const string Extension = ".ckpt";

    /// <summary>The bytes of the checkpoint being written, reused: a checkpoint of the default MLP is 1.9 MB.</summary>
    private readonly MemoryStream _scratch = new();

    public CheckpointStore(string directory, int keep = 3)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        ArgumentOutOfRangeException.ThrowIfLessThan(keep, 1);
        Directory = directory;
        Keep = keep;
    }

    public string Directory { get; }

    /// <summary>How many checkpoints are kept; older ones are deleted after each write (at least 2 leaves one to fall back on).</summary>
    public int Keep { get; }

    /// <summary>
    /// The checkpoint directory a user names: <paramref name="path"/> itself, or its <see cref="FolderName"/> folder
    /// when <paramref name="path"/> is a run's results folder.
    /// </summary>
    public static string Resolve(string path)
    {
        string nested = Path.Combine(path, FolderName);
        return System.IO.Directory.Exists(nested) ? nested : path;
    }

    /// <summary>The file a checkpoint of <paramref name="step"/> is written to.</summary>
    public string PathOf(long step) => Path.Combine(Directory, $"{Prefix}{step.ToString("D12", CultureInfo.InvariantCulture)}{Extension}");

    /// <summary>
    /// Writes the checkpoint atomically, then deletes the files of later steps and all but the newest <see cref="Keep"/>
    /// of the others; returns its path and size.
    /// One writer at a time (the run's coordinator).
    /// </summary>
    public (string Path, long Bytes) Write(Checkpoint checkpoint)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        string path = PathOf(checkpoint.Step);
        long bytes = CheckpointFile.Write(path, checkpoint, _scratch);
        // A run never goes back: files of later steps are left by an earlier run in this folder (or are the damaged
        // ones a resume passed over), and must not outlive this run's own checkpoints when the oldest are pruned.
        var files = List();
        foreach (var (_, old) in files.Where(f => f.Step > checkpoint.Step).Concat(files.Where(f => f.Step <= checkpoint.Step).Skip(Keep)))
            File.Delete(old);
        return (path, bytes);
    }

    /// <summary>The checkpoint files of the directory, newest (highest step) first; none when it does not exist.</summary>
    public IReadOnlyList<(long Step, string Path)> List()
    {
        if (!System.IO.Directory.Exists(Directory))
            return [];
        var files = new List<(long, string)>();
        foreach (string path in System.IO.Directory.EnumerateFiles(Directory, Prefix + "*" + Extension))
        {
            string name = Path.GetFileNameWithoutExtension(path);
            if (long.TryParse(name.AsSpan(Prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out long step))
                files.Add((step, path));
        }
        return files.OrderByDescending(f => f.Item1).ToList();
    }

    /// <summary>
    /// The newest checkpoint that reads and verifies. A file cut short or with a changed byte (the checksum), a
    /// checkpoint whose step differs from its name, and a temporary file left by a write that never finished are
    /// passed over for the one before, each with its reason in <see cref="CheckpointChoice.Skipped"/>.
    /// </summary>
    public CheckpointChoice LatestValid()
    {
        var skipped = new List<string>();
        if (System.IO.Directory.Exists(Directory))
        {
            // AtomicFile's temporaries (".step-….ckpt.<pid>.<guid>.tmp"): a process stopped between write and rename.
            foreach (string partial in System.IO.Directory.EnumerateFiles(Directory, "." + Prefix + "*.tmp").Order(StringComparer.Ordinal))
                skipped.Add($"{Path.GetFileName(partial)}: an unfinished write (a process stopped before renaming it into place)");
        }
        foreach (var (step, path) in List())
        {
            try
            {
                var checkpoint = CheckpointFile.Read(path);
                if (checkpoint.Step != step)
                {
                    skipped.Add($"{Path.GetFileName(path)}: holds step {checkpoint.Step}, its name says {step}");
                    continue;
                }
                return new CheckpointChoice(checkpoint, path, skipped);
            }
            catch (DataFormatException e)
            {
                skipped.Add($"{Path.GetFileName(path)}: {e.Problem}");
            }
        }
        return new CheckpointChoice(null, null, skipped);
    }
}
