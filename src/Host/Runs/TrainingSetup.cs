using DistSgd.Actors.Deployment;
using DistSgd.Actors.Protocol;
using DistSgd.Host.Settings;
using DistSgd.Numerics.Data;
using DistSgd.Numerics.Models;
using DistSgd.Numerics.Optim;
using DistSgd.Numerics.Training;

namespace DistSgd.Host.Runs;

/// <summary>
/// What a distributed run's coordinators start from (the model, θ₀, the optimizer, the stop rule and the data), prepared
/// by <see cref="TrainRun.Prepare"/> exactly as for a sequential run. Named a setup, as the actors' <c>MasterSetup</c> and
/// <c>PeerSetup</c> it fills are: "plan" is the actors' <see cref="RunPlan"/> only, the description every node checks.
/// </summary>
public sealed record TrainingSetup(ModelSpec Spec, float[] InitialParameters, SgdOptions Optimizer, TrainingOptions Training,
                                   Dataset Train, Dataset Test, int StepsPerEpoch, string Hyperparameters = "")
{
    /// <summary>The plan every node of the run checks (<see cref="RunPlan.Differences"/>) before the first step.</summary>
    /// <remarks>A decentralized run's --balance speed is in its hyper-parameters (<see cref="RunPlan.BalanceBySpeed"/>): every peer must balance.</remarks>
    public RunPlan ToRunPlan(string runId, TrainSettings settings, Collective collective = Collective.AllGather) =>
        new(runId, Spec, settings.BatchSize, settings.Seed, settings.Epochs, Train.Count, StepsPerEpoch,
            settings.BalanceBySpeed && settings.Mode == RunMode.Decentralized ? $"{Hyperparameters};{RunPlan.BalanceKey}" : Hyperparameters, collective);

    /// <summary>
    /// Akka.Remote's frame size for the mode's largest message: θ (centralized), or a decentralized ReplicaResync,
    /// which carries θ and the momentum velocity, two vectors in one frame.
    /// </summary>
    public long FrameSize(RunMode mode) =>
        NodeConfig.FrameSizeFor(mode == RunMode.Decentralized ? 2 * Spec.ParameterCount : Spec.ParameterCount);
}
