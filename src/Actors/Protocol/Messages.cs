using Akka.Actor;
using DistSgd.Numerics.Compression;
using DistSgd.Numerics.Models;
using DistSgd.Numerics.Tensors;
using DistSgd.Numerics.Training;

namespace DistSgd.Actors.Protocol;

/// <summary>
/// Marker of every message DistSgd sends between nodes; bound to <c>Codec.DistSgdSerializer</c> in the
/// embedded reference.conf, so no project message can fall back to Akka's JSON serializer.
/// </summary>
public interface IDistSgdMessage
{
}

/// <summary>
/// What a distributed run trains, described once by the node that starts it and checked by every
/// node against its own data and its own run configuration before the first step.
/// </summary>
/// <param name="RunId">Identifies the run; every step message carries it and foreign ones are dropped.</param>
/// <param name="BatchSizePerWorker">Samples per worker per step; the global batch is this × workers.</param>
/// <param name="TrainCount">Training samples every node must see (a check that all nodes read the same data).</param>
/// <param name="StepsPerEpoch">Synchronous steps per epoch (the largest shard's batch count).</param>
/// <param name="Hyperparameters">
/// The rest of the run configuration that every node must share (optimizer, schedule, stop rule, input
/// preprocessing), as "key=value" pairs separated by ';' in a fixed order, so that a difference can be named.
/// </param>
/// <param name="Collective">How the decentralized peers combine their shares each step (every peer must use the same);
/// the centralized mode has none and keeps <see cref="Collective.AllGather"/>.</param>
public sealed record RunPlan(string RunId, ModelSpec Spec, int BatchSizePerWorker, int Seed, int Epochs,
                             int TrainCount, int StepsPerEpoch, string Hyperparameters = "", Collective Collective = Collective.AllGather)
{
    /// <summary>
    /// How this run's gradients travel (the hyper-parameters wire, compress and fp16-scale; dense float32 when absent):
    /// every node of the run encodes and decodes its gradient frames this way.
    /// </summary>
    public ShareEncoding Wire => ShareEncoding.FromKeys(Hyperparameters);

    /// <summary>Steps between model averages, H (the hyper-parameter sync-every; 1, gradient averaging, when absent): <see cref="LocalSgd"/>.</summary>
    public int SyncEvery => LocalSgd.FromKeys(Hyperparameters);

    /// <summary>
    /// A decentralized run's --balance speed (the hyper-parameter balance=speed): every peer plans the epoch's batches from
    /// the shares' compute times (<see cref="Steps.BatchBalancer"/>). A centralized master's balance is its own, not the plan's.
    /// </summary>
    public bool BalanceBySpeed => Hyperparameters.Split(';').Contains(BalanceKey);

    /// <summary>The hyper-parameter that says <see cref="BalanceBySpeed"/>.</summary>
    public const string BalanceKey = "balance=speed";

    /// <summary>Human description, for logs and mismatch messages.</summary>
    public override string ToString() =>
        $"run {RunId}: {Spec}, batch {BatchSizePerWorker}/worker, seed {Seed}, {Epochs} epochs × {StepsPerEpoch} steps, {TrainCount} samples" +
        (Hyperparameters.Length > 0 ? $", {Hyperparameters.Replace(";", ", ")}" : "") +
        (Collective != Collective.AllGather ? $", collective {Collective.Name()}" : "");

    /// <summary>
    /// What differs between this plan (<paramref name="here"/>) and <paramref name="other"/>
    /// (<paramref name="there"/>), one "what: here's value vs there's value" per difference; empty when they
    /// describe the same run. The run ids are not compared.
    /// </summary>
    public IReadOnlyList<string> Differences(RunPlan other, string here = "here", string there = "there")
    {
        var differences = new List<string>();
        void Compare<T>(string what, T mine, T theirs)
        {
            if (!EqualityComparer<T>.Default.Equals(mine, theirs))
                differences.Add($"{what}: {mine} {here} vs {theirs} {there}");
        }
        Compare("model", Spec.ToString(), other.Spec.ToString());
        if (Spec.ToString() == other.Spec.ToString() && !Spec.Equals(other.Spec))
            differences.Add($"model: {Spec.Kind}/{Spec.Activation} {here} vs {other.Spec.Kind}/{other.Spec.Activation} {there}");
        Compare("batch size per worker", BatchSizePerWorker, other.BatchSizePerWorker);
        Compare("seed", Seed, other.Seed);
        Compare("epochs", Epochs, other.Epochs);
        Compare("training samples", TrainCount, other.TrainCount);
        Compare("steps per epoch", StepsPerEpoch, other.StepsPerEpoch);
        Compare("collective", Collective.Name(), other.Collective.Name());
        differences.AddRange(RunIdentity.Differences(Hyperparameters, other.Hyperparameters, here, there));
        return differences;
    }

    /// <summary>Why this node's training set (<paramref name="train"/>) cannot serve the plan, or null when it can.</summary>
    public string? DataMismatch(Numerics.Data.Dataset train)
    {
        if (train.Count != TrainCount)
            return $"this node has {train.Count} training samples, the run expects {TrainCount} (every node must read the same data)";
        if (train.FeatureCount != Spec.InputCount)
            return $"this node's data has {train.FeatureCount} features, the model {Spec} expects {Spec.InputCount}";
        if (train.ClassCount != Spec.ClassCount)
            return $"this node's data has {train.ClassCount} classes, the model {Spec} expects {Spec.ClassCount}";
        return null;
    }
}

/// <summary>
/// One participant's gradient for one synchronous step: a worker's reply to the master (centralized) or a
/// peer's share to every peer (decentralized). The step bookkeeping (<see cref="Steps.StepGather"/>) judges
/// and orders both kinds the same way.
/// </summary>
public interface IGradientContribution : IPayloadMessage
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

    /// <summary>The mean gradient over the samples (as the wire delivered it); never modified after sending.</summary>
    float[] Gradient { get; }

    /// <summary>The bytes of the data-plane frame it arrived in (header and encoded payload); 0 when it came over Akka.</summary>
    long FrameBytes { get; }

    /// <summary>
    /// Whether every value of <see cref="Gradient"/> is finite, as the data plane's reader judged it while the frame arrived
    /// (<see cref="Numerics.Tensors.FiniteValues"/>); null when nobody judged it yet (it came over Akka, or is this node's
    /// own). Set on this node only, never sent: the gather trusts its own reader, not the sender.
    /// </summary>
    bool? FiniteOnArrival => null;

    /// <summary>
    /// The entries of <see cref="Gradient"/> when its encoding is sparse (top-k) and they are known on this node: as the
    /// data plane decoded them, or as this node's compressor kept them; <see cref="Gradient"/> is +0 everywhere else. Null:
    /// not known (dense, or it came over Akka). Set on this node only, never sent: the step averages the entries alone
    /// when every share of the step has them (<see cref="Numerics.Optim.SgdOptimizer.AverageEntriesAndStep"/>, decision 0141).
    /// </summary>
    Numerics.Tensors.SparseVector? Entries => null;

    /// <summary>The bytes it took on the wire: its frame's, or the message's serialized size over Akka.</summary>
    long WireBytes => FrameBytes > 0 ? FrameBytes : PayloadBytes;
}
