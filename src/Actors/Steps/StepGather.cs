using DistSgd.Numerics.Tensors;
using DistSgd.Actors.Collectives;
using DistSgd.Actors.Protocol;

namespace DistSgd.Actors.Steps;

/// <summary>What happened to a gradient offered to a step.</summary>
public enum GatherOutcome
{
    Accepted,
    /// <summary>For a later step: held by a <see cref="StepBuffer"/> until that step begins.</summary>
    Buffered,
    ForeignRun,
    StaleStep,
    FutureStep,
    NotParticipant,
    Duplicate,
    WrongLength,
    NonFinite,
    /// <summary>For a step that finished without it (backup workers: the first N − B gradients were enough).</summary>
    Late,
}

/// <summary>
/// The bookkeeping of one synchronous step, the master's and every peer's: who it waits for, what has
/// arrived, and what was dropped and why. A plain class, so the rules are testable without an ActorSystem.
/// </summary>
/// <remarks>
/// A gradient is applied only when it is for this run and this step, comes from a participant that has
/// not already answered, has the model's length (or is empty with 0 samples) and every value finite. Anything
/// else is dropped and counted by reason.
/// <para>With an all-reduce (<see cref="ReduceWith"/>) the contributions carry each participant's sample count, loss and
/// compute time but no vector (empty gradients): the step's average is the all-reduce's, and the step is complete when
/// every participant answered and the all-reduce is complete.</para>
/// </remarks>
public sealed class StepGather
{
    /// <summary>The accepted contributions, kept sorted by participant (a list: no allocation per step, unlike a sorted dictionary).</summary>
    private readonly List<IGradientContribution> _replies = new();
    private readonly HashSet<int> _waitingFor = new();
    private readonly HashSet<int> _participants = new();
    private readonly HashSet<int> _nonFinite = new();
    private readonly Dictionary<GatherOutcome, long> _dropped = new();
    private readonly List<ReadOnlyMemory<float>> _shareBuffer = new();
    private readonly List<int> _weightBuffer = new();
    private readonly List<SparseVector?> _entriesBuffer = new();
    private readonly HashSet<int> _missing = new();

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

    private IAllReduce? _reduction;

    /// <summary>
    /// The all-reduce that makes the open step's average, or null: the average of the contributions (the all-gather, and
    /// a local step of a local-SGD round, which gathers this peer's own whole share; <see cref="Begin"/>).
    /// </summary>
    public IAllReduce? Reduction => IsLocal ? null : _reduction;

    /// <summary>True when the run's averaging steps are made by an all-reduce (<see cref="ReduceWith"/>), whatever the open step is.</summary>
    public bool Reduces => _reduction is not null;

    /// <summary>True when the open step is a local step of a local-SGD round: this peer's own share, whole, and no all-reduce.</summary>
    public bool IsLocal { get; private set; }

    /// <summary>From now on the steps' averages are <paramref name="reduction"/>'s, and the contributions carry no vector.</summary>
    public void ReduceWith(IAllReduce reduction) => _reduction = reduction;

    /// <summary>
    /// True when every participant still counted has answered, or (with <see cref="FinishWith"/> set) that many have:
    /// the rest are not waited for; and the all-reduce, if any, is complete.
    /// </summary>
    public bool IsComplete => IsOpen && (_waitingFor.Count == 0 || (FinishWith > 0 && _replies.Count + _nonFinite.Count >= FinishWith))
                              && (Reduction?.IsComplete ?? true);

    /// <summary>Gradients the open step finishes with, before every participant answered (backup workers); 0 = all of them.</summary>
    public int FinishWith { get; private set; }

    /// <summary>True when <paramref name="participant"/> takes part in the open step.</summary>
    public bool Includes(int participant) => _participants.Contains(participant);

    /// <summary>The accepted contributions, in participant order (the order the average sums them in).</summary>
    public IReadOnlyList<IGradientContribution> Replies => _replies;

    /// <summary>The participants the step still waits for: their contribution, or (with an all-reduce) their parts.</summary>
    public IReadOnlyCollection<int> WaitingFor
    {
        get
        {
            if (Reduction is null || !IsOpen || Reduction.IsComplete)
                return _waitingFor;
            _missing.Clear();
            _missing.UnionWith(_waitingFor);
            Reduction.AddMissing(_missing);
            return _missing;
        }
    }

    /// <summary>Messages dropped so far, by reason.</summary>
    public IReadOnlyDictionary<GatherOutcome, long> Dropped => _dropped;

    public long DroppedTotal => _dropped.Values.Sum();

    /// <param name="finishWith">Gradients the step finishes with, before every participant answered (backup workers); 0 = all.</param>
    /// <param name="local">A local step of a local-SGD round (<see cref="IsLocal"/>): <paramref name="participants"/> is this peer alone.</param>
    public void Begin(long step, IEnumerable<int> participants, int finishWith = 0, bool local = false)
    {
        Step = step;
        FinishWith = finishWith;
        IsLocal = local;
        _replies.Clear();
        _waitingFor.Clear();
        // The participants rarely change between steps: reuse the last set rather than enumerate theirs (a sorted set's
        // enumerator allocates).
        if (!SameParticipants(participants))
        {
            _participants.Clear();
            _participants.UnionWith(participants);
        }
        foreach (int participant in _participants)
            _waitingFor.Add(participant);
        _nonFinite.Clear();
        IsOpen = true;
    }

