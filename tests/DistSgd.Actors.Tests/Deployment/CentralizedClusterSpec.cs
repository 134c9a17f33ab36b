using DistSgd.Actors.Steps;
using Akka.Actor;
using DistSgd.Actors.Centralized;
using DistSgd.Actors.Deployment;
using DistSgd.Actors.Protocol;
using DistSgd.Numerics.Data;
using DistSgd.Numerics.Models;
using DistSgd.Numerics.Optim;
using DistSgd.Numerics.Tensors;
using DistSgd.Numerics.Training;

namespace DistSgd.Actors.Tests.Deployment;

/// <summary>Whole centralized runs on an in-process cluster of real ActorSystems joined over loopback TCP.</summary>
public class CentralizedClusterSpec
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(90);

    internal static async Task<RunProgress.RunCompleted> RunCentralized(Dataset train, Dataset? test, ModelSpec spec, int workers,
                                                                       int batch, int epochs, SgdOptions optimizer, float[] theta0, int seed,
                                                                       string transport = "akka", string hyperparameters = "")
    {
        var roles = new List<string[]> { new[] { "master" } };
        roles.AddRange(Enumerable.Range(0, workers).Select(_ => new[] { "worker" }));
        await using var cluster = await SimulatedCluster.StartAsync(roles, NodeConfig.FrameSizeFor(spec.ParameterCount), Limit,
                                                                    overrides: TestConfig.Transport(transport));
        var done = new TaskCompletionSource<object>(TaskCreationOptions.RunContinuationsAsynchronously);
        var reporter = cluster.Nodes[0].ActorOf(CallbackActor.Props(m =>
        {
            if (m is RunProgress.RunCompleted or RunProgress.RunFailed)
                done.TrySetResult(m);
        }));
        var plan = new RunPlan("spec-run", spec, batch, seed, epochs, train.Count, ShardBatches.StepsPerEpoch(train.Count, workers, batch), hyperparameters);
        CentralizedDeployment.StartMaster(cluster.Nodes[0],
            new MasterSetup(plan, workers, theta0, optimizer, new TrainingOptions(epochs, batch, seed), test, reporter));
        for (int i = 1; i <= workers; i++)
            CentralizedDeployment.StartWorker(cluster.Nodes[i], train);

        var finished = await done.Task.WaitAsync(Limit);
        return finished as RunProgress.RunCompleted
            ?? throw new Xunit.Sdk.XunitException($"the run failed: {((RunProgress.RunFailed)finished).Reason}");
    }

    [Theory]
    [InlineData("direct", "sync-every=3")]
    [InlineData("akka", "sync-every=4")]
    [InlineData("direct", "sync-every=3;wire=bf16;compress=topk:0.2")]
    public async Task Local_sgd_averages_the_workers_models_every_H_steps(string transport, string localSgd)
    {
        var (train, test, spec, theta0) = DecentralizedClusterSpec.Blobs(4);
        var options = new SgdOptions(0.05, momentum: 0.9);
        // A worker steps with the optimizer the plan's hyper-parameters describe, as `distsgd train` writes them.
        const string optimizer = "lr=0.05;momentum=0.9;weight-decay=0;schedule=constant";
        var local = await RunCentralized(train, test, spec, 3, 10, 3, options, theta0, 4, transport, $"{optimizer};{localSgd}");
        var every = await RunCentralized(train, test, spec, 3, 10, 3, options, theta0, 4, transport, optimizer);

        Assert.NotEqual(every.Parameters, local.Parameters);
        Assert.True(local.Result.Final!.TestAccuracy > 0.8, $"test accuracy {local.Result.Final.TestAccuracy}");
        var (a, b) = (local.Result.Final.Communication!, every.Result.Final!.Communication!);
        Assert.Equal(b.Steps, a.Steps);   // every step of the run is counted, the workers' own included
        Assert.True(a.BytesSent * 2 < b.BytesSent && a.BytesReceived * 2 < b.BytesReceived,
                    $"sent {a.BytesSent} and received {a.BytesReceived} with local SGD vs {b.BytesSent} and {b.BytesReceived} every step");
        // A worker refuses an update of θ that does not give the master's Σθ: none refused, none dropped.
        Assert.Equal(0, a.DroppedMessages);
        Assert.Equal(every.Result.Epochs.Select(e => e.Step), local.Result.Epochs.Select(e => e.Step));   // each epoch ends at the same step
    }

    [Theory]
    [InlineData("sync-every=3", "local SGD (sync-every = 3) steps with the run's optimizer")]
    [InlineData("compress=topk:0.05", "topk:0.05 applies the run's momentum at this worker")]
    public async Task A_plan_that_steps_at_the_workers_without_the_optimizer_is_refused_by_them(string hyperparameters, string expected)
    {
        var (train, test, spec, theta0) = DecentralizedClusterSpec.Blobs(4);
        var error = await Assert.ThrowsAsync<Xunit.Sdk.XunitException>(() =>
            RunCentralized(train, test, spec, 2, 10, 1, new SgdOptions(0.05), theta0, 4, "direct", hyperparameters));
        Assert.Contains(expected, error.Message);
    }

    [Theory]
    [InlineData("akka")]
    [InlineData("direct")]
    public async Task A_master_and_three_workers_train_to_the_end(string transport)
    {
        var data = Synthetic.GaussianBlobs(600, 6, 3, spread: 4, seed: 2);
        var (train, test) = DataSplit.TrainTestSplit(data, 0.25, seed: 2);
        var spec = new ModelSpec(ModelKind.Mlp, 6, 3, [8]);
        var theta0 = new float[spec.ParameterCount];
        new Model(spec, NaiveKernels.Instance).Initialize(theta0, 4);

        var result = await RunCentralized(train, test, spec, workers: 3, batch: 10, epochs: 3, new SgdOptions(0.05, momentum: 0.9), theta0, seed: 4, transport);

        Assert.Equal(3, result.Result.Epochs.Count);
        Assert.Equal(StopReason.EpochLimit, result.Result.StopReason);
        var last = result.Result.Final!;
        Assert.Equal(3 * ShardBatches.StepsPerEpoch(train.Count, 3, 10), last.Step);
        Assert.True(last.TestAccuracy > 0.8, $"test accuracy {last.TestAccuracy}");
        Assert.True(last.Communication!.BytesSent > 0 && last.Communication.BytesReceived > 0);
        Assert.Equal(0, last.Communication.DroppedMessages);
    }

    [Theory]
    [InlineData("akka")]
    [InlineData("direct")]
    public async Task N_workers_with_batch_b_match_sequential_sgd_with_batch_N_times_b_over_the_same_samples(string transport)
    {
        const int workers = 2, batch = 8, epochs = 2, seed = 9;
        var train = Synthetic.GaussianBlobs(70, 4, 3, spread: 3, seed: 1);   // 35 per shard: the last batch is short
        var spec = new ModelSpec(ModelKind.Mlp, 4, 3, [5], Activation.Tanh);
        var model = new Model(spec, NaiveKernels.Instance);
        var theta0 = new float[spec.ParameterCount];
        model.Initialize(theta0, seed);
        var options = new SgdOptions(0.1, momentum: 0.9);

        var distributed = await RunCentralized(train, null, spec, workers, batch, epochs, options, theta0, seed, transport);

        var reference = SequentialReference(train, spec, workers, batch, epochs, options, theta0, seed);

        // Only the summation order differs (per-worker means then a weighted average): float rounding.
        for (int i = 0; i < reference.Length; i++)
            Assert.True(Math.Abs(reference[i] - distributed.Parameters[i]) <= 1e-5 + 1e-4 * Math.Abs(reference[i]),
                        $"parameter {i}: sequential {reference[i]}, centralized {distributed.Parameters[i]}");
        Assert.NotEqual(theta0, distributed.Parameters);
    }

    /// <summary>Sequential SGD whose batch at each step is the union of the <paramref name="workers"/>' batches (N·b samples).</summary>
    internal static float[] SequentialReference(Dataset train, ModelSpec spec, int workers, int batch, int epochs, SgdOptions options,
                                                float[] theta0, int seed)
    {
        var model = new Model(spec, NaiveKernels.Instance);
        var reference = (float[])theta0.Clone();
        var optimizer = new SgdOptimizer(options, reference.Length);
        var shards = Enumerable.Range(0, workers).Select(w => new ShardBatches(train, w, workers, batch, seed)).ToList();
        int features = spec.InputCount;
        var x = new float[workers * batch * features];
        var y = new float[workers * batch];
        var gradient = new float[reference.Length];
        int steps = ShardBatches.StepsPerEpoch(train.Count, workers, batch);
        for (int epoch = 1; epoch <= epochs; epoch++)
        {
            for (int k = 0; k < steps; k++)
            {
                int rows = 0;
                foreach (var shard in shards)
                    rows += shard.Gather(epoch, k, x.AsSpan(rows * features), y.AsSpan(rows));
                model.LossAndGradient(reference, x.AsSpan(0, rows * features), y.AsSpan(0, rows), rows, gradient);
                optimizer.Step(reference, gradient);
            }
        }
        return reference;
    }
}
