using System.Diagnostics;
using Akka.Actor;
using Akka.Event;
using DistSgd.Actors.Membership;
using DistSgd.Actors.Protocol;
using DistSgd.Actors.Steps;
using DistSgd.Actors.Transport;
using DistSgd.Numerics.Training;

namespace DistSgd.Actors.Centralized;

/// <summary>What the master's step needs of the master itself: the partition rule, evictions and the run's end.</summary>
internal interface IMasterControl
{
    /// <summary>True when this master may change θ (the majority side); moves it between stepping and paused.</summary>
    bool FollowMajority();

    /// <summary>Takes a worker the data plane cannot reach out of the run at once.</summary>
    void Evict(int index, LossCause cause);

    void Finish(StopReason reason);

    void Fail(string reason);
}

/// <summary>
/// The master's side of the <see cref="StepLoop"/>: opens each step among the epoch's participants (cutting a new
/// epoch's shards first), sends θ to them over Akka or the data plane, takes their gradients in, and closes an epoch
/// with the stop rule. It owns the step's gather and the payload path (chunked Akka messages or the data plane);
/// the <see cref="MasterActor"/> owns the states and the workers.
/// </summary>
internal sealed class MasterStep : IStepExchange, IDisposable
{
    private readonly MasterSetup _setup;
    private readonly DistSgdSettings _settings;
    private readonly Replica _replica;
    private readonly WorkerRoster _roster;
    private readonly IMasterControl _control;
    private readonly IActorRef _self;
    private readonly ILoggingAdapter _log;
    private readonly StepGather _gather;
    private readonly ChunkSender _payloads;
    private readonly ChunkAssembler _assembler;
    private readonly DirectDataPlane? _dataPlane;
    /// <summary>θ's compressed updates to the workers, when the run's gradients are compressed (null: θ whole every step).</summary>
    private readonly ParameterUpdates? _updates;
    private readonly DropLog _drops;
    private readonly ProgressMeter _meter;
    private readonly int _maxWorkers;
    /// <summary>Workers a send of θ failed to, this step (reused: a step allocates nothing of its own).</summary>
    private readonly List<int> _unreached = new();
    private readonly BackupWorkers _backups;
    /// <summary>--balance speed, or null.</summary>
    private readonly BatchBalancer? _balance;
    /// <summary>The participants asked for the open step (with backup workers: those not still computing an earlier one; reused).</summary>
    private readonly List<int> _asked = new();
    /// <summary>Local SGD: steps per round, H (1: every step averages gradients, today's path).</summary>
    private readonly int _syncEvery;
    /// <summary>Local SGD: θ at the open round's start, what the workers step from (empty when H = 1).</summary>
    private readonly float[] _roundStart;
    /// <summary>Local SGD: steps of the open round (<see cref="LocalSgd.RoundSteps"/>).</summary>
    private int _roundSteps = 1;

    public MasterStep(MasterSetup setup, DistSgdSettings settings, Replica replica, WorkerRoster roster, IMasterControl control,
                      IActorContext context, int maxWorkers)
    {
        (_setup, _settings, _replica, _roster, _control, _maxWorkers) = (setup, settings, replica, roster, control, maxWorkers);
        var plan = setup.Plan;
        _self = context.Self;
        _log = context.GetLogger();
        int parameterCount = replica.Parameters.Length;
        _gather = new StepGather(plan.RunId, parameterCount);
        _drops = new DropLog(text => _log.Warning("{0}", text), meters: replica.Meters);
        _meter = new ProgressMeter(plan.StepsPerEpoch);
        _backups = new BackupWorkers(setup.BackupWorkers, (long)(settings.StepTimeout.TotalSeconds * Stopwatch.Frequency));
        if (setup.BalanceBySpeed)
        {
            var balance = _balance = new BatchBalancer(plan.BatchSizePerWorker, replica.Checkpoints.ResumedBalance);
            replica.Checkpoints.Balance = balance.State;
        }
        _syncEvery = plan.SyncEvery;
        _roundStart = _syncEvery > 1 ? new float[parameterCount] : [];
        _payloads = new ChunkSender(context.System, settings.AkkaChunkSize);
        _assembler = new ChunkAssembler(context.System) { MaxMessageBytes = WireFormat.LargestVectorMessage(parameterCount) };
        if (settings.Transport == PayloadTransport.Direct)
        {
            var self = _self;
            _dataPlane = new DirectDataPlane(DistSgdSettings.DataPlane(context.System, plan.RunId, parameterCount, FrameKind.GradientReply, maxWorkers, plan.Wire),
                                             GradientReply.FromFrame, m => self.Tell(m));
            _dataPlane.LogRefusals(text => _log.Warning("{0}", text));
            // 16-bit gradients: the return path is 16-bit too, θ's update instead of θ (issue 16); dense, even with
            // top-k gradients (ShareEncoding.Dense), so float32 top-k still sends θ whole.
            if (!plan.Wire.Dense.IsIdentity)
            {
                _updates = new ParameterUpdates(plan.Wire.Dense, parameterCount);
                replica.KeepStateBeforeEachStep(_updates.Before, []);
            }
        }
    }

