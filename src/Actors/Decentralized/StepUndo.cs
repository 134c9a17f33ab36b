using DistSgd.Actors.Protocol;
using DistSgd.Numerics.Optim;

namespace DistSgd.Actors.Decentralized;

/// <summary>
/// What a peer needs to redo its last applied step with other shares after a peer loss
/// (<see cref="MembershipDecision.RolledBack"/>): θ and the optimizer state before that step, the step's number and
/// the shares it used. A plain class: the peer captures before every update and records after it.
/// </summary>
/// <remarks>
/// A copy, not a subtraction: restoring gives back exactly the bits before the step. The copy is made by the update
/// itself, in its one pass over memory (<see cref="Steps.Replica.KeepStateBeforeEachStep"/> with
/// <see cref="ParametersBefore"/> and <see cref="VelocityBefore"/>; the peer calls <see cref="Capturing"/> before the
/// update), or by <see cref="Capture"/>. With local SGD only averaging steps are captured and recorded: the undo of a
/// round's averaging step lasts through the next round's local steps, which are each peer's own (decision 0116).
/// </remarks>
public sealed class StepUndo
{
    private readonly float[] _parameters;
    private readonly float[] _velocity;
    private readonly List<GradientShare> _shares = new();
    private long _optimizerStep;
    /// <summary>A late peer's: the senders of the step before it joined, which it did not apply itself; null once it applied one.</summary>
    private int[]? _joinedSenders;

    public StepUndo(int parameterCount, int velocityLength)
    {
        _parameters = new float[parameterCount];
        _velocity = new float[velocityLength];
    }

    /// <summary>The last step applied (−1: none yet).</summary>
    public long AppliedStep { get; private set; } = -1;

    /// <summary>The shares the last applied step used, in node-id order.</summary>
    public IReadOnlyList<GradientShare> Shares => _shares;

    /// <summary>Whose shares the last applied step used, in node-id order (what a membership report says).</summary>
    public int[] Senders => _joinedSenders ?? _shares.Select(s => s.NodeId).ToArray();

    /// <summary>
    /// A late peer adopted the replica after <paramref name="step"/>, which the others applied with the shares of
    /// <paramref name="senders"/>: it reports that step as its last applied, as they do, and holds no shares to redo it with
    /// (the others agree on it: its epoch's hashes matched).
    /// </summary>
    public void Joined(long step, int[] senders)
    {
        _shares.Clear();
        _joinedSenders = (int[])senders.Clone();
        AppliedStep = step;
    }

    /// <summary>Where the replica's update copies θ before the step (<see cref="Steps.Replica.KeepStateBeforeEachStep"/>).</summary>
    public float[] ParametersBefore => _parameters;

    /// <summary>Where the replica's update copies the optimizer's velocity before the step.</summary>
    public float[] VelocityBefore => _velocity;

    /// <summary>
    /// A step is about to be applied by an update that copies θ and v into <see cref="ParametersBefore"/> and
    /// <see cref="VelocityBefore"/>: keeps the optimizer's step number to restore with them, <paramref name="optimizerStep"/>
    /// (with gradient averaging the step now; with local SGD the step after the averaging step, whose own update the peer
    /// took before the copy, or would have taken had its shard not run out: decision 0131).
    /// </summary>
    public void Capturing(long optimizerStep) => _optimizerStep = optimizerStep;

    /// <summary>Copies θ and the optimizer state before a step is applied.</summary>
    public void Capture(float[] parameters, SgdState state)
    {
        parameters.CopyTo(_parameters, 0);
        state.Velocity.CopyTo(_velocity, 0);
        _optimizerStep = state.Step;
    }

    /// <summary>
    /// Records the step just applied and its shares; <paramref name="released"/> is called with every share of the step
    /// before it whose gradient array the new step does not use (it can no longer be redone, so its arrays may be reused).
    /// </summary>
    public void Applied(long step, IReadOnlyList<IGradientContribution> shares, Action<GradientShare>? released = null)
    {
        if (released is not null)
            foreach (var old in _shares)
                if (!Uses(shares, old.Gradient))
                    released(old);
        _shares.Clear();
        _joinedSenders = null;
        for (int i = 0; i < shares.Count; i++)
            _shares.Add((GradientShare)shares[i]);
        AppliedStep = step;
    }

    /// <summary>
    /// The survivors abandoned the contested step (<see cref="DecisionPlan.Abandoned"/>): records <paramref name="step"/> as
    /// the last applied, with no shares, on every survivor alike; <paramref name="released"/> gets the shares of the step
    /// kept until now. The copy of θ and v stays (the state before a step taken back is the state now).
    /// </summary>
    public void Abandoned(long step, Action<GradientShare>? released = null)
    {
        if (released is not null)
            foreach (var old in _shares)
                released(old);
        _shares.Clear();
        _joinedSenders = null;
        AppliedStep = step;
    }

    /// <summary>Puts back θ and the optimizer state as they were before the last applied step.</summary>
    public void Restore(float[] parameters, SgdOptimizer optimizer)
    {
        _parameters.CopyTo(parameters, 0);
        optimizer.Restore(new SgdState(_optimizerStep, _velocity));
    }

    /// <summary>Whether the last applied step used <paramref name="gradient"/> (it may still be redone).</summary>
    public bool Uses(float[] gradient)
    {
        foreach (var share in _shares)
            if (ReferenceEquals(share.Gradient, gradient))
                return true;
        return false;
    }

    private static bool Uses(IReadOnlyList<IGradientContribution> shares, float[] gradient)
    {
        for (int i = 0; i < shares.Count; i++)
            if (ReferenceEquals(((GradientShare)shares[i]).Gradient, gradient))
                return true;
        return false;
    }
}
