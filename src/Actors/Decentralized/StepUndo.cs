using DistSgd.Actors.Protocol;
using DistSgd.Numerics.Optim;

namespace DistSgd.Actors.Decentralized;

/// <summary>
/// What a peer needs to redo its last applied step with other shares after a peer loss
/// (<see cref="MembershipDecision.RolledBack"/>): θ and the optimizer state before that step, the step's number and
/// the shares it used. A plain class: the peer captures before every update and records after it.
/// </summary>
/// <remarks>A copy, not a subtraction: restoring gives back exactly the bits before the step.</remarks>
public sealed class StepUndo
{
    private readonly float[] _parameters;
    private readonly float[] _velocity;
    private readonly List<GradientShare> _shares = new();
    private long _optimizerStep;

    public StepUndo(int parameterCount, int velocityLength)
    {
        _parameters = new float[parameterCount];
        _velocity = new float[velocityLength];
    }

    /// <summary>The last step applied (−1: none yet).</summary>
    public long AppliedStep { get; private set; } = -1;

    /// <summary>The shares the last applied step used, in node-id order.</summary>
    public IReadOnlyList<GradientShare> Shares => _shares;

    /// <summary>Copies θ and the optimizer state before a step is applied.</summary>
    public void Capture(float[] parameters, SgdState state)
    {
        parameters.CopyTo(_parameters, 0);
        state.Velocity.CopyTo(_velocity, 0);
        _optimizerStep = state.Step;
    }

    /// <summary>
    /// Records the step just applied and its shares; <paramref name="released"/> is called with every gradient array of
    /// the step before it that the new step does not use (it can no longer be redone, so its arrays may be reused).
    /// </summary>
    public void Applied(long step, IReadOnlyCollection<IGradientContribution> shares, Action<float[]>? released = null)
    {
        if (released is not null)
            foreach (var old in _shares)
                if (!shares.Any(s => ReferenceEquals(((GradientShare)s).Gradient, old.Gradient)))
                    released(old.Gradient);
        _shares.Clear();
        foreach (var share in shares)
            _shares.Add((GradientShare)share);
        AppliedStep = step;
    }

    /// <summary>Puts back θ and the optimizer state as they were before the last applied step.</summary>
    public void Restore(float[] parameters, SgdOptimizer optimizer)
    {
        _parameters.CopyTo(parameters, 0);
        optimizer.Restore(new SgdState(_optimizerStep, _velocity));
    }

    /// <summary>Whether the last applied step used <paramref name="gradient"/> (it may still be redone).</summary>
    public bool Uses(float[] gradient) => _shares.Any(s => ReferenceEquals(s.Gradient, gradient));
}
