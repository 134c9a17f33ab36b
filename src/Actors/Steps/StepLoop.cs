using System.Diagnostics;
using Akka.Actor;

namespace DistSgd.Actors.Steps;

/// <summary>
/// The synchronous step, the one place to read to change the exchange, for both modes: begin (the mode broadcasts:
/// the master sends θ, a peer computes and sends its share) → gather (the actor offers what arrives to the gather
/// and calls <see cref="TryFinish"/>) → average → update (<see cref="Replica.Apply"/>) → advance, or end the epoch.
/// A step waits at most distsgd.step-timeout; when nothing arrived it is asked again up to
/// <see cref="MaxStepRetries"/> times, then the run fails.
/// </summary>
/// <remarks>
/// <para>How a mode plugs in: its actor owns a <see cref="Replica"/> and one StepLoop over it (made in PreStart: Akka
/// sets an actor's Timers after its constructor), implements
/// <see cref="IStepExchange"/>, routes <see cref="StepTimedOut"/> to <see cref="HandleTimeout"/> in the behaviour
/// that steps, and after offering a gradient to the open gather calls <see cref="TryFinish"/>. A participant lost
/// mid-step is forgotten by the gather (<see cref="StepGather.Forget"/>), then <see cref="TryFinish"/>.</para>
/// <para>The decentralized peer: <see cref="IStepExchange.Open"/> opens its <see cref="StepBuffer"/> and returns its
/// gather; <see cref="IStepExchange.Broadcast"/> computes and sends its share (and offers it to its own buffer on
/// the direct transport); <see cref="IStepExchange.AfterBegin"/> handles the peers lost while it compared hashes;
/// <see cref="IStepExchange.AskAgain"/> sends its share again and calls <see cref="RestartTimeout"/>;
/// <see cref="IStepExchange.GoOnWithout"/> suspects the silent and returns false; <see cref="IStepExchange.BeforeApply"/>
/// keeps the undo copy; <see cref="IStepExchange.AfterApply"/> returns the previous step's arrays to the data plane,
/// keeps the shares applied and meters the step; <see cref="IStepExchange.EndEpoch"/> starts the hash round and
/// returns false, and the peer calls <see cref="Begin"/> when the round is over (after
/// <see cref="Replica.CloseEpoch"/> and <see cref="Replica.NextEpoch"/>). Applying the survivors' decision: redo or
/// apply the contested step with <see cref="Apply"/> (not <see cref="Finish"/>), <see cref="Replica.Advance"/> if
/// it was open here, then <see cref="GoOnAt"/> the decision's next step.</para>
/// </remarks>
public sealed class StepLoop
{
    /// <summary>Self-sent when a step is past distsgd.step-timeout.</summary>
    public sealed record StepTimedOut(long Step);

    /// <summary>Times a step is asked again when nothing at all arrived, before the run fails.</summary>
    public const int MaxStepRetries = 2;

    private readonly Replica _replica;
    private readonly IStepExchange _exchange;
    private readonly ITimerScheduler _timers;
    private readonly TimeSpan _timeout;
    private long _started;
    private long _opening;
    /// <summary>When the open step's timeout is up (a <see cref="Stopwatch"/> timestamp), and the step the timer was armed for.</summary>
    private long _deadline;
    private long _armedFor = -1;
    private long _broadcastEnd;
    private long _allocatedAtStart;

    public StepLoop(Replica replica, IStepExchange exchange, ITimerScheduler timers, TimeSpan stepTimeout)
    {
        _replica = replica;
        _exchange = exchange;
        _timers = timers;
        _timeout = stepTimeout;
    }

    /// <summary>The open step's gather (closed between steps), or null before the first step.</summary>
    public StepGather? Gather { get; private set; }

    /// <summary>Where the steps' phases are recorded (distsgd.step-trace), or null.</summary>
    public StepTrace? Trace
    {
        get => _replica.Trace;
        set => _replica.Trace = value;
    }

    /// <summary>Times the open step was asked again.</summary>
    public int Retries { get; private set; }

    /// <summary>Begins the replica's next step, unless the mode says none may begin now.</summary>
    public void Begin()
    {
        long opening = _opening = Stopwatch.GetTimestamp();
        if (Trace is not null)
            _allocatedAtStart = GC.GetAllocatedBytesForCurrentThread();
        if (_exchange.Open() is not { } gather)
            return;
        Gather = gather;
        long step = _replica.Step;
        _started = Stopwatch.GetTimestamp();
        Trace?.Add(StepPhase.Open, step, opening, _started);
        _exchange.Broadcast();
        _broadcastEnd = Stopwatch.GetTimestamp();
        if (!gather.IsOpen || gather.Step != step)
            return;   // the broadcast ended the step or the run
        RestartTimeout();
        Trace?.Add(StepPhase.ArmTimeout, step, _broadcastEnd, Stopwatch.GetTimestamp());
        if (_exchange.AfterBegin() && gather.IsComplete && (gather.Replies.Count > 0 || gather.NonFinite.Count > 0))
            Finish();
    }

