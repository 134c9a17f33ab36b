using Akka.Actor;
using DistSgd.Numerics.Models;

namespace DistSgd.Actors.Protocol;

/// <summary>
/// Marker of every message DistSgd sends between nodes; bound to <see cref="DistSgdSerializer"/> in the
/// embedded reference.conf, so no project message can fall back to Akka's JSON serializer.
/// </summary>
public interface IDistSgdMessage
{
}

/// <summary>
/// What a distributed run trains, described once by the node that starts it and checked by every
/// node against its own data before the first step.
/// </summary>
/// <param name="RunId">Identifies the run; every step message carries it and foreign ones are dropped.</param>
/// <param name="BatchSizePerWorker">Samples per worker per step; the global batch is this × workers.</param>
/// <param name="TrainCount">Training samples every node must see (a check that all nodes read the same data).</param>
/// <param name="StepsPerEpoch">Synchronous steps per epoch (the largest shard's batch count).</param>
public sealed record RunPlan(string RunId, ModelSpec Spec, int BatchSizePerWorker, int Seed, int Epochs,
                             int TrainCount, int StepsPerEpoch)
{
    /// <summary>Human description, for logs and mismatch messages.</summary>
    public override string ToString() =>
        $"run {RunId}: {Spec}, batch {BatchSizePerWorker}/worker, seed {Seed}, {Epochs} epochs × {StepsPerEpoch} steps, {TrainCount} samples";
}

/// <summary>
/// One participant's gradient for one synchronous step: a worker's reply to the master (centralized) or a
/// peer's share to every peer (decentralized). The step bookkeeping (<see cref="Steps.StepGather"/>) judges
/// and orders both kinds the same way.
/// </summary>
public interface IGradientContribution
{
    string RunId { get; }

    long Step { get; }

    /// <summary>The worker index or node id: the shard the gradient was computed on, and its place in the sum.</summary>
    int Participant { get; }

    /// <summary>Samples behind the gradient (its weight); 0 with an empty gradient when the shard ran out.</summary>
    int SampleCount { get; }

    /// <summary>The summed (not mean) loss of those samples.</summary>
    double LossSum { get; }

    /// <summary>Seconds the participant spent computing the gradient.</summary>
    double ComputeSeconds { get; }

    /// <summary>The mean gradient over the samples; never modified after sending.</summary>
    float[] Gradient { get; }
}
