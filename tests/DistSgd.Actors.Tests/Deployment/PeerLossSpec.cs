using System.Diagnostics;
using Akka.Actor;
using Akka.Configuration;
using DistSgd.Actors.Decentralized;
using DistSgd.Actors.Deployment;
using DistSgd.Actors.Protocol;
using DistSgd.Actors.Steps;
using DistSgd.Numerics.Data;
using DistSgd.Numerics.Models;
using DistSgd.Numerics.Optim;
using DistSgd.Numerics.Tensors;
using DistSgd.Numerics.Training;
using Xunit.Abstractions;

namespace DistSgd.Actors.Tests.Deployment;

/// <summary>Decentralized runs that lose a peer: its ActorSystem stops abruptly mid-epoch, as a killed process would.</summary>
public class PeerLossSpec(ITestOutputHelper output)
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(60);

    /// <summary>
    /// A node that is terminated does not leave the cluster first (no CoordinatedShutdown): the others see its
    /// connections close and, later, the failure detector mark it unreachable, as after kill -9.
    /// </summary>
    private static readonly Config Crashable = ConfigurationFactory.ParseString("""
        akka.coordinated-shutdown.run-by-actor-system-terminate = off
        akka.cluster.failure-detector.heartbeat-interval = 500ms
        akka.cluster.failure-detector.acceptable-heartbeat-pause = 2s
        """);

    /// <summary>
    /// How the victim goes. Both stop its ActorSystem as a kill from outside would, at a step the test names: a kill from
    /// outside once a survivor is seen at the step landed, under CI load, as late as step 90 of 120, after the epoch the
    /// test is about or where the run could end before the loss was seen.
    /// </summary>
    private enum Kill
    {
        /// <summary>It crashes itself at that step once it has sent the first part of its share (<see cref="PeerQueries.CrashMidAllReduce"/>).</summary>
        MidCollective,
        /// <summary>It crashes itself as it is about to start that step, before it computes or sends anything (<see cref="PeerQueries.CrashAtStep"/>).</summary>
        AtStep,
    }

    private sealed record Outcome(RunProgress.RunCompleted Lead, IReadOnlyList<PeerFinished> Peers, IReadOnlyList<string> Notes,
                                  double? SecondsToTrainAgain);

    /// <param name="killNode">The node id whose ActorSystem stops half-way through epoch 2 (<paramref name="kill"/>); null: no fault.</param>
    /// <param name="kill">How the node goes (<see cref="Kill"/>).</param>
    /// <param name="hyperparameters">The plan's hyper-parameters (e.g. "sync-every=4").</param>
    /// <param name="killLater">Steps after half-way through epoch 2 to kill at (mid-round with local SGD).</param>
    /// <param name="heldShare">Node <c>Holder</c> holds back node <c>Sender</c>'s share of the step before the one to kill at
    /// until it sees the loss (<see cref="PeerQueries.HoldShareUntilLoss"/>); null: none.</param>
    /// <param name="samples">Samples of the data set, a quarter of them for the test set.</param>
    private async Task<Outcome> Run(int peers, int? killNode, string transport, int epochs = 4, int batch = 5,
                                    Collective collective = Collective.AllGather, Kill kill = Kill.AtStep,
                                    string hyperparameters = "", int killLater = 0, (int Holder, int Sender)? heldShare = null,
                                    int samples = 800)
    {
        var (train, test, spec, theta0) = DecentralizedClusterSpec.Blobs(3, samples);
        var roles = Enumerable.Range(0, peers).Select(_ => new[] { "peer" }).ToList();
        await using var cluster = await SimulatedCluster.StartAsync(roles, NodeConfig.FrameSizeFor(spec.ParameterCount), Limit,
            overrides: TestConfig.Transport(transport).WithFallback(Crashable).WithFallback(TestConfig.FastPubSub));
        var progress = new PeerRunProgress(killNode is null ? peers : peers - 1);

        int stepsPerEpoch = ShardBatches.StepsPerEpoch(train.Count, peers, batch);
        var plan = new RunPlan("loss-run", spec, batch, 3, epochs, train.Count, stepsPerEpoch, hyperparameters, collective);
        var actors = cluster.Nodes.Select(node => DecentralizedDeployment.StartPeer(node, new PeerSetup(
            plan, peers, theta0, new SgdOptions(0.05, momentum: 0.9, schedule: new LearningRateSchedule.Cosine((long)epochs * stepsPerEpoch)),
            new TrainingOptions(epochs, batch, 3), train, test,
            node.ActorOf(CallbackActor.Props(progress.OnProgress))))).ToList();

        double? secondsToTrainAgain = null;
        long killAt = stepsPerEpoch + stepsPerEpoch / 2 + killLater;
        if (killNode is { } crashing && kill == Kill.AtStep)
            foreach (var actor in actors)
                actor.Tell(new PeerQueries.CrashAtStep(killAt, crashing));
        if (heldShare is { } held)
            foreach (var actor in actors)
                actor.Tell(new PeerQueries.HoldShareUntilLoss(held.Holder, held.Sender, killAt - 1));
        if (killNode is { } victimId)
        {
            // Node ids are the peers' ranks by address (StartBarrier), known without asking: a victim told to crash before the
            // barrier may be gone before every peer has its id (asking it timed out under load, H = 4).
            var addresses = cluster.Nodes.Select(n => Akka.Cluster.Cluster.Get(n).SelfAddress.ToString()).ToList();
            var ranked = addresses.Order(StringComparer.Ordinal).ToList();
            int victim = addresses.FindIndex(a => ranked.IndexOf(a) == victimId);
            int witness = (victim + 1) % peers;
            if (kill == Kill.MidCollective)
                actors[victim].Tell(new PeerQueries.CrashMidAllReduce(killAt));
            var clock = Stopwatch.StartNew();
            long step;
            do
            {
                step = (await actors[witness].Ask<PeerQueries.Replica>(PeerQueries.GetReplica.Instance, Limit)).Step;
                Assert.True(clock.Elapsed < Limit, "the run did not reach the step to kill at");
            }
            while (step < killAt);

            var killed = Stopwatch.StartNew();
            // Training again: a survivor's replica is two steps past where it was at the kill (the contested step may
            // be applied at the agreement itself).
            while (killed.Elapsed < Limit && !progress.IsOver)
            {
                var now = (await actors[witness].Ask<PeerQueries.Replica>(PeerQueries.GetReplica.Instance, Limit)).Step;
                if (now >= step + 2)
                {
                    secondsToTrainAgain = killed.Elapsed.TotalSeconds;
                    break;
                }
                await Task.Delay(5);
            }
            output.WriteLine($"{transport}: node {victimId} killed at step {step}; training again after {secondsToTrainAgain:0.000} s");
        }

        await progress.WaitAsync(Limit);
        if (killNode is not null)
        {
            // Down the dead node, as the Split Brain Resolver would, so that the survivors can leave promptly. A node that
            // crashed itself may still be terminating when the survivors finish.
            await Task.WhenAny(cluster.Nodes.Select(n => n.WhenTerminated)).WaitAsync(Limit);
            var dead = cluster.Nodes.First(n => n.WhenTerminated.IsCompleted);
            var alive = cluster.Nodes.First(n => !n.WhenTerminated.IsCompleted);
            Akka.Cluster.Cluster.Get(alive).Down(Akka.Cluster.Cluster.Get(dead).SelfAddress);
        }
        foreach (var note in progress.Notes)
            output.WriteLine(note);
        return new Outcome(progress.Lead, progress.Peers, progress.Notes, secondsToTrainAgain);
    }

    [Theory]
    [InlineData("direct", Collective.AllGather)]
    [InlineData("akka", Collective.AllGather)]
    [InlineData("direct", Collective.Pairwise)]
    public async Task Killing_the_lead_peer_mid_epoch_leaves_the_others_training_to_the_end_with_identical_replicas(string transport, Collective collective)
    {
        var outcome = await Run(peers: 4, killNode: 0, transport, collective: collective);

        Assert.Equal([1, 2, 3], outcome.Peers.Select(p => p.NodeId));
        foreach (var peer in outcome.Peers)
        {
            Assert.Equal(outcome.Peers[0].Hash, peer.Hash);
            Assert.Equal(outcome.Lead.Parameters, peer.Parameters);
        }
        Assert.Contains(outcome.Notes, n => n.Contains("node 1 leads the run now"));
        Assert.Contains(outcome.Notes, n => n.Contains("sharded among 3 peers"));
        Assert.DoesNotContain(outcome.Notes, n => n.Contains("MISMATCH"));
        Assert.NotNull(outcome.SecondsToTrainAgain);

        var result = outcome.Lead.Result;
        Assert.Equal(4, result.Epochs.Count);
        Assert.Equal(StopReason.EpochLimit, result.StopReason);
        // 3 survivors: epochs 3 and 4 take 4/3 of the planned steps. The cosine, re-planned over them from epoch 3, still
        // learns at the last step; sized for 4 peers it would have reached 0 two thirds into epoch 4.
        Assert.Contains(outcome.Notes, n => n.Contains("epoch 3: the learning-rate schedule is re-planned"));
        Assert.InRange(result.Epochs[^1].LearningRate, 1e-9, result.Epochs[^2].LearningRate / 10);
        // Node 0 scored epoch 1 and is gone: the new lead says so instead of showing NaN; it scored epochs 2 to 4 itself.
        Assert.Contains(outcome.Notes, n => n.Contains("the test loss and accuracy of epoch 1 are not known"));
        Assert.Equal([false, true, true, true], result.Epochs.Select(m => m.HasTestScore));
        if (transport == "direct")
        {
            // Both transports give the same bits (DecentralizedClusterSpec): one fault-free run is the reference for both.
            var clean = await Run(peers: 4, killNode: null, transport, collective: collective);
            Assert.InRange(result.Final!.TestAccuracy, clean.Lead.Result.Final!.TestAccuracy - 0.05, 1.0);
        }
        Assert.True(result.Final!.TestAccuracy > 0.8, $"test accuracy {result.Final.TestAccuracy}");
    }

    [Theory]
    [InlineData(Collective.Pairwise, 3)]
    [InlineData(Collective.Ring, 2)]
    [InlineData(Collective.Pairwise, 0)]
    public async Task A_peer_killed_mid_collective_leaves_the_survivors_training_to_the_end_with_identical_replicas(Collective collective, int victim)
    {
        var outcome = await Run(peers: 4, killNode: victim, "direct", epochs: 3, collective: collective, kill: Kill.MidCollective);

        SurvivorsFinished(outcome, victim);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_peer_killed_in_a_top_k_run_leaves_the_survivors_training_to_the_end_with_identical_replicas(bool midCollective)
    {
        // Top-k over the data plane: each step averages the shares' entries (decision 0141); a redo after the loss averages
        // the entries the step kept, and the arrays released with them come back clear for the next frames.
        var outcome = await Run(peers: 4, killNode: 1, "direct", epochs: 3, kill: midCollective ? Kill.MidCollective : Kill.AtStep,
                                hyperparameters: "compress=topk:0.2");

        SurvivorsFinished(outcome, 1);
    }

    [Theory]
    [InlineData("sync-every=4", 2, 1)]
    [InlineData("sync-every=3;wire=bf16;compress=topk:0.2", 0, 2)]
    public async Task A_peer_killed_mid_round_of_local_sgd_leaves_the_survivors_training_to_the_end_with_identical_replicas(string hyperparameters,
                                                                                                                             int victim, int killLater)
    {
        // The kill lands inside a round: the survivors' shares of that step are their own, the lost peer's round is not
        // averaged in (decision 0104), and every later round averages the survivors alone. A kill while the peer sent its
        // share of an averaging step (some survivors averaged and ran on, the others did not) used to fail the run as
        // "survivors more than one step apart"; the survivors now contest that averaging step (decision 0116, and the
        // test below, which makes it happen every time).
        var outcome = await Run(peers: 4, killNode: victim, "direct", epochs: 3, hyperparameters: hyperparameters, killLater: killLater);

        // Session 5 CI saw one survivor differ at the next epoch's hash round once (H = 3, bf16, top-k 0.2, node 0 killed from
        // outside): its optimizer's step, not θ; the test below makes that case happen every time (decision 0131).
        SurvivorsFinished(outcome, victim);
    }

    [Fact]
    public async Task A_peer_killed_while_sending_its_share_of_an_averaging_step_leaves_the_survivors_with_identical_replicas()
    {
        // H = 4: node 2 sends its change of the first averaging step from half-way through epoch 2 to one survivor only and
        // stops: that survivor averages and runs on into the next round's local steps, the two others wait for the step.
        // The survivors contest that averaging step (local steps are each one's own), the one that had it redoes it without
        // node 2's change, and all go on together (decision 0116); before, this was the known limit "survivors more than
        // one step apart cannot be reconciled".
        var outcome = await Run(peers: 4, killNode: 2, "direct", epochs: 3, kill: Kill.MidCollective, hyperparameters: "sync-every=4");

        SurvivorsFinished(outcome, 2);
        Assert.Contains(outcome.Notes, n => n.Contains("uses the shares of nodes 0, 1, 3, redone by nodes"));
    }

    [Fact]
    public async Task A_survivor_that_still_has_the_averaging_step_open_goes_on_with_the_optimizer_step_of_those_that_ran_on()
    {
        // H = 3, 30 steps an epoch: step 44 (place 14 of epoch 2) averages. Node 0 stops as it is about to start step 45,
        // once it applied step 44: nodes 1 and 2 applied it too and ran on to the next averaging step, 47, whose own update
        // they took as they computed their change; node 3 has step 44 open with every share but node 2's, which is still on
        // its way when it sees the loss (held back until then). The survivors keep step 44 with every share (nothing is
        // redone), node 3 applies it and skips to place 17. Its optimizer's step (in the replica hash) used to be one behind
        // the others' there, whose count included the own update of the open step that the agreement dropped (seen once in
        // CI as a MISMATCH at the epoch's hash round, repaired by the resync; decision 0131).
        var outcome = await Run(peers: 4, killNode: 0, "direct", epochs: 3, hyperparameters: "sync-every=3;wire=bf16;compress=topk:0.2",
                                heldShare: (3, 2));

        SurvivorsFinished(outcome, 0);
        Assert.Contains(outcome.Notes, n => n.Contains("step 44 uses the shares of nodes 0, 1, 2, 3") && !n.Contains("redone"));
    }

    [Fact]
    public async Task A_survivor_whose_shard_ran_out_redoes_the_epoch_s_last_averaging_step_with_the_others_optimizer_step()
    {
        // 601 training samples: node 0's shard holds 151, the others 150, so at epoch 2's last step (61; H = 3) nodes 1 to 3
        // have no batch left and take no update of their own (their optimizer's step moves on with the others'). Node 0 sends
        // its change of that averaging step to node 1 only and stops: node 1 averaged and ended the epoch, nodes 2 and 3 wait.
        // Node 1 redoes the step without node 0's change from its undo, whose optimizer's step must be the one after the
        // step, not the one it kept when it took no update (decision 0131).
        var outcome = await Run(peers: 4, killNode: 0, "direct", epochs: 3, hyperparameters: "sync-every=3", killLater: 15,
                                kill: Kill.MidCollective, samples: 801);

        SurvivorsFinished(outcome, 0);
        Assert.Contains(outcome.Notes, n => n.Contains("step 61 uses the shares of nodes 1, 2, 3, redone by nodes 1"));
    }

    [Theory]
    [InlineData(Collective.Ring, "sync-every=4", 1, 0, false)]
    [InlineData(Collective.Ring, "sync-every=3", 2, 2, true)]
    [InlineData(Collective.Pairwise, "sync-every=3;wire=bf16", 0, 2, true)]
    public async Task A_peer_lost_at_an_averaging_step_of_local_sgd_through_an_all_reduce_leaves_the_survivors_with_identical_replicas(
        Collective collective, string hyperparameters, int victim, int killLater, bool midCollective)
    {
        // 30 steps an epoch: the kill lands at an averaging step from half-way through epoch 2 (H = 4: place 15; H = 3: place
        // 17). Before it sends anything, the survivors' all-reduce waits for its parts: they keep the last averaging step and
        // redo the open one's place without it. Mid-collective (after its first part of the all-gather half) some survivors
        // may finish the step and run on into the next round: no survivor keeps it, those that averaged take it back from
        // their place in the next round, and all redo its place from the same round start (decision 0136).
        var outcome = await Run(peers: 4, killNode: victim, "direct", epochs: 3, collective: collective, hyperparameters: hyperparameters,
                                killLater: killLater, kill: midCollective ? Kill.MidCollective : Kill.AtStep);

        SurvivorsFinished(outcome, victim);
    }

    /// <summary>The 3 survivors of 4 peers (all but <paramref name="victim"/>) finished 3 epochs with identical replicas, hashes and a good model.</summary>
    private static void SurvivorsFinished(Outcome outcome, int victim)
    {
        Assert.Equal(Enumerable.Range(0, 4).Where(id => id != victim), outcome.Peers.Select(p => p.NodeId));
        foreach (var peer in outcome.Peers)
        {
            Assert.Equal(outcome.Peers[0].Hash, peer.Hash);
            Assert.Equal(outcome.Lead.Parameters, peer.Parameters);
        }
        Assert.Contains(outcome.Notes, n => n.Contains($"peers {victim} lost: 3 peers go on"));
        Assert.DoesNotContain(outcome.Notes, n => n.Contains("MISMATCH"));
        var result = outcome.Lead.Result;
        Assert.Equal(3, result.Epochs.Count);
        Assert.Equal(StopReason.EpochLimit, result.StopReason);
        Assert.True(result.Final!.TestAccuracy > 0.8, $"test accuracy {result.Final.TestAccuracy}");
    }

    [Fact]
    public async Task A_partitioned_peer_on_the_minority_side_stops_and_the_majority_trains_to_the_end()
    {
        const int peers = 3, batch = 5, epochs = 3;
        var (train, test, spec, theta0) = DecentralizedClusterSpec.Blobs(3, samples: 800);
        // The throttler adapter lets the test black-hole Akka traffic between two nodes: a partition of the control
        // plane, on the akka transport the shares too.
        var partitionable = ConfigurationFactory.ParseString("""akka.remote.dot-netty.tcp.applied-adapters = ["trttl"]""");
        var roles = Enumerable.Range(0, peers).Select(_ => new[] { "peer" }).ToList();
        await using var cluster = await SimulatedCluster.StartAsync(roles, NodeConfig.FrameSizeFor(spec.ParameterCount), Limit,
            overrides: TestConfig.Transport("akka").WithFallback(partitionable).WithFallback(Crashable).WithFallback(TestConfig.FastPubSub));
        var addresses = cluster.Nodes.Select(n => Akka.Cluster.Cluster.Get(n).SelfAddress).ToList();
        // Node ids are the ranks of the addresses: the minority is the node with the highest one, node 2.
        int minority = addresses.IndexOf(addresses.OrderBy(a => a.ToString(), StringComparer.Ordinal).Last());
        var majority = new PeerRunProgress(expectedPeers: peers - 1);
        var alone = new PeerRunProgress(expectedPeers: 1);
        int stepsPerEpoch = ShardBatches.StepsPerEpoch(train.Count, peers, batch);
        var plan = new RunPlan("partition-run", spec, batch, 3, epochs, train.Count, stepsPerEpoch);
        var actors = cluster.Nodes.Select((node, i) => DecentralizedDeployment.StartPeer(node, new PeerSetup(
            plan, peers, theta0, new SgdOptions(0.05, momentum: 0.9), new TrainingOptions(epochs, batch, 3), train, test,
            node.ActorOf(CallbackActor.Props(i == minority ? alone.OnProgress : majority.OnProgress))))).ToList();

        var clock = Stopwatch.StartNew();
        while ((await actors[minority].Ask<PeerQueries.Replica>(PeerQueries.GetReplica.Instance, Limit)).Step < stepsPerEpoch / 2)
            Assert.True(clock.Elapsed < Limit, "the run did not reach the step to partition at");
        var transport = ((Akka.Remote.IRemoteActorRefProvider)((ExtendedActorSystem)cluster.Nodes[minority]).Provider).Transport;
        foreach (var other in addresses.Where((_, i) => i != minority))
            await transport.ManagementCommand(new Akka.Remote.Transport.SetThrottle(other, Akka.Remote.Transport.ThrottleTransportAdapter.Direction.Both,
                                                                                    Akka.Remote.Transport.Blackhole.Instance));

        string reason = await alone.Failure.WaitAsync(Limit);
        Assert.Contains("minority side of a partition", reason);
        await majority.WaitAsync(Limit);
        Assert.Equal(2, majority.Peers.Count);
        Assert.Equal(majority.Peers[0].Hash, majority.Peers[1].Hash);
        Assert.Equal(epochs, majority.Lead.Result.Epochs.Count);
        Assert.Empty(alone.Peers);                                    // the minority never finished a run of its own
        // As the Split Brain Resolver would: the minority's node goes, so that the majority can leave promptly.
        await cluster.Nodes[minority].Terminate();
        Akka.Cluster.Cluster.Get(cluster.Nodes[(minority + 1) % peers]).Down(addresses[minority]);
        output.WriteLine($"partitioned at {clock.Elapsed.TotalSeconds:0.0} s into the run: {reason}");
    }
}
