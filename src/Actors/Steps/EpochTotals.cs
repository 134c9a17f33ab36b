using DistSgd.Actors.Protocol;
using DistSgd.Numerics.Models;
using DistSgd.Numerics.Training;

namespace DistSgd.Actors.Steps;

/// <summary>
/// Sums of an epoch's step measurements, kept the same way by the master and by every peer, and turned into
/// the epoch's <see cref="EpochMetrics"/>.
/// </summary>
public sealed class EpochTotals
{
    public long Steps { get; private set; }
    public long Samples { get; private set; }
    public double LossSum { get; private set; }
    public double Compute { get; private set; }
    public double Imbalance { get; private set; }
    public double Communication { get; private set; }
    public double Update { get; private set; }
    public double LearningRate { get; private set; }
    public long BytesSent { get; private set; }
    public long BytesReceived { get; private set; }

    /// <summary>Where the steps and bytes are also counted live (<see cref="RunMeters"/>), or null.</summary>
    public NodeMeters? Meters { get; set; }

    /// <summary>Payload bytes this coordinator sent.</summary>
    public void AddSent(long bytes)
    {
        BytesSent += bytes;
        Meters?.Sent(bytes);
    }

    /// <summary>Payload bytes this coordinator received.</summary>
    public void AddReceived(long bytes)
    {
        BytesReceived += bytes;
        Meters?.Received(bytes);
    }

    public EpochTotals()
    {
    }

    /// <summary>The totals of a resumed epoch: the sums of its steps before the checkpoint (<see cref="ToProgress"/>).</summary>
    public EpochTotals(EpochProgress progress)
    {
        ArgumentNullException.ThrowIfNull(progress);
        (Steps, Samples, LossSum, LearningRate) = (progress.Steps, progress.Samples, progress.LossSum, progress.LearningRate);
        (Compute, Imbalance, Communication, Update) = (progress.ComputeSeconds, progress.ImbalanceSeconds, progress.CommunicationSeconds, progress.UpdateSeconds);
        (BytesSent, BytesReceived) = (progress.BytesSent, progress.BytesReceived);
    }

    /// <summary>The sums so far, for a checkpoint (the per-step communication times behind the median are not kept).</summary>
    public EpochProgress ToProgress() =>
        new(Steps, Samples, LossSum, LearningRate, Compute, Imbalance, Communication, Update, BytesSent, BytesReceived);

    /// <summary>Every step's communication time: the median is what a transport is judged by (the mean carries the pauses).</summary>
    private readonly List<double> _stepCommunication = new(1024);

    /// <summary>Mean training loss of the epoch's samples (NaN before any).</summary>
    public double TrainLoss => Samples > 0 ? LossSum / Samples : double.NaN;

    /// <summary>
    /// Adds one finished step: compute = the slowest contribution (the critical path), imbalance = slowest − mean,
    /// communication = the step's wall time − the slowest compute. Returns the step's summed loss, in participant order.
    /// </summary>
    public double AddStep(IReadOnlyList<IGradientContribution> contributions, long samples, double wallSeconds,
                          double updateSeconds, double learningRate)
    {
        _beforeLast = (Steps, Samples, LossSum, Compute, Imbalance, Communication, Update, LearningRate);
        double lossSum = 0, slowest = 0, computeSum = 0;
        for (int i = 0; i < contributions.Count; i++)
        {
            var c = contributions[i];
            lossSum += c.LossSum;
            slowest = Math.Max(slowest, c.ComputeSeconds);
            computeSum += c.ComputeSeconds;
        }
        Steps++;
        Samples += samples;
        LossSum += lossSum;
        Compute += slowest;
        Imbalance += slowest - computeSum / Math.Max(1, contributions.Count);
        Communication += Math.Max(0, wallSeconds - slowest);
        _stepCommunication.Add(Math.Max(0, wallSeconds - slowest));
        Update += updateSeconds;
        LearningRate = learningRate;
        Meters?.Step(samples, lossSum, slowest, Math.Max(0, wallSeconds - slowest));
        return lossSum;
    }

    /// <summary>
    /// Takes back the last <see cref="AddStep"/>, exactly (the sums as they were, not a subtraction): a peer that
    /// redoes a step with other shares after a peer loss counts it once. Once per AddStep.
    /// </summary>
    public void UndoLastStep()
    {
        if (_beforeLast is not { } b)
            throw new InvalidOperationException("no step to take back");
        (Steps, Samples, LossSum, Compute, Imbalance, Communication, Update, LearningRate) = b;
        _stepCommunication.RemoveAt(_stepCommunication.Count - 1);
        _beforeLast = null;
    }

    private (long, long, double, double, double, double, double, double)? _beforeLast;

    /// <summary>The epoch's metrics; <paramref name="score"/> is the test-set score, or null without one.</summary>
    /// <param name="droppedByKind">The run's dropped messages by kind so far (<see cref="DroppedMessages.ByKind"/>), or null.</param>
    public EpochMetrics ToMetrics(int epoch, long step, Score? score, bool classification, long droppedMessages,
                                  IReadOnlyDictionary<string, long>? droppedByKind = null)
    {
        double seconds = Compute + Communication + Update;
        return new EpochMetrics(
            epoch, step, TrainLoss,
            score is { } s ? s.MeanLoss : double.NaN,
            score is { } c && classification ? c.Accuracy : double.NaN,
            seconds, Samples / Math.Max(seconds, 1e-9), LearningRate,
            new StepTimeBreakdown(Steps, Compute, Imbalance, Communication, Update, BytesSent, BytesReceived, droppedMessages,
                                  CommunicationMedian()) { DroppedByKind = droppedByKind });
    }

    private double CommunicationMedian()
    {
        if (_stepCommunication.Count == 0)
            return double.NaN;
        _stepCommunication.Sort();
        return _stepCommunication[_stepCommunication.Count / 2];
    }
}
