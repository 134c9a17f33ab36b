using DistSgd.Numerics.Models;

namespace DistSgd.Host.Runs;

/// <summary>Everything `distsgd train` was asked to do, validated by the command line before it gets here.</summary>
public sealed record TrainSettings
{
    public required string Mode { get; init; }
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

    /// <summary>Worker (centralized) or peer (decentralized) nodes of the simulated cluster.</summary>
    public int Workers { get; init; } = 1;

    /// <summary>Matrix-kernel threads of each worker or peer.</summary>
    public int ThreadsPerWorker { get; init; } = 1;

    /// <summary>A HOCON file whose keys override the defaults on every node, or null.</summary>
    public string? ConfigFile { get; init; }

    /// <summary>--transport (akka or direct), or null to keep distsgd.transport of the configuration.</summary>
    public string? Transport { get; init; }

    /// <summary>--resume: a results or checkpoint folder whose newest valid checkpoint the run continues from, or null.</summary>
    public string? Resume { get; init; }

    /// <summary>--checkpoint-every-steps, or null to keep distsgd.checkpoint.every-steps (0 = off).</summary>
    public long? CheckpointEverySteps { get; init; }

    /// <summary>--checkpoint-every-seconds, or null to keep distsgd.checkpoint.every-seconds (0 = off).</summary>
    public double? CheckpointEverySeconds { get; init; }

    /// <summary>--tls-cert/--tls-password/--tls-password-file: TLS between the nodes (<see cref="TlsFlags"/>).</summary>
    public TlsFlags Tls { get; init; } = TlsFlags.None;
}

/// <summary>The values of --mode.</summary>
public static class Modes
{
    public const string Sequential = "sequential";
    public const string Centralized = "centralized";
    public const string Decentralized = "decentralized";
    public static readonly string[] All = [Centralized, Decentralized, Sequential];
}
