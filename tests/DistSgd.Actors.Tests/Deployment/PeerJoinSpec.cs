using Akka.Actor;
using Akka.Configuration;
using DistSgd.Actors.Decentralized;
using DistSgd.Actors.Deployment;
using DistSgd.Actors.Protocol;
using DistSgd.Actors.Steps;
using DistSgd.Numerics.Optim;
using DistSgd.Numerics.Training;
using Xunit.Abstractions;

namespace DistSgd.Actors.Tests.Deployment;

/// <summary>
/// Elastic decentralized runs (issue 20, decision 0097): a peer that starts after the run is under way joins at the next
/// epoch's end with the lead's replica, and from then on its replica is the others'.
/// </summary>
public class PeerJoinSpec(ITestOutputHelper output)
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(90);

    /// <summary>
    /// With 3000 samples (about 150 steps an epoch), long enough that the run is still under way when DistributedPubSub's gossip has
    /// told every peer about the late one (about a second), however quiet or loaded the machine: 12 epochs took 5 s on a
    /// quiet machine in CI and ended before the join, refused as "the run is ending".
    /// </summary>
    private const int Epochs = 40;

    /// <summary>
    /// Three peers start a run on a cluster of four nodes; the fourth node's peer starts once the first peers are half-way
    /// through epoch 1 (<paramref name="lateConfig"/> can make its plan differ). Returns every finished peer and the notes.
    /// </summary>
    private async Task<(PeerRunProgress Progress, IActorRef Late, int TrainCount, int StepsPerEpoch)> Run(
        string transport, int epochs, Config? overrides = null, Func<RunPlan, RunPlan>? lateConfig = null, int expectedPeers = 4)
    {
        var (train, test, spec, theta0) = DecentralizedClusterSpec.Blobs(5, samples: 3000);
        const int batch = 5;
        var roles = Enumerable.Range(0, 4).Select(_ => new[] { "peer" }).ToList();
        var cluster = await SimulatedCluster.StartAsync(roles, NodeConfig.FrameSizeFor(spec.ParameterCount), Limit,
            overrides: (overrides ?? Config.Empty).WithFallback(TestConfig.Transport(transport)).WithFallback(TestConfig.FastPubSub));
        _clusters.Add(cluster);
        var progress = new PeerRunProgress(expectedPeers);
        int stepsPerEpoch = ShardBatches.StepsPerEpoch(train.Count, 3, batch);
        var plan = new RunPlan("join-run", spec, batch, 3, epochs, train.Count, stepsPerEpoch);
        PeerSetup Setup(ActorSystem node, RunPlan runPlan) => new(
            runPlan, 3, theta0, new SgdOptions(0.05, momentum: 0.9, schedule: new LearningRateSchedule.Cosine((long)epochs * stepsPerEpoch)),
            new TrainingOptions(epochs, batch, epochs), train, test, node.ActorOf(CallbackActor.Props(progress.OnProgress)));
        var first = cluster.Nodes.Take(3).Select(node => DecentralizedDeployment.StartPeer(node, Setup(node, plan))).ToList();

        var clock = System.Diagnostics.Stopwatch.StartNew();
        while ((await first[0].Ask<PeerQueries.Replica>(PeerQueries.GetReplica.Instance, Limit)).Step < stepsPerEpoch / 2)
        {
            Assert.True(clock.Elapsed < Limit, "the run did not get half-way through epoch 1");
            await Task.Delay(5);
        }
        var late = DecentralizedDeployment.StartPeer(cluster.Nodes[3], Setup(cluster.Nodes[3], lateConfig?.Invoke(plan) ?? plan));
        return (progress, late, train.Count, stepsPerEpoch);
    }

    private readonly List<SimulatedCluster> _clusters = new();

    private async Task Stop()
    {
        foreach (var cluster in _clusters)
            await cluster.DisposeAsync();
    }

    [Theory]
    [InlineData("direct")]
    [InlineData("akka")]
    public async Task A_fourth_peer_joining_a_three_peer_run_mid_way_finishes_with_a_replica_identical_to_the_others(string transport)
    {
        try
        {
            var (progress, late, trainCount, stepsPerEpoch) = await Run(transport, epochs: Epochs);
            await progress.WaitAsync(Limit);
            foreach (var note in progress.Notes)
                output.WriteLine(note);

            // Every replica, the late one included, ends bit-identical to the lead's: the epoch-end hash round covered it
            // from its first epoch (a mismatch would be in the notes).
            Assert.Equal([0, 1, 2, 3], progress.Peers.Select(p => p.NodeId));
            foreach (var peer in progress.Peers)
            {
                Assert.Equal(progress.Peers[0].Hash, peer.Hash);
                Assert.Equal(progress.Lead.Parameters, peer.Parameters);
            }
            Assert.DoesNotContain(progress.Notes, n => n.Contains("MISMATCH"));
            // It asked during epoch 1 and takes part from the end of the epoch in which every peer's publications reached it
            // (DistributedPubSub's gossip: a few tenths of a second, several of these short epochs).
            Assert.Contains(progress.Notes, n => n.Contains("asks to join: it takes part from the end of the epoch in which every peer hears it"));
            var joined = System.Text.RegularExpressions.Regex.Match(string.Join("\n", progress.Notes),
                                                                     @"node 3 \(at \S+\) joined the run: from epoch (\d+) 4 peers take part \(nodes 0, 1, 2, 3\)");
            Assert.True(joined.Success, string.Join("\n", progress.Notes));
            int from = int.Parse(joined.Groups[1].Value);
            Assert.Contains(progress.Notes, n => n.Contains($"this peer joined run join-run as node 3 from epoch {from}"));
            Assert.Contains(progress.Notes, n => n.Contains($"from epoch {from} the training set is sharded among 4 peers"));

            var result = progress.Lead.Result;
            Assert.Equal(Epochs, result.Epochs.Count);
            Assert.Equal(StopReason.EpochLimit, result.StopReason);
            // 4 peers from epoch E: each epoch from then on takes 3/4 of the steps (the shards are recut over the new membership).
            int fourPeerSteps = ShardBatches.StepsPerEpoch(trainCount, 4, 5);
            Assert.Equal(stepsPerEpoch * (from - 1), result.Epochs[from - 2].Step);
            Assert.Equal(stepsPerEpoch * (from - 1) + fourPeerSteps, result.Epochs[from - 1].Step);
            var replica = await late.Ask<PeerQueries.Replica>(PeerQueries.GetReplica.Instance, Limit);
            Assert.Equal(3, replica.NodeId);
        }
        finally
        {
            await Stop();
        }
    }

    [Fact]
    public async Task A_late_peer_with_another_run_configuration_is_refused_naming_the_difference_and_the_run_goes_on()
    {
        try
        {
            var (progress, _, _, _) = await Run("direct", epochs: Epochs, lateConfig: plan => plan with { BatchSizePerWorker = 6 }, expectedPeers: 3);
            var refused = await progress.Failure.WaitAsync(Limit);
            Assert.Matches(@"is under way \(epoch \d+, 3 peers\) and does not take this peer", refused);
            Assert.Contains("batch", refused);
            progress.ResetFailure();
            await progress.WaitAsync(Limit);                                       // the three first peers finish as planned
            Assert.Equal([0, 1, 2], progress.Peers.Select(p => p.NodeId));
            Assert.Equal(Epochs, progress.Lead.Result.Epochs.Count);
        }
        finally
        {
            await Stop();
        }
    }

    [Fact]
    public async Task A_late_peer_beyond_distsgd_max_peers_is_refused_saying_so()
    {
        try
        {
            var (progress, _, _, _) = await Run("direct", epochs: Epochs, overrides: ConfigurationFactory.ParseString("distsgd.max-peers = 3"), expectedPeers: 3);
            var refused = await progress.Failure.WaitAsync(Limit);
            Assert.Contains("takes at most 3 (distsgd.max-peers", refused);
            progress.ResetFailure();
            await progress.WaitAsync(Limit);
            Assert.Equal([0, 1, 2], progress.Peers.Select(p => p.NodeId));
        }
        finally
        {
            await Stop();
        }
    }
}