    /// <summary>The step loop over this exchange; made by <see cref="UseTimers"/>.</summary>
    public StepLoop Loop { get; private set; } = null!;

    /// <summary>Makes the <see cref="Loop"/> once the master's timers exist (Akka sets them after the constructor).</summary>
    public void UseTimers(ITimerScheduler timers)
    {
        Loop = new StepLoop(_replica, this, timers, _settings.StepTimeout);
        if (StepTrace.Start(_settings, MasterTraceProcess, "master", _maxWorkers) is not { } trace)
            return;
        Loop.Trace = trace;
        if (_dataPlane is not null)
            _dataPlane.FrameReceived = (sender, step, headerAt, completeAt) => trace.Received(sender, step, headerAt, completeAt);
    }

    /// <summary>The master's process id in a step trace (peers use their node ids).</summary>
    public const int MasterTraceProcess = 1000;

    /// <summary>Writes the step trace, if any (<see cref="StepTrace.WriteOrWarn"/>).</summary>
    public void WriteTrace() => Loop?.Trace?.WriteOrWarn(_settings, _log);

    /// <summary>True when payloads go over the data plane (distsgd.transport = direct).</summary>
    public bool UsesDataPlane => _dataPlane is not null;

    /// <summary>The data plane's endpoint for the workers' <see cref="JoinRun"/>; empty over Akka.</summary>
    public string DataEndpoint => _dataPlane?.Endpoint ?? "";

    /// <summary>The data plane's key for the workers' <see cref="JoinRun"/>; null over Akka.</summary>
    public byte[]? DataKey => _dataPlane?.Key;

    /// <summary>
    /// The worker of <paramref name="accepted"/> is at its data endpoint with its key: its data connections must prove
    /// that key from now on. False (nothing trusted) when it gave no endpoint or no key of the right size.
    /// </summary>
    public bool Trust(JoinAccepted accepted)
    {
        if (_dataPlane is null || accepted.DataEndpoint.Length == 0 || !DataPlaneHandshake.IsKey(accepted.DataKey))
            return false;
        _dataPlane.Trust(accepted.WorkerIndex, accepted.DataEndpoint, accepted.DataKey!);
        return true;
    }

    /// <summary>True while a step waits for gradients.</summary>
    public bool IsGathering => _gather.IsOpen;

    /// <summary>The run starts with the roster's participants: the live progress shows them.</summary>
    public void Started() => _meter.Start(_roster.Participants.Select(p => (p.Key, "worker", p.Value.Path.Address.ToString())));

    /// <summary>A whole message out of an Akka chunk, or null while more chunks are due.</summary>
    public object? Reassemble(MessageChunk chunk, IActorRef sender) => _assembler.Add(chunk, sender);

    /// <summary>A gradient that arrived before the first step (counted as dropped if it is not for one).</summary>
    public void OfferEarly(GradientReply reply) => _gather.Offer(reply);

    public void Offer(GradientReply reply, IActorRef sender)
    {
        long taken = Stopwatch.GetTimestamp();
        // On Akka, a reply must come from the actor of the worker it names; the data plane checked its frames' senders.
        bool fromParticipant = _dataPlane is not null || (_roster.Participants.TryGetValue(reply.WorkerIndex, out var worker) && worker.Equals(sender));
        if (fromParticipant && reply.RunId == _setup.Plan.RunId && _backups.Answered(reply.WorkerIndex, reply.Step, _gather.Step, _gather.IsOpen))
        {
            Late(reply);
            return;
        }
        var outcome = _gather.Offer(reply, fromParticipant);
        if (outcome == GatherOutcome.Accepted)
            _replica.Totals.AddReceived(((IGradientContribution)reply).WireBytes);
        else
            _drops.Record(outcome, $"gradient of worker {reply.WorkerIndex} for step {reply.Step} (run {reply.RunId}, {reply.Gradient.Length} values) from {sender.Path}");
        Loop.Trace?.Offered(reply.WorkerIndex, reply.Step, taken, Stopwatch.GetTimestamp());
        Loop.TryFinish();
    }

