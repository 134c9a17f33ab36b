using DistSgd.Actors;
using DistSgd.Actors.Decentralized;
using DistSgd.Actors.Deployment;
using DistSgd.Actors.Steps;
using DistSgd.Host.Results;
using DistSgd.Host.Settings;
using DistSgd.Numerics.Models;
using DistSgd.Numerics.Training;

namespace DistSgd.Host.Runs;

/// <summary>
/// Runs a distributed mode on the single-process simulated cluster, ActorSystems on 127.0.0.1 joined over TCP:
/// centralized = a master node (the MasterActor as a cluster singleton) and N worker nodes; decentralized =
/// N peer nodes (role "peer"), one PeerActor each. The coordinators are started and awaited by
/// <see cref="RunCoordinators"/>, as on a `distsgd node`.
/// </summary>
public static class ClusterRun
{
    /// <summary>How long, after the lead peer's result, the other peers' final replicas are awaited for the check.</summary>
    private static readonly TimeSpan ReplicaReportWait = TimeSpan.FromSeconds(10);

    public static (float[] Parameters, TrainingResult Result) Run(TrainSettings settings, EffectiveConfig config, TrainingSetup setup,
                                                                  Action<EpochMetrics> onEpoch, TextWriter output,
                                                                  CancellationToken cancellation, CheckpointSetup? checkpoints = null,
                                                                  Action<RunProgress.StepProgress>? onStep = null, MetricsEndpoint? metrics = null)
        => RunAsync(settings, config, setup, onEpoch, output, cancellation, checkpoints, onStep, metrics).GetAwaiter().GetResult();

    /// <summary>The role list of every node of the mode's simulated cluster.</summary>
    public static IReadOnlyList<string[]> NodeRoles(TrainSettings settings, DistSgdSettings distsgd)
    {
        var roles = new List<string[]>();
        if (settings.Mode == RunMode.Decentralized)
        {
            for (int i = 0; i < settings.ComputeNodes; i++)
                roles.Add([distsgd.PeerRole]);
            return roles;
        }
        roles.Add([distsgd.MasterRole]);
        for (int i = 0; i < settings.ComputeNodes; i++)
            roles.Add(i < distsgd.StandbyMasters ? [distsgd.WorkerRole, distsgd.MasterRole] : [distsgd.WorkerRole]);
        return roles;
    }

    private static async Task<(float[], TrainingResult)> RunAsync(TrainSettings settings, EffectiveConfig config, TrainingSetup setup,
                                                                 Action<EpochMetrics> onEpoch, TextWriter output,
                                                                 CancellationToken cancellation, CheckpointSetup? checkpoints,
                                                                 Action<RunProgress.StepProgress>? onStep, MetricsEndpoint? metrics)
    {
        bool decentralized = settings.Mode == RunMode.Decentralized;
        long frame = setup.FrameSize(settings.Mode);
        var roles = NodeRoles(settings, config.DistSgd);
        var tls = config.TlsIdentity(settings, output);
        string members = decentralized ? $"{settings.ComputeNodes} peers" : $"1 master, {settings.ComputeNodes} workers";
        output.WriteLine($"cluster: starting {roles.Count} nodes on 127.0.0.1 ({members}), frame size {frame / 1024 / 1024} MiB, payloads over {TransportName(config.DistSgd)}");
        // Akka's log goes to the results folder's distsgd.log; only its warnings and errors reach the console.
        var (logged, logLevel) = RunLog.Into(settings.Out, config.Overrides, config.AkkaLogLevel);
        logged = RunTrace.Into(logged, settings.TraceFile)!;
        // The numeric code compiles while the nodes form the cluster, not in the first steps (README, "Warm-up").
        var warmUp = ModelWarmUp.Start(setup.Spec, setup.Training.BatchSize, setup.Optimizer);
        await using var cluster = await SimulatedCluster.StartAsync(roles, frame, TimeSpan.FromSeconds(60), logLevel, logged, tls);
        await warmUp;
        output.WriteLine($"cluster: {cluster.Nodes.Count} members Up: {string.Join(", ", cluster.Nodes.Select(n => Akka.Cluster.Cluster.Get(n).SelfAddress.Port))}");
        foreach (var node in cluster.Nodes)
            metrics?.Watch(node);

        var replicas = new List<PeerFinished>();
        var allReplicas = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var sink = new ProgressSink(output, onEpoch, onStep)
        {
            OnPeerFinished = finished =>
            {
                replicas.Add(finished);
                if (replicas.Count == settings.ComputeNodes)
                    allReplicas.TrySetResult();
            },
        };
        var plan = setup.ToRunPlan(Guid.NewGuid().ToString("N")[..12], settings, config.CollectiveFor(settings, setup.Spec.ParameterCount));
        if (decentralized)
            output.WriteLine(config.DescribeCollective(settings, setup.Spec.ParameterCount));
        var coordinators = RunCoordinators.Start(cluster.Nodes, settings, setup, plan, checkpoints, sink);
        var outcome = await coordinators.AwaitAsync(sink.Ended, cancellation);
        if (outcome is RunProgress.RunCompleted && decentralized)
        {
            await Task.WhenAny(allReplicas.Task, Task.Delay(ReplicaReportWait, cancellation));
            sink.Locked(() => output.WriteLine(DescribeReplicas(replicas, settings.ComputeNodes)));
        }
        return RunCoordinators.Completed(outcome);
    }

    private static string TransportName(DistSgdSettings distsgd) =>
        distsgd.Transport == Actors.Transport.PayloadTransport.Direct ? "direct TCP (--transport direct)" : "Akka.Remote (--transport akka)";

    private static string DescribeReplicas(IReadOnlyList<PeerFinished> replicas, int peers)
    {
        var distinct = replicas.Select(r => Convert.ToHexString(r.Hash)).Distinct().Count();
        string hash = replicas.Count > 0 ? ReplicaCheck.Short(replicas[0].Hash) : "-";
        return distinct == 1 && replicas.Count == peers
            ? (peers == 1 ? $"cluster: 1 replica (sha256 {hash}…)" : $"cluster: all {peers} replicas bit-identical (sha256 {hash}…)")
            : $"cluster: WARNING: {replicas.Count} of {peers} replicas reported, {distinct} distinct hashes: " +
              string.Join(", ", replicas.OrderBy(r => r.NodeId).Select(r => $"node {r.NodeId} {ReplicaCheck.Short(r.Hash)}"));
    }
}
