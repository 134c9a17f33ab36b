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
        int slowestAt = -1;
        for (int i = 0; i < contributions.Count; i++)
        {
            var c = contributions[i];
            lossSum += c.LossSum;
            if (slowestAt < 0 || c.ComputeSeconds > slowest)
                (slowest, slowestAt) = (c.ComputeSeconds, i);
            computeSum += c.ComputeSeconds;
        }
        AddNodes(contributions, slowestAt);
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
    /// Samples other peers processed at this epoch's local steps of local-SGD rounds (<see cref="CountSamplesElsewhere"/>):
    /// in the samples per second, not in the training loss (their losses stay with them).
    /// </summary>
    public long SamplesElsewhere { get; private set; }

    /// <summary>
    /// A decentralized local step (a peer's alone, decision 0137): <paramref name="samples"/> the other peers processed at
    /// it count towards the epoch's samples per second, as every peer's samples of a step that averages do.
    /// </summary>
    public void CountSamplesElsewhere(long samples) => SamplesElsewhere += samples;

    /// <summary>Samples every participant processed this epoch: <see cref="Samples"/> and <see cref="SamplesElsewhere"/> (the samples per second).</summary>
    public long ProcessedSamples => Samples + SamplesElsewhere;

    /// <summary>
    /// Steps taken by the workers alone inside a centralized local-SGD round (their samples and loss arrive with the round's
    /// last step, <see cref="AddStep"/>): counted, so that an epoch reports every step of the run.
    /// </summary>
    public void CountLocalSteps(long steps) => Steps += steps;

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
        foreach (var (id, seconds, wasSlowest) in _lastNodes)
        {
            var node = _nodes[id];
            node.Steps--;
            node.Compute -= seconds;
            node.Slowest -= wasSlowest ? 1 : 0;
        }
        _lastNodes.Clear();
        _beforeLast = null;
    }

    private (long, long, double, double, double, double, double, double)? _beforeLast;

    /// <summary>Each participant's sums this epoch (the lag report), by id.</summary>
    private readonly SortedDictionary<int, NodeSums> _nodes = new();

    /// <summary>What the last <see cref="AddStep"/> added per participant, for <see cref="UndoLastStep"/> (reused).</summary>
    private readonly List<(int Id, double Seconds, bool Slowest)> _lastNodes = new();

    private sealed class NodeSums
    {
        public long Steps;
        public double Compute;
        public long Slowest;
        public long Late;
    }

    private void AddNodes(IReadOnlyList<IGradientContribution> contributions, int slowestAt)
    {
        _lastNodes.Clear();
        for (int i = 0; i < contributions.Count; i++)
        {
            var c = contributions[i];
            if (c.SampleCount == 0)
                continue;   // a participant whose shard ran out computed nothing
            var node = Node(c.Participant);
            node.Steps++;
            node.Compute += c.ComputeSeconds;
            node.Slowest += i == slowestAt ? 1 : 0;
            _lastNodes.Add((c.Participant, c.ComputeSeconds, i == slowestAt));
        }
    }

    private NodeSums Node(int id)
    {
        if (!_nodes.TryGetValue(id, out var node))
            _nodes[id] = node = new NodeSums();
        return node;
    }

    /// <summary>A gradient of <paramref name="participant"/> came after its step finished without it (backup workers).</summary>
    public void CountLate(int participant) => Node(participant).Late++;

    /// <summary>Each participant's compute so far this epoch, by id (the lag report); null before any.</summary>
    public IReadOnlyList<NodeComputeTime>? NodeComputeTimes() => _nodes.Count == 0 ? null
        : _nodes.Select(n => new NodeComputeTime(n.Key, n.Value.Steps, n.Value.Compute, n.Value.Slowest, n.Value.Late)).ToList();

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
            seconds, ProcessedSamples / Math.Max(seconds, 1e-9), LearningRate,
            new StepTimeBreakdown(Steps, Compute, Imbalance, Communication, Update, BytesSent, BytesReceived, droppedMessages,
                                  CommunicationMedian()) { DroppedByKind = droppedByKind, Nodes = NodeComputeTimes() });
    }

    private double CommunicationMedian()
    {
        if (_stepCommunication.Count == 0)
            return double.NaN;
        _stepCommunication.Sort();
        return _stepCommunication[_stepCommunication.Count / 2];
    }
}