    /// <param name="fromParticipant">False when the actor knows the message did not come from the participant it
    /// names (on the Akka transport, a sender other than that worker's actor): dropped as NotParticipant.</param>
    public GatherOutcome Offer(IGradientContribution reply, bool fromParticipant = true)
    {
        var outcome = Judge(reply, fromParticipant);
        if (outcome == GatherOutcome.Accepted)
        {
            int at = _replies.Count;
            while (at > 0 && _replies[at - 1].Participant > reply.Participant)
                at--;
            _replies.Insert(at, reply);
            _waitingFor.Remove(reply.Participant);
        }
        else
        {
            _dropped[outcome] = _dropped.GetValueOrDefault(outcome) + 1;
            // A participant that answered with NaN or ∞ has answered: never applied, not waited for
            // either, so a diverging run ends at once instead of timing out step after step.
            if (outcome == GatherOutcome.NonFinite && _waitingFor.Remove(reply.Participant))
                _nonFinite.Add(reply.Participant);
        }
        return outcome;
    }

    /// <summary>
    /// Writes the step's gradient ḡ = Σ nᵢ·gᵢ / Σ nᵢ into <paramref name="result"/>, summing the accepted
    /// contributions in participant order (never arrival order, so every replica gets the same bits);
    /// returns Σ nᵢ, the step's sample count.
    /// </summary>
    public long Average(Span<float> result)
    {
        var (gradients, weights) = Shares();
        return Numerics.Training.GradientAggregation.WeightedAverage(gradients, weights, result);
    }

    /// <summary>
    /// The accepted contributions' gradients and sample counts, in participant order (the order the average sums them
    /// in): lists the gather reuses, valid until the next call.
    /// </summary>
    public (IReadOnlyList<ReadOnlyMemory<float>> Gradients, IReadOnlyList<int> Weights) Shares()
    {
        _shareBuffer.Clear();
        _weightBuffer.Clear();
        for (int i = 0; i < _replies.Count; i++)
        {
            _shareBuffer.Add(_replies[i].Gradient);
            _weightBuffer.Add(_replies[i].SampleCount);
        }
        return (_shareBuffer, _weightBuffer);
    }

    /// <summary>
    /// The accepted contributions' sparse entries in participant order, beside <see cref="Shares"/>'s weights (a list the
    /// gather reuses, valid until the next call), when every contribution with samples carries them and one does (a sparse
    /// encoding's shares as the data plane decoded them, and this node's own as its compressor kept them); else null: the
    /// step averages the dense vectors (decision 0141).
    /// </summary>
    public IReadOnlyList<SparseVector?>? Entries()
    {
        _entriesBuffer.Clear();
        bool any = false;
        for (int i = 0; i < _replies.Count; i++)
        {
            var reply = _replies[i];
            if (reply.SampleCount > 0 && reply.Entries is null)
                return null;
            any |= reply.SampleCount > 0;
            _entriesBuffer.Add(reply.Entries);
        }
        return any ? _entriesBuffer : null;
    }

    /// <summary>Counts a message dropped outside <see cref="Offer"/> (a late gradient the master recognised).</summary>
    public void CountDropped(GatherOutcome reason) => _dropped[reason] = _dropped.GetValueOrDefault(reason) + 1;

    /// <summary>Stops waiting for a participant (unreachable, removed, refused); true if the step was waiting for it.</summary>
    public bool Forget(int participant) => _waitingFor.Remove(participant);

    /// <summary>Participants whose gradient for this step was not finite (dropped, not waited for).</summary>
    public IReadOnlyCollection<int> NonFinite => _nonFinite;

    /// <summary>Closes the step: later replies for it count as stale.</summary>
    public void Close() => IsOpen = false;

    private bool SameParticipants(IEnumerable<int> participants)
    {
        if (participants is not ICollection<int> collection || collection.Count != _participants.Count)
            return false;
        foreach (int participant in _participants)
            if (!collection.Contains(participant))
                return false;
        return true;
    }

    private bool HasReplyOf(int participant)
    {
        for (int i = 0; i < _replies.Count; i++)
            if (_replies[i].Participant == participant)
                return true;
        return false;
    }

    private GatherOutcome Judge(IGradientContribution reply, bool fromParticipant)
    {
        if (reply.RunId != RunId)
            return GatherOutcome.ForeignRun;
        if (reply.Step < Step || (reply.Step == Step && !IsOpen))
            return GatherOutcome.StaleStep;
        if (reply.Step > Step)
            return GatherOutcome.FutureStep;
        if (HasReplyOf(reply.Participant))
            return GatherOutcome.Duplicate;
        if (!_waitingFor.Contains(reply.Participant) || !fromParticipant)
            return GatherOutcome.NotParticipant;
        if (reply.SampleCount < 0 || (reply.SampleCount == 0 || Reduction is not null ? reply.Gradient.Length != 0 : reply.Gradient.Length != ParameterCount)
            || reply.Entries is { } entries && entries.Length != ParameterCount)
            return GatherOutcome.WrongLength;
        // Judged by the data plane's reader as the frame arrived, when it came that way; else here, by the same rule.
        if (reply.SampleCount > 0 && (!(reply.FiniteOnArrival ?? FiniteValues.All(reply.Gradient)) || !double.IsFinite(reply.LossSum)))
            return GatherOutcome.NonFinite;
        return GatherOutcome.Accepted;
    }
}
