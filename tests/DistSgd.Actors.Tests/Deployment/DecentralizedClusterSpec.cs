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
                                                         string transport = "akka", Collective collective = Collective.AllGather)
    {
        var roles = Enumerable.Range(0, peers).Select(_ => new[] { "peer" }).ToList();
        await using var cluster = await SimulatedCluster.StartAsync(roles, NodeConfig.FrameSizeFor(spec.ParameterCount), Limit,
                                                                    overrides: TestConfig.Transport(transport).WithFallback(TestConfig.FastPubSub));
        var progress = new PeerRunProgress(peers);

        var plan = new RunPlan("peer-run", spec, batch, seed, epochs, train.Count, ShardBatches.StepsPerEpoch(train.Count, peers, batch), "", collective);
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
