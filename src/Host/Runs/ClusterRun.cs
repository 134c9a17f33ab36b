using DistSgd.Actors.Steps;
using Akka.Actor;
using DistSgd.Actors;
using DistSgd.Actors.Centralized;
using DistSgd.Actors.Decentralized;
using DistSgd.Actors.Deployment;
using DistSgd.Actors.Protocol;
using DistSgd.Numerics.Data;
using DistSgd.Numerics.Models;
using DistSgd.Numerics.Optim;
using DistSgd.Numerics.Training;

namespace DistSgd.Host.Runs;

/// <summary>What a distributed run starts from, prepared by <see cref="TrainRun"/> exactly as for a sequential one.</summary>
public sealed record DistributedPlan(ModelSpec Spec, float[] InitialParameters, SgdOptions Optimizer, TrainingOptions Training,
                                     Dataset Train, Dataset Test, int StepsPerEpoch, string Hyperparameters = "")
{
    /// <summary>The plan every node of the run checks (<see cref="RunPlan.Differences"/>) before the first step.</summary>
    public RunPlan ToRunPlan(string runId, TrainSettings settings) =>
        new(runId, Spec, settings.BatchSize, settings.Seed, settings.Epochs, Train.Count, StepsPerEpoch, Hyperparameters);
}

/// <summary>
/// Runs a distributed mode on the single-process simulated cluster, ActorSystems on 127.0.0.1 joined over TCP:
/// centralized = a master node (the MasterActor as a cluster singleton) and N worker nodes; decentralized =
/// N peer nodes (role "peer"), one PeerActor each. Starting the cluster, reporting progress and collecting the
/// result are the same for both; only <see cref="StartActors"/> differs.
/// </summary>
public static class ClusterRun
{
    /// <summary>How long, after the lead peer's result, the other peers' final replicas are awaited for the check.</summary>
    private static readonly TimeSpan ReplicaReportWait = TimeSpan.FromSeconds(10);

    public static (float[] Parameters, TrainingResult Result) Run(TrainSettings settings, DistributedPlan plan,
                                                                  Action<EpochMetrics> onEpoch, TextWriter output,
                                                                  CancellationToken cancellation, CheckpointSetup? checkpoints = null,
                                                                  Action<RunProgress.StepProgress>? onStep = null)
        => RunAsync(settings, plan, onEpoch, output, cancellation, checkpoints, onStep).GetAwaiter().GetResult();

    /// <summary>The role list of every node of the mode's simulated cluster.</summary>
    public static IReadOnlyList<string[]> NodeRoles(TrainSettings settings, DistSgdSettings distsgd)
    {
        var roles = new List<string[]>();
        if (settings.Mode == Modes.Decentralized)
        {
            for (int i = 0; i < settings.Workers; i++)
                roles.Add([distsgd.PeerRole]);
            return roles;
        }
        roles.Add([distsgd.MasterRole]);
        for (int i = 0; i < settings.Workers; i++)
            roles.Add(i < distsgd.StandbyMasters ? [distsgd.WorkerRole, distsgd.MasterRole] : [distsgd.WorkerRole]);
        return roles;
    }

