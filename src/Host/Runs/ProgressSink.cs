using DistSgd.Actors.Decentralized;
using DistSgd.Actors.Steps;
using DistSgd.Numerics.Training;

namespace DistSgd.Host.Runs;

/// <summary>
/// Where the coordinators' reports arrive in this process, for the simulated cluster and for `distsgd node` alike.
/// Reports come from several nodes' threads: one lock keeps the output whole. Epochs, steps, notes and finished peers
/// go to their callbacks; the first report that ends this process's part of the run completes <see cref="Ended"/>.
/// </summary>
/// <param name="output">Where a coordinator's notes are written, as "cluster: …".</param>
/// <param name="onEpoch">Called with every finished epoch's metrics.</param>
/// <param name="onStep">Called with the step progress, or null to ignore it.</param>
public sealed class ProgressSink(TextWriter output, Action<EpochMetrics> onEpoch, Action<RunProgress.StepProgress>? onStep = null)
{
    private readonly object _gate = new();
    private readonly TaskCompletionSource<object> _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Called with each peer's final replica (decentralized), or null to ignore them.</summary>
    public Action<PeerFinished>? OnPeerFinished { get; init; }

    /// <summary>Called when this process's peer was left out of the run (<see cref="PeerLeftOut"/>, before its failure), or null.</summary>
    public Action<PeerLeftOut>? OnPeerLeftOut { get; init; }

    /// <summary>
    /// The reports besides <see cref="RunProgress.RunCompleted"/> and <see cref="RunProgress.RunFailed"/> that end this
    /// process's part of the run (a node's: its worker's RunEnded); none by default. The cluster's news (the node removed)
    /// reaches a node through <see cref="NodeEnding"/>, not here.
    /// </summary>
    public Func<object, bool> AlsoEnds { get; init; } = _ => false;

    /// <summary>The first report that ended this process's part of the run.</summary>
    public Task<object> Ended => _ended.Task;

    /// <summary>Handles one report, under the lock; given to every node's reporter.</summary>
    public void Report(object message)
    {
        lock (_gate)
        {
            switch (message)
            {
                case RunProgress.EpochCompleted epoch:
                    onEpoch(epoch.Metrics);
                    break;
                case RunProgress.StepProgress step:
                    onStep?.Invoke(step);
                    break;
                case RunProgress.Note note:
                    output.WriteLine($"cluster: {note.Text}");
                    break;
                case PeerFinished finished:
                    OnPeerFinished?.Invoke(finished);
                    break;
                case PeerLeftOut leftOut:
                    OnPeerLeftOut?.Invoke(leftOut);
                    break;
                case RunProgress.RunCompleted or RunProgress.RunFailed:
                    _ended.TrySetResult(message);
                    break;
                default:
                    if (AlsoEnds(message))
                        _ended.TrySetResult(message);
                    break;
            }
        }
    }

    /// <summary>Runs <paramref name="action"/> under the lock, so that its output does not tear a report's.</summary>
    public void Locked(Action action)
    {
        lock (_gate)
            action();
    }
}
