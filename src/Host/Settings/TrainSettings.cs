using DistSgd.Numerics.Models;
using DistSgd.Numerics.Training;

namespace DistSgd.Host.Settings;

/// <summary>Everything `distsgd train` was asked to do, validated by the command line before it gets here.</summary>
public sealed record TrainSettings
{
    public required RunMode Mode { get; init; }
    public required DataRequest Data { get; init; }
    public required ModelKind Model { get; init; }
    public required int[] Hidden { get; init; }
    public required Activation Activation { get; init; }
    public required int Epochs { get; init; }
    public required int BatchSize { get; init; }
    public required double LearningRate { get; init; }
    public required double Momentum { get; init; }
    public required double WeightDecay { get; init; }
    public required string Schedule { get; init; }
    public required int Seed { get; init; }
    public required int Patience { get; init; }
    public required double MinDelta { get; init; }
    public required string Normalize { get; init; }
    public required int Threads { get; init; }
    public required string Out { get; init; }
    public required bool Quiet { get; init; }

    /// <summary>--json: one JSON object per epoch on standard output instead of text.</summary>
    public bool Json { get; init; }

    /// <summary>
    /// --workers: the nodes that compute gradients, one shard each: workers (centralized) or peers (decentralized).
    /// The master is not one of them.
    /// </summary>
    public int ComputeNodes { get; init; } = 1;

    /// <summary>--backup-workers: a centralized step finishes with the first ComputeNodes − this gradients (0 = all).</summary>
    public int BackupWorkers { get; init; }

    /// <summary>--balance speed: a centralized run's per-worker batches follow the workers' measured throughput.</summary>
    public bool BalanceBySpeed { get; init; }

    /// <summary>--threads-per-worker: matrix-kernel threads of each compute node (worker or peer).</summary>
    public int ThreadsPerComputeNode { get; init; } = 1;

    /// <summary>A HOCON file whose keys override the defaults on every node, or null.</summary>
    public string? ConfigFile { get; init; }

    /// <summary>--transport (akka or direct), or null to keep distsgd.transport of the configuration.</summary>
    public string? Transport { get; init; }

    /// <summary>--wire (fp32, bf16 or fp16), or null to keep distsgd.wire of the configuration.</summary>
    public string? Wire { get; init; }

    /// <summary>--compress (none or topk:F), or null to keep distsgd.compress of the configuration.</summary>
    public string? Compress { get; init; }

    /// <summary>--sync-every (local SGD's steps between model averages), or null to keep distsgd.sync-every of the configuration.</summary>
    public int? SyncEvery { get; init; }

    /// <summary>--collective (auto, allgather, ring or pairwise), or null to keep distsgd.collective of the configuration.</summary>
    public string? Collective { get; init; }

    /// <summary>--link-rate (none or a rate such as 1gbit), or null to keep distsgd.link-rate of the configuration.</summary>
    public string? LinkRate { get; init; }

    /// <summary>--resume: a results or checkpoint folder whose newest valid checkpoint the run continues from, or null.</summary>
    public string? Resume { get; init; }

    /// <summary>--checkpoint-every-steps, or null to keep distsgd.checkpoint.every-steps (0 = off).</summary>
    public long? CheckpointEverySteps { get; init; }

    /// <summary>--checkpoint-every-seconds, or null to keep distsgd.checkpoint.every-seconds (0 = off).</summary>
    public double? CheckpointEverySeconds { get; init; }

    /// <summary>--tls-cert/--tls-password/--tls-password-file: TLS between the nodes (<see cref="TlsFlags"/>).</summary>
    public TlsFlags Tls { get; init; } = TlsFlags.None;

    /// <summary>--metrics-port: the port this process serves its metrics on for Prometheus (/metrics), or null for none.</summary>
    public int? MetricsPort { get; init; }

    /// <summary>--trace: the Chrome trace file this process writes its nodes' step traces to when the run is over, or null.</summary>
    public string? TraceFile { get; init; }
}

/// <summary>How a run trains: --mode, parsed once by the command line.</summary>
public enum RunMode
{
    /// <summary>One process, one model.</summary>
    Sequential,

    /// <summary>A master (cluster singleton) and worker nodes.</summary>
    Centralized,

    /// <summary>Equal peer nodes, each with its own replica.</summary>
    Decentralized,
}

/// <summary>
/// The names of <see cref="RunMode"/>: the values of --mode, and how a mode is written wherever a user reads it
/// (the run's lines, summary.json, bench.csv, a checkpoint's run identity).
/// </summary>
public static class RunModes
{
    private static readonly FlagValues<RunMode> Values = new("--mode", "one of",
        [(RunMode.Centralized, "centralized"), (RunMode.Decentralized, "decentralized"), (RunMode.Sequential, "sequential")]);

    /// <summary>The values of --mode, in the order its help and its errors list them.</summary>
    public static string[] Names => Values.Names;

    /// <summary>The mode's name on the command line ("centralized").</summary>
    public static string Name(this RunMode mode) => Values.Name(mode);

    /// <summary>The mode a --mode value names; the command line has already refused any other value.</summary>
    public static RunMode Parse(string name) => Values.Parse(name);

    /// <summary>True for the modes that run on a cluster.</summary>
    public static bool IsDistributed(this RunMode mode) => mode != RunMode.Sequential;
}
