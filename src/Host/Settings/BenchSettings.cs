namespace DistSgd.Host.Settings;

/// <summary>What `distsgd bench` was asked to compare.</summary>
/// <param name="Base">The run's flags; its --batch-size is the global batch every configuration keeps.</param>
/// <param name="ComputeNodeCounts">--worker-counts: the numbers of workers (and of peers) to compare.</param>
public sealed record BenchSettings(TrainSettings Base, int[] ComputeNodeCounts, int Repeat, string[] Transports);