    /// <summary>A gradient for a step that finished without it (backup workers): dropped, counted, its worker free again.</summary>
    private void Late(GradientReply reply)
    {
        _gather.CountDropped(GatherOutcome.Late);
        _replica.Totals.CountLate(reply.WorkerIndex);
        _meter.Late(reply.WorkerIndex);
        if (reply.Gradient.Length > 0)
            _dataPlane?.Return(reply.Gradient, reply.Entries);
    }

    /// <summary>
    /// A worker is lost: the live progress says why, and (when <paramref name="gathering"/>) the step no longer waits
    /// for it, finishing if that was the last one it waited for.
    /// </summary>
    public void Lost(int index, string why, bool gathering = true)
    {
        _meter.SetState(index, why);
        _backups.Forget(index);
        if (gathering && _gather.IsOpen && _gather.Forget(index) && _gather.IsComplete)
            Loop.Finish();
    }

    public void ConnectionLost(DataConnectionLost message)
    {
        _log.Warning("data connection from worker {0} closed ({1})", message.Sender, message.Reason);
        _backups.Forget(message.Sender);
        if (!_gather.IsOpen || !_gather.Forget(message.Sender))
            return;
        _control.Evict(message.Sender, LossCause.ConnectionClosed);
        FinishIfAnswered();
    }

    StepGather? IStepExchange.Open()
    {
        if (!_replica.IsRunning || !_control.FollowMajority())
            return null;
        if (_replica.StepInEpoch == 0 || _roster.ShardCount == 0)
            StartEpoch();
        if (_replica.CheckpointIfDue() is { } checkpoint)
            _setup.Reporter.Tell(new RunProgress.Note(checkpoint.Describe()));
        OpenRound();
        if (!_backups.Enabled)
        {
            _gather.Begin(_replica.Step, _roster.ParticipantIndices);
            return _gather;
        }
        long now = Stopwatch.GetTimestamp();
        _asked.Clear();
        var participants = _roster.ParticipantIndices;
        for (int i = 0; i < participants.Count; i++)
            if (!_backups.IsBusy(participants[i], now))
                _asked.Add(participants[i]);
        _gather.Begin(_replica.Step, _asked, _backups.FinishWith(_roster.Participants.Count, _asked.Count));
        return _gather;
    }

    /// <summary>
    /// Local SGD (decision 0091): every step the master opens starts a round; the workers take its
    /// <see cref="_roundSteps"/> steps on their own and answer with their changes, which <see cref="Replica.Apply"/>
    /// averages onto θ₀ (<see cref="Replica.RoundStart"/>). Nothing when H = 1.
    /// </summary>
    private void OpenRound()
    {
        if (_syncEvery <= 1)
            return;
        _roundSteps = LocalSgd.RoundSteps(_replica.StepInEpoch, _replica.StepsPerEpoch, _syncEvery);
        _replica.Parameters.CopyTo(_roundStart, 0);
        _replica.RoundStart = _roundStart;
    }

    /// <summary>θ to every participant: over the data plane, or in a <see cref="ComputeGradient"/> over Akka.</summary>
    void IStepExchange.Broadcast()
    {
        if (_dataPlane is not null)
        {
            long sending = Stopwatch.GetTimestamp();
            SendParametersDirect(_dataPlane);
            Loop.Trace?.Add(StepPhase.Send, _replica.Step, sending, Stopwatch.GetTimestamp());
            return;
        }
        // A fresh copy per step: messages to a worker on this node are not serialized, and θ changes in place.
        var theta = _replica.CopyOfParameters();
        long now = Stopwatch.GetTimestamp();
        foreach (var (index, worker) in _roster.Participants)
        {
            if (!_gather.Includes(index))
                continue;   // still computing an earlier step (backup workers)
            _backups.Asked(index, _replica.Step, now);
            var (shard, shardCount, batch) = Assignment(index);
            var message = new ComputeGradient(_setup.Plan.RunId, _replica.Step, _replica.Epoch, _replica.StepInEpoch, theta, shard, shardCount, batch);
            _payloads.Tell(worker, message, _self);
            _replica.Totals.AddSent(WireFormat.PayloadBytes(message));
        }
    }

