using System.Collections.Concurrent;
using DistSgd.Actors.Decentralized;
using DistSgd.Actors.Steps;

namespace DistSgd.Actors.Tests.Deployment;

/// <summary>What the peers of a decentralized test run report to their nodes' reporters, collected in one place.</summary>
/// <param name="expectedPeers">How many peers must send <see cref="PeerFinished"/> (the survivors) before the run counts as over.</param>
internal sealed class PeerRunProgress(int expectedPeers)
{
    private TaskCompletionSource<string> _failed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _allFinished = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly ConcurrentBag<PeerFinished> _finished = new();
    private readonly ConcurrentQueue<string> _notes = new();
    private RunProgress.RunCompleted? _lead;

    public RunProgress.RunCompleted Lead => Volatile.Read(ref _lead) ?? throw new InvalidOperationException("no lead result yet");

    /// <summary>The finished peers, in node-id order.</summary>
    public IReadOnlyList<PeerFinished> Peers => _finished.OrderBy(p => p.NodeId).ToList();

    public IReadOnlyList<string> Notes => _notes.ToList();

    /// <summary>Completes with the reason when a peer reported that the run failed.</summary>
    public Task<string> Failure => _failed.Task;

    /// <summary>The failure reported so far was expected (a refused late peer): from now on only a new one counts.</summary>
    public void ResetFailure() => _failed = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);

    public bool IsOver => _failed.Task.IsCompleted || _allFinished.Task.IsCompleted;

    /// <summary>The callback every node's reporter (a CallbackActor) calls.</summary>
    public void OnProgress(object message)
    {
        switch (message)
        {
            case RunProgress.RunFailed f: _failed.TrySetResult(f.Reason); break;
            case RunProgress.RunCompleted c: Interlocked.Exchange(ref _lead, c); break;
            case PeerFinished p: _finished.Add(p); break;
            case RunProgress.Note n: _notes.Enqueue(n.Text); break;
        }
        if (Volatile.Read(ref _lead) is not null && _finished.Count == expectedPeers)
            _allFinished.TrySetResult();
    }

    /// <summary>Waits until the lead's result and every expected peer's final replica are in; fails the test when the run failed.</summary>
    public async Task WaitAsync(TimeSpan limit)
    {
        var first = await Task.WhenAny(_allFinished.Task, _failed.Task).WaitAsync(limit);
        if (first == _failed.Task)
            throw new Xunit.Sdk.XunitException($"the run failed: {_failed.Task.Result}\nnotes:\n{string.Join("\n", _notes)}");
    }
}
