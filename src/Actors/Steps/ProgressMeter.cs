using System.Diagnostics;
using DistSgd.Actors.Protocol;

namespace DistSgd.Actors.Steps;

/// <summary>
/// Per-participant step statistics for the live display, kept by the master and the lead peer, and turned into a
/// <see cref="RunProgress.StepProgress"/> at a bounded rate. A plain class: the coordinator calls <see cref="Start"/>
/// once, <see cref="StepDone"/> at every step's end and <see cref="SetState"/> when a participant is lost.
/// </summary>
public sealed class ProgressMeter
{
    /// <summary>At most 4 progress messages a second: a display refreshes no faster, and the steps take sub-millisecond work.</summary>
    public static readonly TimeSpan DefaultInterval = TimeSpan.FromMilliseconds(250);

    private readonly SortedDictionary<int, Participant> _participants = new();
    private readonly long _stepsPerEpoch;
    private readonly long _interval;
    private long _lastSent;
    private long _epochStarted = Stopwatch.GetTimestamp();
    private int _epoch;

    public ProgressMeter(long stepsPerEpoch, TimeSpan? interval = null)
    {
        _stepsPerEpoch = stepsPerEpoch;
        _interval = (long)((interval ?? DefaultInterval).TotalSeconds * Stopwatch.Frequency);
        _lastSent = Stopwatch.GetTimestamp();
    }

    /// <summary>The participants of the run: id (worker index or node id), role and address.</summary>
    public void Start(IEnumerable<(int Id, string Role, string Address)> participants)
    {
        foreach (var (id, role, address) in participants)
            _participants[id] = new Participant(role, address);
    }

    /// <summary>A participant is no longer waited for: up, unreachable, removed or stopped.</summary>
    public void SetState(int id, string state)
    {
        if (_participants.TryGetValue(id, out var p))
            p.State = state;
    }

    /// <summary>
    /// Counts a finished step; returns the progress to send when one is due (the first step of an epoch, then at most once
    /// per interval), else null.
    /// </summary>
    public RunProgress.StepProgress? StepDone(IReadOnlyList<IGradientContribution> contributions, double wallSeconds,
                                              EpochTotals totals, int epoch, long stepInEpoch)
    {
        double slowest = 0;
        for (int i = 0; i < contributions.Count; i++)
            slowest = Math.Max(slowest, contributions[i].ComputeSeconds);
        for (int i = 0; i < contributions.Count; i++)
        {
            var c = contributions[i];
            if (!_participants.TryGetValue(c.Participant, out var p))
                continue;
            p.Steps++;
            p.Samples += c.SampleCount;
            p.ComputeSeconds += c.ComputeSeconds;
            p.StepComputeSeconds += slowest;
            p.WaitSeconds += Math.Max(0, wallSeconds - c.ComputeSeconds);
        }
        long now = Stopwatch.GetTimestamp();
        bool newEpoch = epoch != _epoch;
        if (newEpoch)
        {
            _epoch = epoch;
            // The epoch began when its first step did.
            _epochStarted = now - (long)(wallSeconds * Stopwatch.Frequency);
        }
        if (!newEpoch && now - _lastSent < _interval && stepInEpoch < _stepsPerEpoch)
            return null;
        _lastSent = now;
        double elapsed = Stopwatch.GetElapsedTime(_epochStarted, now).TotalSeconds;
        return new RunProgress.StepProgress(epoch, stepInEpoch, _stepsPerEpoch, totals.TrainLoss,
                                            elapsed > 0 ? totals.ProcessedSamples / elapsed : 0, Snapshot());
    }

    /// <summary>A gradient of participant <paramref name="id"/> came after its step finished without it.</summary>
    public void Late(int id)
    {
        if (_participants.TryGetValue(id, out var p))
            p.LateGradients++;
    }

    public IReadOnlyList<RunProgress.NodeStatus> Snapshot() => _participants.Select(p => new RunProgress.NodeStatus(
        p.Key, p.Value.Role, p.Value.Address, p.Value.Steps,
        p.Value.ComputeSeconds > 0 ? p.Value.Samples / p.Value.ComputeSeconds : 0,
        p.Value.Steps > 0 ? p.Value.WaitSeconds / p.Value.Steps : 0, p.Value.State)
    {
        MeanComputeSeconds = p.Value.Steps > 0 ? p.Value.ComputeSeconds / p.Value.Steps : 0,
        MeanStepComputeSeconds = p.Value.Steps > 0 ? p.Value.StepComputeSeconds / p.Value.Steps : 0,
        LateGradients = p.Value.LateGradients,
    }).ToList();

    private sealed class Participant(string role, string address)
    {
        public string Role { get; } = role;
        public string Address { get; } = address;
        public string State { get; set; } = "up";
        public long Steps { get; set; }
        public long Samples { get; set; }
        public double ComputeSeconds { get; set; }
        public double WaitSeconds { get; set; }
        public double StepComputeSeconds { get; set; }
        public long LateGradients { get; set; }
    }
}
