using System.Numerics.Tensors;

namespace DistSgd.Actors.Centralized;

/// <summary>What happened to a gradient offered to a step.</summary>
public enum GatherOutcome
{
    Accepted,
    ForeignRun,
    StaleStep,
    FutureStep,
    NotParticipant,
    Duplicate,
    WrongLength,
    NonFinite,
}

/// <summary>
/// The master's bookkeeping for one synchronous step: who it waits for, what has arrived, and what was
/// dropped and why. A plain class, so the rules are testable without an ActorSystem.
/// </summary>
/// <remarks>
/// A gradient is applied only when it is for this run and this step, comes from a participant that has
/// not already answered, has the model's length (or is empty with 0 samples) and is finite. Anything
/// else is dropped and counted by reason.
/// </remarks>
public sealed class StepGather
{
    private readonly SortedDictionary<int, GradientReply> _replies = new();
    private readonly HashSet<int> _waitingFor = new();
    private readonly Dictionary<GatherOutcome, long> _dropped = new();

    public StepGather(string runId, int parameterCount)
    {
        RunId = runId;
        ParameterCount = parameterCount;
    }

    public string RunId { get; }

    public int ParameterCount { get; }

    /// <summary>The step being gathered; −1 before the first.</summary>
    public long Step { get; private set; } = -1;

    public bool IsOpen { get; private set; }

    /// <summary>True when every participant still counted has answered.</summary>
    public bool IsComplete => IsOpen && _waitingFor.Count == 0;

    /// <summary>The accepted replies, in worker-index order (the order the average sums them in).</summary>
    public IReadOnlyCollection<GradientReply> Replies => _replies.Values;

    public IReadOnlyCollection<int> WaitingFor => _waitingFor;

    /// <summary>Messages dropped so far, by reason.</summary>
    public IReadOnlyDictionary<GatherOutcome, long> Dropped => _dropped;

    public long DroppedTotal => _dropped.Values.Sum();

    public void Begin(long step, IEnumerable<int> participants)
    {
        Step = step;
        _replies.Clear();
        _waitingFor.Clear();
        _waitingFor.UnionWith(participants);
        IsOpen = true;
    }

    public GatherOutcome Offer(GradientReply reply)
    {
        var outcome = Judge(reply);
        if (outcome == GatherOutcome.Accepted)
        {
            _replies[reply.WorkerIndex] = reply;
            _waitingFor.Remove(reply.WorkerIndex);
        }
        else
        {
            _dropped[outcome] = _dropped.GetValueOrDefault(outcome) + 1;
        }
        return outcome;
    }

    /// <summary>Stops waiting for a participant (unreachable, removed, refused); true if the step was waiting for it.</summary>
    public bool Forget(int participant) => _waitingFor.Remove(participant);

    /// <summary>Closes the step: later replies for it count as stale.</summary>
    public void Close() => IsOpen = false;

    private GatherOutcome Judge(GradientReply reply)
    {
        if (reply.RunId != RunId)
            return GatherOutcome.ForeignRun;
        if (reply.Step < Step || (reply.Step == Step && !IsOpen))
            return GatherOutcome.StaleStep;
        if (reply.Step > Step)
            return GatherOutcome.FutureStep;
        if (_replies.ContainsKey(reply.WorkerIndex))
            return GatherOutcome.Duplicate;
        if (!_waitingFor.Contains(reply.WorkerIndex))
            return GatherOutcome.NotParticipant;
        if (reply.SampleCount < 0 || (reply.SampleCount == 0 ? reply.Gradient.Length != 0 : reply.Gradient.Length != ParameterCount))
            return GatherOutcome.WrongLength;
        if (reply.SampleCount > 0 && (!float.IsFinite(TensorPrimitives.Sum(reply.Gradient)) || !double.IsFinite(reply.LossSum)))
            return GatherOutcome.NonFinite;
        return GatherOutcome.Accepted;
    }
}
