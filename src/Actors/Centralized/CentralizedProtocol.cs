using Akka.Actor;
using DistSgd.Actors.Protocol;
using DistSgd.Actors.Transport;

namespace DistSgd.Actors.Centralized;

/// <summary>
/// Worker → master (through the singleton proxy): this worker is ready to join a run. Sent every second for as
/// long as the worker lives, so that a new master (the singleton moved) or a master that forgot this worker (it
/// was unreachable for a while) learns about it; a master ignores a worker it already counts. No reply beyond a
/// <see cref="JoinRun"/>.
/// </summary>
/// <param name="Position">Where this worker stands in the run it last joined, or null before any run.</param>
public sealed record RegisterWorker(IActorRef Worker, WorkerPosition? Position = null) : IDistSgdMessage;

/// <summary>
/// What a worker holds of the run it joined: the latest θ it was sent, tagged with its step (and the θ of the step
/// before, when it took part in both), and the shard it computed on. A new master recovers θ, the step and the
/// momentum from the worker with the highest step (<see cref="MasterRecovery"/>).
/// </summary>
/// <param name="Step">The step of the latest θ this worker holds; −1 when it holds none.</param>
/// <param name="HasPrevious">The worker also holds θ of step <paramref name="Step"/> − 1.</param>
public sealed record WorkerPosition(string RunId, int WorkerIndex, long Step, int Epoch, int StepInEpoch, int ShardIndex,
                                    int ShardCount, bool HasPrevious);

/// <summary>Master (a new one, recovering) → worker: send the θ you hold (<see cref="HeldParameters"/>, one per step held).</summary>
public sealed record RequestHeldParameters(string RunId) : IDistSgdMessage;

/// <summary>Worker → master: θ as this worker received it for <paramref name="Step"/> (before that step's update).</summary>
public sealed record HeldParameters(string RunId, long Step, float[] Parameters) : IPayloadMessage
{
    /// <inheritdoc/>
    public int PayloadBytes => WireFormat.Header(RunId) + 8 + WireFormat.Vector(Parameters);
}

/// <summary>
/// Master → worker: take part in <paramref name="Plan"/> as worker <paramref name="WorkerIndex"/> of
/// <paramref name="WorkerCount"/> (the index decides the shard). Reply: <see cref="JoinAccepted"/> or
/// <see cref="JoinRefused"/> when the worker's data does not match the plan.
/// </summary>
/// <param name="MasterEndpoint">"host:port" of the master's direct data plane, where gradients go; empty when the
/// run's payloads travel over Akka (distsgd.transport = akka on the master decides for the run).</param>
/// <param name="MasterKey">The master data plane's key (<see cref="DirectDataPlane.Key"/>): the master's data connections prove it
/// (<see cref="DataPlaneHandshake"/>); null on the Akka transport.</param>
public sealed record JoinRun(RunPlan Plan, int WorkerIndex, int WorkerCount, string MasterEndpoint = "", byte[]? MasterKey = null) : IDistSgdMessage;

/// <summary>Worker → master: ready for the run's steps.</summary>
/// <param name="DataEndpoint">"host:port" of the worker's direct data plane, where θ goes; empty on the Akka transport.</param>
/// <param name="DataKey">The worker data plane's key: its data connections prove it; null on the Akka transport.</param>
public sealed record JoinAccepted(string RunId, int WorkerIndex, string DataEndpoint = "", byte[]? DataKey = null) : IDistSgdMessage;

/// <summary>Worker → master: cannot take part; <paramref name="Reason"/> says why (e.g. a data-shape mismatch).</summary>
public sealed record JoinRefused(string RunId, int WorkerIndex, string Reason) : IDistSgdMessage;

/// <summary>
/// Master → every participating worker: compute the gradient of your batch
/// <paramref name="StepInEpoch"/> of <paramref name="Epoch"/> at θ = <paramref name="Parameters"/>.
/// Reply: <see cref="GradientReply"/> for the same run and step. The array is never modified after sending.
/// </summary>
/// <param name="ShardIndex">The shard this worker computes on in this epoch (its rank among the epoch's participants);
/// −1 keeps the shard of its <see cref="JoinRun"/>.</param>
/// <param name="ShardCount">How many shards the training set is cut into in this epoch (the epoch's participants).</param>
/// <param name="BatchSize">0: the run's batch on shard <paramref name="ShardIndex"/> of <paramref name="ShardCount"/>. A balanced
/// epoch (--balance speed, <see cref="Numerics.Training.SpeedBalance"/>): this worker's batch, on the units
/// <paramref name="ShardIndex"/> to <paramref name="ShardIndex"/> + this − 1 of the training set cut into
/// <paramref name="ShardCount"/> units.</param>
public sealed record ComputeGradient(string RunId, long Step, int Epoch, int StepInEpoch, float[] Parameters,
                                     int ShardIndex = -1, int ShardCount = 0, int BatchSize = 0) : IPayloadMessage
{
    /// <inheritdoc/>
    public int PayloadBytes => WireFormat.Header(RunId) + 8 + 4 + 4 + 4 + 4 + 4 + WireFormat.Vector(Parameters);

    /// <summary>
    /// <see cref="Parameters"/> holds not θ but the step's compressed update, to add to θ of the step before
    /// (<see cref="ParameterUpdates"/>); the data plane's update frames only, never over Akka.
    /// </summary>
    public bool IsUpdate { get; init; }

    /// <summary>With <see cref="IsUpdate"/>: Σθ after the update, as the master computed it.</summary>
    public float Checksum { get; init; }

    /// <summary>The request a data-plane frame carries (<see cref="FrameDecoder"/>): the frame's sample count is the shard count.</summary>
    public static object FromFrame(in FrameHeader h, string runId, float[] values, bool? finite, Numerics.Tensors.SparseVector? entries) =>
        new ComputeGradient(runId, h.Step, h.Epoch, h.StepInEpoch, values, h.SampleCount > 0 ? h.Shard : -1, h.SampleCount, h.BatchSize)
        {
            IsUpdate = h.IsUpdate,
            Checksum = (float)h.LossSum,
        };
}

/// <summary>
/// Worker → master: the mean gradient over <paramref name="SampleCount"/> samples of its batch (empty
/// when the shard ran out), the summed loss of those samples, and how long computing took.
/// </summary>
public sealed record GradientReply(string RunId, long Step, int WorkerIndex, int SampleCount, double LossSum,
                                   double ComputeSeconds, float[] Gradient) : IGradientContribution
{
    /// <inheritdoc/>
    public int PayloadBytes => WireFormat.Header(RunId) + 8 + 4 + 4 + 8 + 8 + WireFormat.Vector(Gradient);

    int IGradientContribution.Participant => WorkerIndex;

    /// <inheritdoc/>
    public long FrameBytes { get; init; }

    /// <inheritdoc/>
    public bool? FiniteOnArrival { get; init; }

    /// <inheritdoc/>
    public Numerics.Tensors.SparseVector? Entries { get; init; }

    /// <summary>The reply a data-plane frame carries (<see cref="FrameDecoder"/>).</summary>
    public static object FromFrame(in FrameHeader h, string runId, float[] values, bool? finite, Numerics.Tensors.SparseVector? entries) =>
        new GradientReply(runId, h.Step, h.Sender, h.SampleCount, h.LossSum, h.ComputeSeconds, values) { FrameBytes = h.FrameBytes, FiniteOnArrival = finite, Entries = entries };
}

/// <summary>Master → workers: the run is over (finished or failed); stop computing for it.</summary>
public sealed record RunEnded(string RunId) : IDistSgdMessage;