    bool IStepExchange.AfterBegin() => true;

    void IStepExchange.AskAgain(IReadOnlyCollection<int> missing)
    {
        _updates?.SendWholeFromNowOn();
        _log.Warning("step {0}: no gradient within {1}; asking workers {2} again", _replica.Step, _settings.StepTimeout, string.Join(", ", missing));
        _backups.Clear();
        Loop.Begin();
    }

    string IStepExchange.NothingArrived(IReadOnlyCollection<int> missing) =>
        $"no worker answered step {_replica.Step} within {StepLoop.MaxStepRetries + 1} × distsgd.step-timeout ({_settings.StepTimeout.TotalSeconds:0}s); waiting for workers {string.Join(", ", missing)}";

    bool IStepExchange.GoOnWithout(IReadOnlyCollection<int> missing)
    {
        _log.Warning("step {0}: workers {1} did not answer within {2}; going on with {3} gradients",
                     _replica.Step, string.Join(", ", missing), _settings.StepTimeout, _gather.Replies.Count);
        return true;
    }

    /// <summary>On the minority side the gathered gradients are not applied: the step is asked again once the majority is back.</summary>
    bool IStepExchange.BeforeApply(StepGather gather) => _control.FollowMajority();

    void IStepExchange.AfterApply(StepGather gather, double wallSeconds, bool diverged)
    {
        // The step's gradients are averaged and applied: their arrays take the next step's frames.
        for (int i = 0; _dataPlane is not null && i < gather.Replies.Count; i++)
            _dataPlane.Return(gather.Replies[i].Gradient, gather.Replies[i].Entries);
        if (diverged)
            return;
        if (_roundSteps > 1)
        {
            // The round's steps before its last were the workers' own: the run stands at the round's last step now.
            _replica.Totals.CountLocalSteps(_roundSteps - 1);
            _replica.MoveTo(_replica.Step + _roundSteps - 1, _replica.Epoch, _replica.StepInEpoch + _roundSteps - 1);
        }
        _balance?.Record(gather.Replies);
        _updates?.Compress(_replica.Parameters, _replica.Step + 1, gather.Replies);
        if (_meter.StepDone(gather.Replies, wallSeconds, _replica.Totals, _replica.Epoch, _replica.StepInEpoch + 1) is { } progress)
            _setup.Reporter.Tell(progress);
        // The optimizer's step is the master's, empty steps included, so a successor knows η of every step from its number.
        long next = _replica.Step + 1;
        if (_replica.Optimizer.State.Step != next)
            _replica.Optimizer.Restore(new Numerics.Optim.SgdState(next, _replica.Optimizer.State.Velocity));
    }

    /// <summary>Evaluates, reports and applies the stop rule; true when the run goes on.</summary>
    bool IStepExchange.EndEpoch()
    {
        long badFrames = _dataPlane?.BadFrames ?? 0;
        var refused = _dataPlane?.RefusalsByName ?? new Dictionary<string, long>();
        var (metrics, plateau) = _replica.CloseEpoch(_setup.Test, _replica.Step, _gather.DroppedTotal + badFrames + refused.Values.Sum(),
                                                     DroppedMessages.ByKind(_gather.Dropped, badFrames, named: refused));
        _setup.Reporter.Tell(new RunProgress.EpochCompleted(metrics));
        if (plateau || _replica.AtEpochLimit)
        {
            _control.Finish(plateau ? StopReason.LossPlateau : StopReason.EpochLimit);
            return false;
        }
        _replica.NextEpoch();
        return true;
    }

    void IStepExchange.Fail(string reason) => _control.Fail(reason);

    /// <summary>Steps of an epoch cut into <paramref name="shards"/> shards: the largest shard's batch count (the plan's with every planned worker).</summary>
    public int StepsPerEpoch(int shards) => shards == _setup.WorkerCount ? _setup.Plan.StepsPerEpoch
        : ShardBatches.StepsPerEpoch(_setup.Plan.TrainCount, shards, _setup.Plan.BatchSizePerWorker);

