using Akka.Actor;
using DistSgd.Actors.Steps;
using DistSgd.Numerics.Optim;

namespace DistSgd.Actors.Centralized;

/// <summary>
/// How a new master (the singleton moved after its node was lost) takes over a run under way: it collects the
/// positions the workers report when they register again, takes θ from the worker with the highest step (never
/// from one whose step is older), and θ of the step before from the same worker to rebuild the momentum. A plain
/// class, so the choice is testable without an ActorSystem.
/// </summary>
/// <remarks>
/// The old master may have finished step s and sent θ of s + 1 to some workers before it died: the highest step
/// held is then s + 1 and nothing is lost; otherwise the new master redoes step s, whose update was lost. Either
/// way the step counter goes back at most one step.
/// </remarks>
public sealed class MasterRecovery(string runId)
{
    private readonly Dictionary<IActorRef, WorkerPosition> _positions = new();
    private readonly Dictionary<long, float[]> _held = new();

    /// <summary>Positions of this run's workers that hold θ, by worker.</summary>
    public IReadOnlyDictionary<IActorRef, WorkerPosition> Positions => _positions;

    /// <summary>True once some worker reported holding θ of this run: the run is under way and must be recovered.</summary>
    public bool IsUnderWay => _positions.Count > 0;

    /// <summary>Records a registering worker's position; true when it holds θ of this run.</summary>
    public bool Offer(IActorRef worker, WorkerPosition? position)
    {
        if (position is null || position.RunId != runId || position.Step < 0)
            return false;
        _positions[worker] = position;
        return true;
    }

    /// <summary>Forgets a worker that was lost while the recovery waited.</summary>
    public void Forget(IActorRef worker) => _positions.Remove(worker);

    /// <summary>
    /// The worker to recover from: the highest step; among equals one that also holds the step before (for the
    /// momentum), then the lowest worker index. Null when no worker holds θ.
    /// </summary>
    public (IActorRef Worker, WorkerPosition Position)? Source =>
        _positions.Count == 0 ? null
            : _positions.OrderByDescending(p => p.Value.Step).ThenByDescending(p => p.Value.HasPrevious)
                        .ThenBy(p => p.Value.WorkerIndex).Select(p => (p.Key, p.Value)).First();

    /// <summary>Keeps θ the source sent for a step it reported; false for anything else (another run, another step, a wrong length).</summary>
    public bool Accept(HeldParameters message, int parameterCount)
    {
        if (Source is not { } source || message.RunId != runId || message.Parameters.Length != parameterCount)
            return false;
        var p = source.Position;
        if (message.Step != p.Step && !(p.HasPrevious && message.Step == p.Step - 1))
            return false;
        _held[message.Step] = message.Parameters;
        return true;
    }

    /// <summary>True when θ of the source's step (and of the step before, when it holds it) has arrived.</summary>
    public bool IsComplete => Source is { } s && _held.ContainsKey(s.Position.Step) && (!s.Position.HasPrevious || _held.ContainsKey(s.Position.Step - 1));

    /// <summary>θ of the source's step.</summary>
    public float[] Parameters => _held[Source!.Value.Position.Step];

    /// <summary>θ of the step before, or null when the source did not hold it.</summary>
    public float[]? Previous => Source is { } s && _held.TryGetValue(s.Position.Step - 1, out var previous) ? previous : null;

    /// <summary>
    /// Puts the recovered run into <paramref name="replica"/>: θ of the source's step, the optimizer's step and its
    /// momentum (rebuilt from the two θ, <see cref="MomentumRecovery"/>, when the source held both), and the run's
    /// position. Returns what happened to the momentum, for the run's notes. Call once <see cref="IsComplete"/>.
    /// </summary>
    public string RestoreInto(Replica replica, SgdOptions options)
    {
        var source = Source!.Value.Position;
        Parameters.CopyTo(replica.Parameters, 0);
        var velocity = new float[options.Momentum > 0 ? replica.Parameters.Length : 0];
        string momentum = velocity.Length == 0 ? "no momentum to recover"
            : Previous is { } previous
              && MomentumRecovery.TryVelocity(options, previous, replica.Parameters, replica.Optimizer.Schedule.RateAt(source.Step - 1, options.LearningRate), velocity)
                ? $"momentum rebuilt from θ of steps {source.Step - 1} and {source.Step}"
                : "momentum restarts from 0 (the source did not hold two consecutive θ, or Nesterov momentum)";
        replica.Optimizer.Restore(new SgdState(source.Step, velocity));
        replica.MoveTo(source.Step, source.Epoch, source.StepInEpoch);
        return momentum;
    }
}
