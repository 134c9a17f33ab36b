namespace DistSgd.Numerics.Training;

/// <summary>How long and in what pieces to train; validated at construction.</summary>
public sealed record TrainingOptions
{
    /// <param name="epochs">Upper bound on the number of passes over the training data.</param>
    /// <param name="batchSize">Samples per step (the global batch in the distributed modes).</param>
    /// <param name="seed">Seeds the initialisation and every epoch's shuffle.</param>
    /// <param name="patience">Stop after this many epochs without improvement of the training loss; 0 = never.</param>
    /// <param name="minDelta">The smallest decrease of the loss that counts as an improvement.</param>
    public TrainingOptions(int epochs, int batchSize, int seed, int patience = 0, double minDelta = 0)
    {
        if (epochs < 1)
            throw new ArgumentOutOfRangeException(nameof(epochs), epochs, "train for at least 1 epoch");
        if (batchSize < 1)
            throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "a batch needs at least 1 sample");
        if (patience < 0)
            throw new ArgumentOutOfRangeException(nameof(patience), patience, "patience must be ≥ 0 (0 = off)");
        if (!(minDelta >= 0) || !double.IsFinite(minDelta))
            throw new ArgumentOutOfRangeException(nameof(minDelta), minDelta, "min-delta must be a finite number ≥ 0");
        Epochs = epochs;
        BatchSize = batchSize;
        Seed = seed;
        Patience = patience;
        MinDelta = minDelta;
    }

    public int Epochs { get; }
    public int BatchSize { get; }
    public int Seed { get; }
    public int Patience { get; }
    public double MinDelta { get; }

    /// <summary>Steps in one epoch over <paramref name="sampleCount"/> samples (the last batch may be short).</summary>
    public long StepsPerEpoch(int sampleCount) => (sampleCount + (long)BatchSize - 1) / BatchSize;
}

/// <summary>What one epoch achieved; one row of metrics.csv.</summary>
/// <param name="Step">Optimizer steps taken so far, this epoch's included.</param>
/// <param name="TrainLoss">Mean training loss over the epoch's batches (weighted by batch size).</param>
/// <param name="TestLoss">
/// Mean loss on the test set after the epoch; NaN when not known here: without a test set, or for an epoch that
/// another node evaluated (a decentralized run's lead peer, lost since: <see cref="HasTestScore"/>).
/// </param>
/// <param name="TestAccuracy">Accuracy on the test set after the epoch (NaN for regression, or when the test loss is not known).</param>
/// <param name="Seconds">Wall time of the epoch's training steps.</param>
/// <param name="SamplesPerSecond">Training samples processed per second of <paramref name="Seconds"/>.</param>
/// <param name="LearningRate">The learning rate of the epoch's last step.</param>
/// <param name="Communication">Where the distributed modes' step time went; null for sequential runs.</param>
public sealed record EpochMetrics(int Epoch, long Step, double TrainLoss, double TestLoss, double TestAccuracy,
                                  double Seconds, double SamplesPerSecond, double LearningRate,
                                  StepTimeBreakdown? Communication = null)
{
    /// <summary>True when θ after the epoch was scored on the test set here (<see cref="TestLoss"/> is known).</summary>
    public bool HasTestScore => !double.IsNaN(TestLoss);
}

/// <summary>
/// Where an epoch's step time went in a distributed mode, summed over the epoch's steps. For each step:
/// compute = the slowest participant's gradient time (the critical path); imbalance = slowest − mean
/// compute (time the others sat idle); communication = the step's wall time − the slowest compute
/// (serialization, transfer, queueing); update = averaging and the optimizer step.
/// </summary>
public sealed record StepTimeBreakdown(long Steps, double ComputeSeconds, double ImbalanceSeconds,
                                       double CommunicationSeconds, double UpdateSeconds,
                                       long BytesSent, long BytesReceived, long DroppedMessages,
                                       double CommunicationMedianSeconds = double.NaN)
{
    public double StepSeconds => ComputeSeconds + CommunicationSeconds + UpdateSeconds;

    /// <summary>Share of the step time spent communicating.</summary>
    public double CommunicationShare => StepSeconds > 0 ? CommunicationSeconds / StepSeconds : 0;

    public double BytesPerStep => Steps > 0 ? (BytesSent + BytesReceived) / (double)Steps : 0;

    /// <summary>The run's dropped messages so far by kind (foreign_run, stale_step, wrong_length, …); null when not kept.</summary>
    public IReadOnlyDictionary<string, long>? DroppedByKind { get; init; }

    /// <summary>Each participant's compute in the epoch, by id (the lag report); null when not kept.</summary>
    public IReadOnlyList<NodeComputeTime>? Nodes { get; init; }

    /// <summary>The step's mean compute time, the slowest participant's (what each node's is compared with).</summary>
    public double ComputePerStep => Steps > 0 ? ComputeSeconds / Steps : 0;
}

/// <summary>
/// One participant's compute over an epoch's steps (the per-node lag report): how long its gradients took, against
/// the step's compute (the slowest participant's), and how many of its gradients came too late to be used.
/// </summary>
/// <param name="Id">Worker index or node id.</param>
/// <param name="Steps">Steps its gradient was used in.</param>
/// <param name="ComputeSeconds">The compute time of those gradients, summed.</param>
/// <param name="SlowestSteps">Steps in which it was the slowest participant (the step waited for it).</param>
/// <param name="LateGradients">Its gradients that arrived after their step had finished without them (backup workers).</param>
public sealed record NodeComputeTime(int Id, long Steps, double ComputeSeconds, long SlowestSteps, long LateGradients)
{
    /// <summary>Mean compute time of one of its gradients.</summary>
    public double ComputePerStep => Steps > 0 ? ComputeSeconds / Steps : 0;
}

/// <summary>Why training ended.</summary>
public enum StopReason
{
    EpochLimit,
    LossPlateau,
    Cancelled,
}

/// <summary>The outcome of a training run: every epoch's metrics and why it stopped.</summary>
public sealed record TrainingResult(IReadOnlyList<EpochMetrics> Epochs, StopReason StopReason, double TotalSeconds)
{
    public EpochMetrics? Final => Epochs.Count > 0 ? Epochs[^1] : null;
}

/// <summary>
/// Thrown when the loss or the parameters stop being finite numbers: the learning rate is almost
/// always too large. The model file already written is left untouched.
/// </summary>
public sealed class TrainingDivergedException(string message) : Exception(message)
{
    /// <summary>The message every mode gives: where it diverged, and a learning rate to try instead.</summary>
    public static string Describe(int epoch, long step, double loss, double rate, double baseRate) =>
        $"training diverged at epoch {epoch}, step {step + 1}: the loss is {loss}. " +
        $"The learning rate {rate:G4} is probably too large; try a smaller --lr (e.g. {baseRate / 10:G4}).";
}

/// <summary>
/// One finished step of a sequential epoch, for a progress display: <see cref="LossSum"/> over the
/// <see cref="Samples"/> of the epoch so far, <see cref="Seconds"/> since the epoch began.
/// </summary>
public readonly record struct StepReport(int Epoch, long StepInEpoch, long StepsPerEpoch, double LossSum, long Samples, double Seconds);
