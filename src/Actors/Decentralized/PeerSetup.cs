using Akka.Actor;
using DistSgd.Actors.Protocol;
using DistSgd.Actors.Steps;
using DistSgd.Numerics.Data;
using DistSgd.Numerics.Optim;
using DistSgd.Numerics.Training;

namespace DistSgd.Actors.Decentralized;

/// <summary>Everything a peer of a decentralized run starts from; local to its node.</summary>
/// <param name="PeerCount">Peers the start barrier waits for (this one included).</param>
/// <param name="InitialParameters">θ₀, initialised from the run's seed: the same on every node.</param>
/// <param name="Train">This node's copy of the training set; the peer computes on its shard only.</param>
/// <param name="Test">The held-out set the lead peer evaluates after every epoch, or null.</param>
/// <param name="Reporter">The local actor told about epochs and the end of the run.</param>
/// <param name="Threads">Matrix-kernel threads of the gradient computation.</param>
/// <param name="Mediator">The DistributedPubSub mediator to subscribe and publish through; null = this node's (tests put a probe here).</param>
/// <param name="Checkpoints">The checkpoint every peer resumes from, and where the lead peer writes checkpoints; or null.</param>
/// <param name="Slowdown">Tests and benchmarks: each share takes this many times as long to compute (<see cref="Steps.Slowdown"/>; 1 = off).</param>
public sealed record PeerSetup(RunPlan Plan, int PeerCount, float[] InitialParameters, SgdOptions Optimizer,
                               TrainingOptions Training, Dataset Train, Dataset? Test, IActorRef Reporter,
                               int Threads = 1, int EvaluationThreads = 1, IActorRef? Mediator = null,
                               CheckpointSetup? Checkpoints = null, double Slowdown = 1)
{
    /// <summary>Why this node's data cannot serve the plan, or null when it can.</summary>
    public string? DataMismatch()
    {
        if (Plan.DataMismatch(Train) is { } problem)
            return problem;
        if (InitialParameters.Length != Plan.Spec.ParameterCount)
            return $"θ₀ has {InitialParameters.Length} values, the model {Plan.Spec} has {Plan.Spec.ParameterCount} parameters";
        return null;
    }
}
