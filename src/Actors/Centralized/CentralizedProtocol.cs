using Akka.Actor;
using DistSgd.Actors.Protocol;

namespace DistSgd.Actors.Centralized;

/// <summary>
/// Worker → master (through the singleton proxy): this worker is ready to join a run. Sent again every
/// second until a <see cref="JoinRun"/> arrives. No reply beyond the JoinRun.
/// </summary>
public sealed record RegisterWorker(IActorRef Worker) : IDistSgdMessage;

/// <summary>
/// Master → worker: take part in <paramref name="Plan"/> as worker <paramref name="WorkerIndex"/> of
/// <paramref name="WorkerCount"/> (the index decides the shard). Reply: <see cref="JoinAccepted"/> or
/// <see cref="JoinRefused"/> when the worker's data does not match the plan.
/// </summary>
/// <param name="MasterEndpoint">"host:port" of the master's direct data plane, where gradients go; empty when the
/// run's payloads travel over Akka (distsgd.transport = akka on the master decides for the run).</param>
public sealed record JoinRun(RunPlan Plan, int WorkerIndex, int WorkerCount, string MasterEndpoint = "") : IDistSgdMessage;

/// <summary>Worker → master: ready for the run's steps.</summary>
/// <param name="DataEndpoint">"host:port" of the worker's direct data plane, where θ goes; empty on the Akka transport.</param>
public sealed record JoinAccepted(string RunId, int WorkerIndex, string DataEndpoint = "") : IDistSgdMessage;

/// <summary>Worker → master: cannot take part; <paramref name="Reason"/> says why (e.g. a data-shape mismatch).</summary>
public sealed record JoinRefused(string RunId, int WorkerIndex, string Reason) : IDistSgdMessage;

/// <summary>
/// Master → every participating worker: compute the gradient of your batch
/// <paramref name="StepInEpoch"/> of <paramref name="Epoch"/> at θ = <paramref name="Parameters"/>.
/// Reply: <see cref="GradientReply"/> for the same run and step. The array is never modified after sending.
/// </summary>
public sealed record ComputeGradient(string RunId, long Step, int Epoch, int StepInEpoch, float[] Parameters) : IDistSgdMessage;

/// <summary>
/// Worker → master: the mean gradient over <paramref name="SampleCount"/> samples of its batch (empty
/// when the shard ran out), the summed loss of those samples, and how long computing took.
/// </summary>
public sealed record GradientReply(string RunId, long Step, int WorkerIndex, int SampleCount, double LossSum,
                                   double ComputeSeconds, float[] Gradient) : IDistSgdMessage, IGradientContribution
{
    int IGradientContribution.Participant => WorkerIndex;
}

/// <summary>Master → workers: the run is over (finished or failed); stop computing for it.</summary>
public sealed record RunEnded(string RunId) : IDistSgdMessage;