    /// <summary>Goes on at <paramref name="step"/> (after the survivors of a peer loss decided), with no retry counted.</summary>
    public void GoOnAt(long step)
    {
        _replica.SkipTo(step);
        Retries = 0;
    }

    /// <summary>The open step waits a whole distsgd.step-timeout from now.</summary>
    /// <remarks>
    /// The timer is not re-armed at every step (each arming allocates in Akka's scheduler): one armed for an earlier
    /// step stays, and when it fires during a later step <see cref="HandleTimeout"/> arms it again for what is left of
    /// that step's timeout. Asking the same step again re-arms it at once.
    /// </remarks>
    public void RestartTimeout()
    {
        long step = _replica.Step;
        _deadline = Stopwatch.GetTimestamp() + (long)(_timeout.TotalSeconds * Stopwatch.Frequency);
        if (!_timers.IsTimerActive(nameof(StepTimedOut)) || _armedFor == step)
            Arm(step, _timeout);
    }

    private void Arm(long step, TimeSpan after)
    {
        _armedFor = step;
        _timers.StartSingleTimer(nameof(StepTimedOut), new StepTimedOut(step), after);
    }

    /// <summary>Finishes the open step when every participant still counted has answered.</summary>
    public void TryFinish()
    {
        if (Gather is { IsComplete: true })
            Finish();
    }

    public void HandleTimeout(StepTimedOut message)
    {
        if (Gather is not { IsOpen: true } gather)
            return;
        if (message.Step != _replica.Step)
        {
            // Armed for an earlier step: this one's timeout ends later (RestartTimeout).
            long left = _deadline - Stopwatch.GetTimestamp();
            if (left > 0)
            {
                Arm(_replica.Step, TimeSpan.FromSeconds((double)left / Stopwatch.Frequency));
                return;
            }
        }
        var missing = gather.WaitingFor.ToList();
        // A non-finite gradient is an answer (the update fails the run); only silence is asked again.
        if (gather.Replies.Count == 0 && gather.NonFinite.Count == 0)
        {
            if (++Retries > MaxStepRetries)
                _exchange.Fail(_exchange.NothingArrived(missing));
            else
                _exchange.AskAgain(missing);
            return;
        }
        if (_exchange.GoOnWithout(missing))
            Finish();
    }

    /// <summary>Applies the gathered step and goes on: the next step, or the epoch's end.</summary>
    public void Finish()
    {
        if (!Apply())
            return;
        _replica.Advance();
        Retries = 0;
        if (!_replica.EpochIsDone || _exchange.EndEpoch())
            Begin();
        else if (Gather is not { IsOpen: true })
            _timers.Cancel(nameof(StepTimedOut));   // the loop rests (epoch end, run end): nothing to time
    }

    /// <summary>
    /// Closes the open gather and applies it to the replica without advancing; false when it was not applied (the
    /// mode refused) or the run failed (divergence).
    /// </summary>
    public bool Apply()
    {
        var gather = Gather!;
        long applying = Stopwatch.GetTimestamp();
        gather.Close();   // the step's timer stays armed: when it fires, a closed gather ignores it (RestartTimeout)
        if (!_exchange.BeforeApply(gather))
        {
            _timers.Cancel(nameof(StepTimedOut));   // left unapplied: asked again when the mode is ready
            return false;
        }
        long updating = Stopwatch.GetTimestamp();
        double wall = Stopwatch.GetElapsedTime(_started, updating).TotalSeconds;
        var outcome = _replica.Apply(gather, wall);
        long updated = Stopwatch.GetTimestamp();
        _exchange.AfterApply(gather, wall, outcome.Divergence is not null);
        if (Trace is { } trace)
        {
            long done = Stopwatch.GetTimestamp();
            trace.Add(StepPhase.Wait, gather.Step, _broadcastEnd, applying);
            trace.Add(StepPhase.BeforeUpdate, gather.Step, applying, updating);
            trace.Add(StepPhase.Update, gather.Step, updating, updated);
            trace.Add(StepPhase.AfterUpdate, gather.Step, updated, done);
            trace.StepDone(gather.Step, _opening, done, GC.GetAllocatedBytesForCurrentThread() - _allocatedAtStart);
        }
        if (outcome.Divergence is null)
            return true;
        _exchange.Fail(outcome.Divergence);
        return false;
    }
}
