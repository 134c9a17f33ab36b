using Akka.Actor;
using DistSgd.Actors.Protocol;
using DistSgd.Actors.Steps;
using DistSgd.Numerics.Data;
using DistSgd.Numerics.Optim;
using DistSgd.Numerics.Training;

namespace DistSgd.Actors.Centralized;

/// <summary>Everything the master of a centralized run starts from; local to the node hosting it.</summary>
/// <param name="WorkerCount">Workers to wait for before the first step.</param>
/// <param name="InitialParameters">θ₀, already initialised from the run's seed.</param>
/// <param name="Test">The held-out set evaluated after every epoch, or null.</param>
/// <param name="Reporter">The local actor told about epochs and the end of the run.</param>
/// <param name="Checkpoints">The checkpoint to resume from and where to write checkpoints, or null for neither.</param>
/// <param name="BalanceBySpeed">--balance speed: per-worker batches follow the workers' measured throughput (<see cref="BatchBalancer"/>).</param>
/// <param name="BackupWorkers">--backup-workers B: each step finishes with the first N − B gradients of its N participants (<see cref="Centralized.BackupWorkers"/>).</param>
public sealed record MasterSetup(RunPlan Plan, int WorkerCount, float[] InitialParameters, SgdOptions Optimizer,
                                 TrainingOptions Training, Dataset? Test, IActorRef Reporter, int EvaluationThreads = 1,
                                 CheckpointSetup? Checkpoints = null, int BackupWorkers = 0, bool BalanceBySpeed = false);