    private static async Task<(float[], TrainingResult)> RunAsync(TrainSettings settings, DistributedPlan plan,
                                                                 Action<EpochMetrics> onEpoch, TextWriter output,
                                                                 CancellationToken cancellation, CheckpointSetup? checkpoints,
                                                                 Action<RunProgress.StepProgress>? onStep)
    {
        bool decentralized = settings.Mode == Modes.Decentralized;
        // A decentralized ReplicaResync carries θ and the momentum velocity: two vectors in one frame.
        long frame = NodeConfig.FrameSizeFor(decentralized ? 2 * plan.Spec.ParameterCount : plan.Spec.ParameterCount);
        var overrides = Overrides(settings);
        // A bad distsgd.* value fails here, naming its key, before any node starts.
        var distsgd = DistSgdSettings.Create(overrides is null ? DistSgdConfig.ReferenceConfig : overrides.WithFallback(DistSgdConfig.ReferenceConfig));
        var roles = NodeRoles(settings, distsgd);
        var tls = NodeTlsOf(settings, overrides, output);
        string members = decentralized ? $"{settings.Workers} peers" : $"1 master, {settings.Workers} workers";
        output.WriteLine($"cluster: starting {roles.Count} nodes on 127.0.0.1 ({members}), frame size {frame / 1024 / 1024} MiB, payloads over {TransportName(distsgd)}");
        // Akka's log goes to the results folder's distsgd.log; only its warnings and errors reach the console.
        var (logged, logLevel) = Results.RunLog.Into(settings.Out, overrides);
        await using var cluster = await SimulatedCluster.StartAsync(roles, frame, TimeSpan.FromSeconds(60), logLevel, logged, tls);
        output.WriteLine($"cluster: {cluster.Nodes.Count} members Up: {string.Join(", ", cluster.Nodes.Select(n => Akka.Cluster.Cluster.Get(n).SelfAddress.Port))}");

        // Progress arrives from actors on several nodes' threads: one lock keeps the output whole.
        var gate = new object();
        var done = new TaskCompletionSource<object>(TaskCreationOptions.RunContinuationsAsynchronously);
        var replicas = new List<PeerFinished>();
        var allReplicas = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        void OnProgress(object message)
        {
            lock (gate)
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
                        replicas.Add(finished);
                        if (replicas.Count == settings.Workers)
                            allReplicas.TrySetResult();
                        break;
                    case RunProgress.RunCompleted or RunProgress.RunFailed:
                        done.TrySetResult(message);
                        break;
                }
            }
        }
        var reporters = cluster.Nodes.Select(node => node.ActorOf(CallbackActor.Props(OnProgress), "reporter")).ToList();

        var runPlan = plan.ToRunPlan(Guid.NewGuid().ToString("N")[..12], settings);
        StartActors(settings, plan, runPlan, cluster, reporters, checkpoints);

        using var cancelled = cancellation.Register(() => done.TrySetCanceled());
        object outcome;
        try
        {
            outcome = await done.Task;
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            await RunCheckpoints.StopCoordinatorsAsync(cluster.Nodes, decentralized);
            throw;
        }
        if (outcome is RunProgress.RunCompleted && decentralized)
        {
            await Task.WhenAny(allReplicas.Task, Task.Delay(ReplicaReportWait, cancellation));
            lock (gate)
                output.WriteLine(DescribeReplicas(replicas, settings.Workers));
        }
        return outcome switch
        {
            RunProgress.RunCompleted completed => (completed.Parameters, completed.Result),
            RunProgress.RunFailed failed => throw new TrainingFailedException(failed.Reason),
            _ => throw new InvalidOperationException($"unexpected outcome {outcome}"),
        };
    }

    /// <summary>The --config file's keys, with --transport and the --tls-* flags over them when given.</summary>
    public static Akka.Configuration.Config? Overrides(TrainSettings settings)
    {
        var overrides = HoconFile.Load(settings.ConfigFile);
        if (settings.Tls.Overrides(settings.Mode) is { } tls)
            overrides = overrides is null ? tls : tls.WithFallback(overrides);
        if (settings.Transport is not { } transport)
            return overrides;
        var flag = Akka.Configuration.ConfigurationFactory.ParseString($"distsgd.transport = {transport}");
        return overrides is null ? flag : flag.WithFallback(overrides);
    }

    /// <summary>The node's TLS identity from the --tls-* flags or --config (null: plain TCP), said on <paramref name="output"/>.</summary>
    public static Actors.Security.NodeTls? NodeTlsOf(TrainSettings settings, Akka.Configuration.Config? overrides, TextWriter output)
    {
        var tls = overrides is null ? null : Actors.Security.NodeTls.FromConfig(overrides);
        settings.Tls.CheckUsed(tls is not null);
        if (tls is not null)
            output.WriteLine($"tls: on, certificate {tls.Certificate.Subject} from {tls.Path}, peers must chain to {tls.Authorities[0].Subject}");
        return tls;
    }

    /// <summary>"akka" or "direct": what carries the run's payloads, from --transport or distsgd.transport.</summary>
    public static string TransportOf(TrainSettings settings)
    {
        var overrides = Overrides(settings);
        var distsgd = DistSgdSettings.Create(overrides is null ? DistSgdConfig.ReferenceConfig : overrides.WithFallback(DistSgdConfig.ReferenceConfig));
        return distsgd.Transport == Actors.Transport.PayloadTransport.Direct ? "direct" : "akka";
    }

    private static string TransportName(DistSgdSettings distsgd) =>
        distsgd.Transport == Actors.Transport.PayloadTransport.Direct ? "direct TCP (--transport direct)" : "Akka.Remote (--transport akka)";

    /// <summary>Starts the mode's actors on the cluster's nodes; each node reports to its own local reporter.</summary>
    private static void StartActors(TrainSettings settings, DistributedPlan plan, RunPlan runPlan, SimulatedCluster cluster,
                                    IReadOnlyList<IActorRef> reporters, CheckpointSetup? checkpoints)
    {
        int evaluationThreads = Math.Max(1, settings.Threads);
        if (settings.Mode == Modes.Decentralized)
        {
            // Every peer gets the test set: which one leads (the lowest node id, by address) is decided at the start barrier.
            for (int i = 0; i < cluster.Nodes.Count; i++)
                DecentralizedDeployment.StartPeer(cluster.Nodes[i], new PeerSetup(runPlan, settings.Workers, plan.InitialParameters,
                    plan.Optimizer, plan.Training, plan.Train, plan.Test, reporters[i], settings.ThreadsPerWorker, evaluationThreads,
                    Checkpoints: checkpoints));
            return;
        }
        // Node 0 hosts the master; worker nodes that also hold the master role (distsgd.standby-masters) stand by to take it over.
        var distsgd = DistSgdSettings.Create(cluster.Nodes[0]);
        for (int i = 0; i < cluster.Nodes.Count; i++)
        {
            if (Akka.Cluster.Cluster.Get(cluster.Nodes[i]).SelfRoles.Contains(distsgd.MasterRole))
                CentralizedDeployment.StartMaster(cluster.Nodes[i], new MasterSetup(runPlan, settings.Workers, plan.InitialParameters,
                    plan.Optimizer, plan.Training, plan.Test, reporters[i], evaluationThreads, checkpoints));
            if (i > 0)
                CentralizedDeployment.StartWorker(cluster.Nodes[i], plan.Train, settings.ThreadsPerWorker);
        }
    }

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

/// <summary>A distributed run that could not finish (every worker lost, a worker refused the run, …).</summary>
public sealed class TrainingFailedException(string message) : Exception(message);
