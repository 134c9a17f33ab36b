using DistSgd.Actors.Steps;
using Akka.Actor;
using DistSgd.Actors.Centralized;
using DistSgd.Actors.Decentralized;
using DistSgd.Actors.Deployment;
using DistSgd.Actors.Protocol;
using DistSgd.Numerics.Data;
using DistSgd.Numerics.Models;
using DistSgd.Numerics.Optim;
using DistSgd.Numerics.Tensors;
using DistSgd.Numerics.Training;

namespace DistSgd.Actors.Tests.Deployment;

/// <summary>Whole decentralized runs on an in-process cluster of peer ActorSystems joined over loopback TCP.</summary>
public class DecentralizedClusterSpec
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(60);

    internal sealed record Outcome(RunProgress.RunCompleted Lead, IReadOnlyList<PeerFinished> Peers, IReadOnlyList<string> Notes);

    internal static async Task<Outcome> RunDecentralized(Dataset train, Dataset? test, ModelSpec spec, int peers, int batch, int epochs,
                                                         SgdOptions optimizer, float[] theta0, int seed, int? corruptNodeAtEpoch = null,
                                                         string transport = "akka", Collective collective = Collective.AllGather,
                                                         string hyperparameters = "")
    {
        var roles = Enumerable.Range(0, peers).Select(_ => new[] { "peer" }).ToList();
        await using var cluster = await SimulatedCluster.StartAsync(roles, NodeConfig.FrameSizeFor(spec.ParameterCount), Limit,
                                                                    overrides: TestConfig.Transport(transport).WithFallback(TestConfig.FastPubSub));
        var progress = new PeerRunProgress(peers);

        var plan = new RunPlan("peer-run", spec, batch, seed, epochs, train.Count, ShardBatches.StepsPerEpoch(train.Count, peers, batch), hyperparameters, collective);
        var actors = cluster.Nodes.Select(node => DecentralizedDeployment.StartPeer(node, new PeerSetup(
            plan, peers, theta0, optimizer, new TrainingOptions(epochs, batch, seed), train, test,
            node.ActorOf(CallbackActor.Props(progress.OnProgress))))).ToList();
        if (corruptNodeAtEpoch is { } epoch)
            actors[^1].Tell(new PeerQueries.CorruptReplicaAtEpochEnd(epoch));   // the last node: any node id

        await progress.WaitAsync(Limit);
        return new Outcome(progress.Lead, progress.Peers, progress.Notes);
    }

    /// <summary>Three Gaussian blobs in 6 dimensions, 75 % of <paramref name="samples"/> for training, and a small MLP's θ₀.</summary>
    internal static (Dataset Train, Dataset Test, ModelSpec Spec, float[] Theta0) Blobs(int seed, int samples = 600)
    {
        var data = Synthetic.GaussianBlobs(samples, 6, 3, spread: 4, seed: 2);
        var (train, test) = DataSplit.TrainTestSplit(data, 0.25, seed: 2);
        var spec = new ModelSpec(ModelKind.Mlp, 6, 3, [8]);
        var theta0 = new float[spec.ParameterCount];
        new Model(spec, NaiveKernels.Instance).Initialize(theta0, seed);
        return (train, test, spec, theta0);
    }

    [Theory]
    [InlineData("akka")]
    [InlineData("direct")]
    public async Task Three_peers_train_to_the_end_with_bit_identical_replicas(string transport)
    {
        var (train, test, spec, theta0) = Blobs(4);

        var outcome = await RunDecentralized(train, test, spec, peers: 3, batch: 10, epochs: 3, new SgdOptions(0.05, momentum: 0.9), theta0, seed: 4,
                                             transport: transport);

        var result = outcome.Lead.Result;
        Assert.Equal(3, result.Epochs.Count);
        Assert.Equal(StopReason.EpochLimit, result.StopReason);
        Assert.Equal(3 * ShardBatches.StepsPerEpoch(train.Count, 3, 10), result.Final!.Step);
        Assert.True(result.Final.TestAccuracy > 0.8, $"test accuracy {result.Final.TestAccuracy}");
        var breakdown = result.Final.Communication!;
        Assert.True(breakdown.BytesSent > 0 && breakdown.BytesReceived > 0);
        Assert.True(breakdown.DroppedMessages == 0,
                    $"dropped {breakdown.DroppedMessages}: {string.Join(", ", (breakdown.DroppedByKind ?? new Dictionary<string, long>()).Select(k => $"{k.Key} {k.Value}"))}; notes: {string.Join(" | ", outcome.Notes)}");

        Assert.Equal([0, 1, 2], outcome.Peers.Select(p => p.NodeId));
        foreach (var peer in outcome.Peers)
        {
            Assert.Equal(outcome.Lead.Parameters, peer.Parameters);    // bit-identical (float equality, element by element)
            Assert.Equal(outcome.Peers[0].Hash, peer.Hash);
        }
        Assert.DoesNotContain(outcome.Notes, n => n.Contains("MISMATCH"));
        Assert.NotEqual(theta0, outcome.Lead.Parameters);
    }

    [Fact]
    public async Task A_corrupted_replica_is_reported_and_repaired_from_the_majority()
    {
        var (train, test, spec, theta0) = Blobs(5);

        var outcome = await RunDecentralized(train, test, spec, peers: 3, batch: 20, epochs: 2, new SgdOptions(0.05, momentum: 0.9), theta0,
                                             seed: 5, corruptNodeAtEpoch: 1);

        Assert.Contains(outcome.Notes, n => n.Contains("REPLICA MISMATCH after epoch 1"));
        Assert.Contains(outcome.Notes, n => n.Contains("re-synchronised its replica") && n.Contains("after epoch 1"));
        foreach (var peer in outcome.Peers)
            Assert.Equal(outcome.Lead.Parameters, peer.Parameters);

        // The repair restores the uncorrupted trajectory: the same run without the corruption ends with the same bits.
        var clean = await RunDecentralized(train, test, spec, peers: 3, batch: 20, epochs: 2, new SgdOptions(0.05, momentum: 0.9), theta0, seed: 5);
        Assert.Equal(clean.Lead.Parameters, outcome.Lead.Parameters);
    }

    [Theory]
    [InlineData("akka")]
    [InlineData("direct")]
    public async Task Decentralized_and_centralized_runs_with_the_same_seed_workers_and_batch_are_bit_identical(string transport)
    {
        const int nodes = 2, batch = 8, epochs = 2, seed = 9;
        var train = Synthetic.GaussianBlobs(70, 4, 3, spread: 3, seed: 1);   // 35 per shard: the last batch is short
        var spec = new ModelSpec(ModelKind.Mlp, 4, 3, [5], Activation.Tanh);
        var theta0 = new float[spec.ParameterCount];
        new Model(spec, NaiveKernels.Instance).Initialize(theta0, seed);
        var options = new SgdOptions(0.1, momentum: 0.9);

        var decentralized = await RunDecentralized(train, null, spec, nodes, batch, epochs, options, theta0, seed, transport: transport);
        var centralized = await CentralizedClusterSpec.RunCentralized(train, null, spec, nodes, batch, epochs, options, theta0, seed, transport);

        // Same shards, same gradients at the same θ, the same WeightedAverage in the same order, the same optimizer:
        // tolerance 0, every float equal.
        Assert.Equal(centralized.Parameters, decentralized.Lead.Parameters);
        Assert.NotEqual(theta0, decentralized.Lead.Parameters);
    }

    [Theory]
    [InlineData("wire=bf16")]
    [InlineData("wire=fp16;fp16-scale=256")]
    [InlineData("compress=topk:0.05")]
    [InlineData("wire=bf16;compress=topk:0.1")]
    [InlineData("compress=topk-ef:0.05")]
    public async Task Compressed_gradients_keep_replicas_bit_identical_in_both_modes(string wire)
    {
        const int nodes = 3, batch = 8, epochs = 2, seed = 9;
        var train = Synthetic.GaussianBlobs(100, 4, 3, spread: 3, seed: 1);
        var spec = new ModelSpec(ModelKind.Mlp, 4, 3, [5], Activation.Tanh);
        var theta0 = new float[spec.ParameterCount];
        new Model(spec, NaiveKernels.Instance).Initialize(theta0, seed);
        var options = new SgdOptions(0.1, momentum: 0.9);
        // Top-k's workers apply the momentum themselves (momentum correction), as the plan's hyper-parameters give it.
        string hyperparameters = $"lr=0.1;momentum=0.9;weight-decay=0;schedule=constant;{wire}";

        var decentralized = await RunDecentralized(train, null, spec, nodes, batch, epochs, options, theta0, seed, transport: "direct", hyperparameters: hyperparameters);
        var centralized = await CentralizedClusterSpec.RunCentralized(train, null, spec, nodes, batch, epochs, options, theta0, seed, "direct", hyperparameters);
        var uncompressed = await CentralizedClusterSpec.RunCentralized(train, null, spec, nodes, batch, epochs, options, theta0, seed, "direct");

        foreach (var peer in decentralized.Peers)
            Assert.Equal(decentralized.Lead.Parameters, peer.Parameters);
        Assert.DoesNotContain(decentralized.Notes, n => n.Contains("MISMATCH"));
        Assert.Equal(0, decentralized.Lead.Result.Final!.Communication!.DroppedMessages);
        // The master sends θ's compressed update and applies it itself (ParameterUpdates): not the decentralized θ, and a
        // worker whose θ were not the master's would refuse the update (its Σθ differs) and leave steps short of samples.
        Assert.NotEqual(uncompressed.Parameters, centralized.Parameters);
        var compressed = centralized.Result.Final!.Communication!;
        var fp32 = uncompressed.Result.Final!.Communication!;
        // The return path is dense in the wire's precision (ShareEncoding.Dense): float32 top-k sends θ whole.
        bool returnsFloat32 = !wire.Contains("wire=");
        Assert.True(compressed.BytesReceived < fp32.BytesReceived && (returnsFloat32 ? compressed.BytesSent == fp32.BytesSent : compressed.BytesSent < fp32.BytesSent),
                    $"sent {compressed.BytesSent} and received {compressed.BytesReceived} compressed vs {fp32.BytesSent} and {fp32.BytesReceived} as float32");
        Assert.Equal(centralized.Result.Epochs.Select(e => e.Communication!.Steps), uncompressed.Result.Epochs.Select(e => e.Communication!.Steps));
        Assert.Equal(0, compressed.DroppedMessages);
    }

    [Theory]
    [InlineData("direct", "sync-every=3")]
    [InlineData("akka", "sync-every=4")]
    [InlineData("direct", "sync-every=3;wire=bf16;compress=topk:0.2")]
    public async Task Local_sgd_averages_models_every_H_steps_into_bit_identical_replicas(string transport, string hyperparameters)
    {
        var (train, test, spec, theta0) = Blobs(4);
        var options = new SgdOptions(0.05, momentum: 0.9);
        var local = await RunDecentralized(train, test, spec, peers: 3, batch: 10, epochs: 3, options, theta0, seed: 4, transport: transport,
                                           hyperparameters: hyperparameters);
        var every = await RunDecentralized(train, test, spec, peers: 3, batch: 10, epochs: 3, options, theta0, seed: 4, transport: transport);

        foreach (var peer in local.Peers)
            Assert.Equal(local.Lead.Parameters, peer.Parameters);   // an epoch's last step averages: every replica the same
        Assert.DoesNotContain(local.Notes, n => n.Contains("MISMATCH"));
        Assert.NotEqual(every.Lead.Parameters, local.Lead.Parameters);
        Assert.True(local.Lead.Result.Final!.TestAccuracy > 0.8, $"test accuracy {local.Lead.Result.Final.TestAccuracy}");
        var (a, b) = (local.Lead.Result.Final.Communication!, every.Lead.Result.Final!.Communication!);
        Assert.Equal(b.Steps, a.Steps);
        Assert.True(a.BytesSent * 2 < b.BytesSent, $"{a.BytesSent} bytes sent with local SGD vs {b.BytesSent} averaging every step");
        Assert.Equal(0, a.DroppedMessages);
    }

    [Fact]
    public async Task The_direct_and_akka_transports_give_the_same_bits()
    {
        var (train, test, spec, theta0) = Blobs(6);
        var options = new SgdOptions(0.05, momentum: 0.9);

        var akka = await RunDecentralized(train, test, spec, peers: 2, batch: 16, epochs: 2, options, theta0, seed: 6, transport: "akka");
        var direct = await RunDecentralized(train, test, spec, peers: 2, batch: 16, epochs: 2, options, theta0, seed: 6, transport: "direct");

        Assert.Equal(akka.Lead.Parameters, direct.Lead.Parameters);
        Assert.Equal(akka.Peers[0].Hash, direct.Peers[1].Hash);
    }
}