    /// <summary>The epoch's shards: the participants (and the workers that joined meanwhile), by rank in index order.</summary>
    private void StartEpoch()
    {
        _meter.Start(_roster.Joining.Select(p => (p.Key, "worker", p.Value.Path.Address.ToString())));
        bool changed = _roster.StartEpoch(_backups.Enabled ? _replica.Epoch : 0);
        bool wasBalanced = _balance?.IsBalanced ?? false;
        _balance?.StartEpoch(_roster.Participants.Keys.ToList());
        _replica.StepsPerEpoch = _balance is { IsBalanced: true } balance
            ? ShardBatches.StepsPerEpoch(_setup.Plan.TrainCount, balance.UnitCount, 1)
            : StepsPerEpoch(_roster.ShardCount);
        if (changed)
            _setup.Reporter.Tell(new RunProgress.Note(
                $"{RunProgress.Now} epoch {_replica.Epoch}: the training set is cut into {_roster.ShardCount} shards for workers {string.Join(", ", _roster.Participants.Keys)} ({_replica.StepsPerEpoch} steps)"));
        if (_balance is { IsBalanced: true } || wasBalanced)
            _setup.Reporter.Tell(new RunProgress.Note(_balance!.Note(_replica.Epoch, _replica.StepsPerEpoch, "worker")));
        ReplanSchedule();
    }

    /// <summary>What worker <paramref name="index"/> computes on this epoch: its shard, or its units and batch when balanced.</summary>
    private (int Shard, int ShardCount, int Batch) Assignment(int index) =>
        _balance?.Assignment(index, _roster.ShardOf(index), _roster.ShardCount) ?? (_roster.ShardOf(index), _roster.ShardCount, 0);

    /// <summary>The run's length in steps may have changed (new shards, a recovered run): the schedule is re-planned over what remains.</summary>
    public void ReplanSchedule()
    {
        if (_replica.ReplanSchedule() is { } note)
            _setup.Reporter.Tell(new RunProgress.Note($"{RunProgress.Now} {note}"));
    }

    /// <summary>
    /// θ to every participant over the data plane, in worker-index order; the send copies θ into the kernel before
    /// it returns, so no copy of θ is made. A worker that cannot be reached is evicted (like an unreachable member)
    /// and sent to again, on a new connection, if it is invited back.
    /// </summary>
    private void SendParametersDirect(DirectDataPlane dataPlane)
    {
        var unreached = _unreached;
        unreached.Clear();
        long now = Stopwatch.GetTimestamp();
        var participants = _roster.ParticipantIndices;   // by index: a sorted dictionary's enumerator allocates
        for (int i = 0; i < participants.Count; i++)
        {
            int index = participants[i];
            if (!_gather.Includes(index))
                continue;   // still computing an earlier step (backup workers)
            _backups.Asked(index, _replica.Step, now);
            var (shard, shardCount, batch) = Assignment(index);
            var header = new FrameHeader(FrameKind.ComputeGradient, 0, _replica.Step, 0, _replica.Epoch, _replica.StepInEpoch, shardCount, 0, 0, 0, (ushort)shard, batch);
            bool update = _updates is not null && _updates.SendsUpdateTo(index, _replica.Step);
            if (update)
                header = header with { IsUpdate = true, LossSum = _updates!.Checksum };
            if (_roster.TryEndpoint(index, out var endpoint) && dataPlane.Send(endpoint, header, update ? _updates!.Update : _replica.Parameters))
                _replica.Totals.AddSent(dataPlane.LastFrameBytes);
            else
                unreached.Add(index);
        }
        foreach (int index in unreached)
        {
            _log.Warning("step {0}: the data connection to worker {1} failed; not waiting for it", _replica.Step, index);
            _gather.Forget(index);
            _backups.Forget(index);
            _control.Evict(index, LossCause.SendFailed);
        }
        if (unreached.Count > 0)
            FinishIfAnswered();
    }

    /// <summary>With nobody reached the step stays open: its timeout asks again rather than taking an empty step.</summary>
    private void FinishIfAnswered()
    {
        if (_gather.IsComplete && _gather.Replies.Count > 0)
            Loop.Finish();
    }

    /// <summary>Closes the data plane (the run is over, or the master stops).</summary>
    public void Dispose() => _dataPlane?.Dispose();
}
