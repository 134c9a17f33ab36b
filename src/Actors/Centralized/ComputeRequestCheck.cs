using System.Numerics.Tensors;
using DistSgd.Actors.Steps;

namespace DistSgd.Actors.Centralized;

/// <summary>
/// A worker's rules for the θ it is asked to compute a gradient at (<see cref="ComputeGradient"/>), the counterpart
/// of <see cref="StepGather"/> at the master: a request is served only when it is for the run the worker joined,
/// from that run's master, of the model's length, finite, and not for a step before the last one served. A plain
/// class, so the rules are testable without an ActorSystem.
/// </summary>
/// <remarks>
/// The master asks a step again when no gradient arrived within distsgd.step-timeout, with the same θ: that is
/// served again. Another θ for a step already served is not the master's (its θ changes only between steps) and
/// is dropped as a <see cref="GatherOutcome.Duplicate"/>; Σθ, computed anyway for the finiteness check, tells the
/// two apart. There is no window ahead: a worker the master could not reach for some steps legitimately skips them.
/// </remarks>
public sealed class ComputeRequestCheck
{
    private readonly Dictionary<GatherOutcome, long> _dropped = new();
    private string? _runId;
    private int _parameterCount;
    private long _lastStep = -1;
    private float _lastSum;

    /// <summary>Requests dropped so far, by reason.</summary>
    public IReadOnlyDictionary<GatherOutcome, long> Dropped => _dropped;

    public long DroppedTotal => _dropped.Values.Sum();

    /// <summary>Starts serving <paramref name="runId"/>, whose model has <paramref name="parameterCount"/> parameters.</summary>
    public void Join(string runId, int parameterCount)
    {
        _runId = runId;
        _parameterCount = parameterCount;
        _lastStep = -1;
    }

    /// <summary>The run is over: every request is foreign until the next <see cref="Join"/>.</summary>
    public void Leave() => _runId = null;

    /// <param name="fromMaster">Whether the request came from the master that sent JoinRun (or, on the direct
    /// transport, from this node's data plane, whose frames were checked already).</param>
    public GatherOutcome Judge(ComputeGradient request, bool fromMaster)
    {
        var outcome = Rules(request, fromMaster);
        if (outcome != GatherOutcome.Accepted)
            _dropped[outcome] = _dropped.GetValueOrDefault(outcome) + 1;
        return outcome;
    }

    private GatherOutcome Rules(ComputeGradient request, bool fromMaster)
    {
        if (_runId is null || request.RunId != _runId)
            return GatherOutcome.ForeignRun;
        if (!fromMaster)
            return GatherOutcome.NotParticipant;
        if (request.Parameters.Length != _parameterCount)
            return GatherOutcome.WrongLength;
        if (request.Step < _lastStep)
            return GatherOutcome.StaleStep;
        float sum = TensorPrimitives.Sum(request.Parameters);
        if (!float.IsFinite(sum))
            return GatherOutcome.NonFinite;
        if (request.Step == _lastStep && sum != _lastSum)
            return GatherOutcome.Duplicate;
        _lastStep = request.Step;
        _lastSum = sum;
        return GatherOutcome.Accepted;
    }
}
