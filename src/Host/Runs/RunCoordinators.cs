using Akka.Actor;
using Akka.Cluster;
using DistSgd.Actors;
using DistSgd.Actors.Centralized;
using DistSgd.Actors.Decentralized;
using DistSgd.Actors.Deployment;
using DistSgd.Actors.Protocol;
using DistSgd.Actors.Steps;
using DistSgd.Host.Settings;
using DistSgd.Numerics.Training;

namespace DistSgd.Host.Runs;

/// <summary>
/// A run's coordinators on the nodes of this process, started and awaited the same way for the simulated cluster
/// (<see cref="ClusterRun"/>, also every `bench` run) and for the one node of `distsgd node` (<see cref="NodeRun"/>).
/// Which actors a node gets follows the mode and the node's cluster roles: a peer on every node (decentralized); the
/// master's singleton manager on a master-role node and a worker on a worker-role node (centralized). Each node reports
/// to a local reporter that hands everything to the run's <see cref="ProgressSink"/>.
/// </summary>
public sealed class RunCoordinators
{
    /// <summary>How long stopping one coordinator may take.</summary>
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(5);

    private readonly IReadOnlyList<ActorSystem> _nodes;
    private readonly RunMode _mode;

    private RunCoordinators(IReadOnlyList<ActorSystem> nodes, RunMode mode, IReadOnlyList<IActorRef> reporters)
    {
        _nodes = nodes;
        _mode = mode;
        Reporters = reporters;
    }

    /// <summary>Each node's reporter, in the order of the nodes.</summary>
    public IReadOnlyList<IActorRef> Reporters { get; }

    /// <summary>Starts the run's coordinators on <paramref name="nodes"/>, each reporting to <paramref name="sink"/>.</summary>
    public static RunCoordinators Start(IReadOnlyList<ActorSystem> nodes, TrainSettings settings, TrainingSetup setup, RunPlan plan,
                                        CheckpointSetup? checkpoints, ProgressSink sink)
    {
        var reporters = nodes.Select(node => node.ActorOf(CallbackActor.Props(sink.Report), "reporter")).ToList();
        int evaluationThreads = Math.Max(1, settings.Threads);
        int computePlace = 0;   // the place of a compute node among this process's, for distsgd.debug.slow-node
        for (int i = 0; i < nodes.Count; i++)
        {
            var node = nodes[i];
            if (settings.Mode == RunMode.Decentralized)
            {
                // Every peer gets the test set: which one leads (the lowest node id, by address) is decided at the start barrier.
                DecentralizedDeployment.StartPeer(node, new PeerSetup(plan, settings.ComputeNodes, setup.InitialParameters, setup.Optimizer,
                    setup.Training, setup.Train, setup.Test, reporters[i], settings.ThreadsPerComputeNode, evaluationThreads, Checkpoints: checkpoints,
                    Slowdown: DistSgdSettings.Create(node).SlowdownAt(computePlace++)));
                continue;
            }
            // Nodes with the master role host the singleton manager: the oldest runs the master, the others (worker nodes
            // that also hold the role, distsgd.standby-masters or --roles worker,master) stand by to take it over.
            var distsgd = DistSgdSettings.Create(node);
            var roles = Cluster.Get(node).SelfRoles;
            if (roles.Contains(distsgd.MasterRole))
                CentralizedDeployment.StartMaster(node, new MasterSetup(plan, settings.ComputeNodes, setup.InitialParameters,
                    setup.Optimizer, setup.Training, setup.Test, reporters[i], evaluationThreads, checkpoints, settings.BackupWorkers,
                    settings.BalanceBySpeed));
            // A worker checks the master's plan against its own (a node's data or flags may differ) and reports its RunEnded.
            if (roles.Contains(distsgd.WorkerRole))
                CentralizedDeployment.StartWorker(node, setup.Train, settings.ThreadsPerComputeNode, expected: plan, reporter: reporters[i],
                                                  slowdown: distsgd.SlowdownAt(computePlace++));
        }
        return new RunCoordinators(nodes, settings.Mode, reporters);
    }

    /// <summary>
    /// Awaits <paramref name="ending"/> (a report of the sink's, or what a caller makes of them). When
    /// <paramref name="cancellation"/> comes first, stops the coordinators and throws <see cref="OperationCanceledException"/>.
    /// </summary>
    public async Task<object> AwaitAsync(Task<object> ending, CancellationToken cancellation)
    {
        var cancelled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using (cancellation.Register(() => cancelled.TrySetResult()))
        {
            if (await Task.WhenAny(ending, cancelled.Task) != ending)
            {
                await StopAsync();
                throw new OperationCanceledException(cancellation);
            }
        }
        return await ending;
    }

    /// <summary>The θ and result of a completed run; a failed run throws <see cref="TrainingFailedException"/> with its reason.</summary>
    public static (float[] Parameters, TrainingResult Result) Completed(object outcome) => outcome switch
    {
        RunProgress.RunCompleted completed => (completed.Parameters, completed.Result),
        RunProgress.RunFailed failed => throw new TrainingFailedException(failed.Reason),
        _ => throw new InvalidOperationException($"unexpected outcome {outcome}"),
    };

    /// <summary>
    /// Stops the coordinators before the nodes go down (Ctrl+C, SIGTERM): the master, or the peers in node-id order (the
    /// lead first), while the workers are still there. Otherwise the coordinators see workers vanish during the shutdown
    /// and take steps without them, and their last checkpoint (written as they stop) would hold a state the uninterrupted
    /// run never had. Bounded: <see cref="StopTimeout"/> per actor.
    /// </summary>
    private async Task StopAsync()
    {
        var coordinators = _mode == RunMode.Decentralized
            ? _nodes.OrderBy(n => Cluster.Get(n).SelfAddress.ToString(), StringComparer.Ordinal).Select(n => (n, CoordinatorPaths.Peer))
            : _nodes.Select(n => (n, CoordinatorPaths.Master));
        foreach (var (node, path) in coordinators)
        {
            try
            {
                var actor = await node.ActorSelection(path).ResolveOne(StopTimeout);
                await actor.GracefulStop(StopTimeout);
            }
            catch (Exception e) when (e is ActorNotFoundException or TaskCanceledException or TimeoutException)
            {
                // Not on this node, or already gone.
            }
        }
    }
}

/// <summary>A distributed run that could not finish (every worker lost, a worker refused the run, …).</summary>
public sealed class TrainingFailedException(string message) : Exception(message);
