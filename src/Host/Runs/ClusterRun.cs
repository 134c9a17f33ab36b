using Akka.Actor;
using DistSgd.Actors;
using DistSgd.Actors.Centralized;
using DistSgd.Actors.Deployment;
using DistSgd.Actors.Protocol;
using DistSgd.Numerics.Data;
using DistSgd.Numerics.Models;
using DistSgd.Numerics.Optim;
using DistSgd.Numerics.Training;

namespace DistSgd.Host.Runs;

/// <summary>What a distributed run starts from, prepared by <see cref="TrainRun"/> exactly as for a sequential one.</summary>
public sealed record DistributedPlan(ModelSpec Spec, float[] InitialParameters, SgdOptions Optimizer, TrainingOptions Training,
                                     Dataset Train, Dataset Test, int StepsPerEpoch);

/// <summary>
/// Runs a distributed mode on the single-process simulated cluster: N+1 ActorSystems on 127.0.0.1
/// (a master node and N worker nodes) joined over TCP, the MasterActor as a cluster singleton.
/// </summary>
public static class ClusterRun
{
    public static (float[] Parameters, TrainingResult Result) Run(TrainSettings settings, DistributedPlan plan,
                                                                  Action<EpochMetrics> onEpoch, TextWriter output,
                                                                  CancellationToken cancellation)
        => RunAsync(settings, plan, onEpoch, output, cancellation).GetAwaiter().GetResult();

    private static async Task<(float[], TrainingResult)> RunAsync(TrainSettings settings, DistributedPlan plan,
                                                                 Action<EpochMetrics> onEpoch, TextWriter output,
                                                                 CancellationToken cancellation)
    {
        long frame = NodeConfig.FrameSizeFor(plan.Spec.ParameterCount);
        var overrides = HoconFile.Load(settings.ConfigFile);
        // A bad distsgd.* value fails here, naming its key, before any node starts.
        DistSgdSettings.Create(overrides is null ? DistSgdConfig.ReferenceConfig : overrides.WithFallback(DistSgdConfig.ReferenceConfig));
        var roles = new List<string[]> { new[] { "master" } };
        for (int i = 0; i < settings.Workers; i++)
            roles.Add(new[] { "worker" });
        output.WriteLine($"cluster: starting {roles.Count} nodes on 127.0.0.1 (1 master, {settings.Workers} workers), frame size {frame / 1024 / 1024} MiB");
        await using var cluster = await SimulatedCluster.StartAsync(roles, frame, TimeSpan.FromSeconds(60),
                                                               Environment.GetEnvironmentVariable("DISTSGD_AKKA_LOGLEVEL") ?? "WARNING", overrides);
        output.WriteLine($"cluster: {cluster.Nodes.Count} members Up: {string.Join(", ", cluster.Nodes.Select(n => Akka.Cluster.Cluster.Get(n).SelfAddress.Port))}");

        var done = new TaskCompletionSource<object>(TaskCreationOptions.RunContinuationsAsynchronously);
        var master = cluster.Nodes[0];
        void OnProgress(object message)
        {
            switch (message)
            {
                case RunProgress.EpochCompleted epoch:
                    onEpoch(epoch.Metrics);
                    break;
                case RunProgress.Note note:
                    output.WriteLine($"cluster: {note.Text}");
                    break;
                case RunProgress.RunCompleted or RunProgress.RunFailed:
                    done.TrySetResult(message);
                    break;
            }
        }
        var reporter = master.ActorOf(CallbackActor.Props(OnProgress), "reporter");

        var runPlan = new RunPlan(Guid.NewGuid().ToString("N")[..12], plan.Spec, settings.BatchSize, settings.Seed,
                                  settings.Epochs, plan.Train.Count, plan.StepsPerEpoch);
        CentralizedDeployment.StartMaster(master, new MasterSetup(runPlan, settings.Workers, plan.InitialParameters,
            plan.Optimizer, plan.Training, plan.Test, reporter, Math.Max(1, settings.Threads)));
        for (int i = 1; i < cluster.Nodes.Count; i++)
            CentralizedDeployment.StartWorker(cluster.Nodes[i], plan.Train, settings.ThreadsPerWorker);

        using var cancelled = cancellation.Register(() => done.TrySetCanceled());
        var outcome = await done.Task;
        return outcome switch
        {
            RunProgress.RunCompleted completed => (completed.Parameters, completed.Result),
            RunProgress.RunFailed failed => throw new TrainingFailedException(failed.Reason),
            _ => throw new InvalidOperationException($"unexpected outcome {outcome}"),
        };
    }
}

/// <summary>A distributed run that could not finish (every worker lost, a worker refused the run, …).</summary>
public sealed class TrainingFailedException(string message) : Exception(message);
