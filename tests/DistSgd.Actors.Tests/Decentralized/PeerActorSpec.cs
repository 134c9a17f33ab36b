using Akka.Actor;
using Akka.Cluster.Tools.PublishSubscribe;
using Akka.TestKit;
using DistSgd.Actors.Decentralized;
using DistSgd.Actors.Protocol;
using DistSgd.Actors.Steps;
using DistSgd.Numerics.Data;
using DistSgd.Numerics.Models;
using DistSgd.Numerics.Optim;
using DistSgd.Numerics.Training;

namespace DistSgd.Actors.Tests.Decentralized;

/// <summary>
/// One real peer and two scripted ones: a probe stands in for the DistributedPubSub mediator, so the spec sees
/// every publication and decides what the peer receives, in which order.
/// </summary>
public class PeerActorSpec : Akka.TestKit.Xunit2.TestKit
{
    // Softmax regression 2 inputs → 3 classes: 9 parameters. 3 peers × batch 4 over 42 samples: 4 steps per epoch.
    private static readonly ModelSpec Spec = new(ModelKind.Softmax, 2, 3);
    private static readonly Dataset Train = Synthetic.GaussianBlobs(42, 2, 3, spread: 2, seed: 3);
    private static readonly RunPlan Plan = new("run", Spec, 4, 1, 5, Train.Count, ShardBatches.StepsPerEpoch(Train.Count, 3, 4));
    // Ordinal order puts both scripted peers before the real one ("akka.tcp://peer-spec@…"): it is node 2.
    private const string AddressA = "akka.tcp://a@fake:1";
    private const string AddressB = "akka.tcp://b@fake:2";
    private const int Self = 2;

    private readonly float[] _theta0 = Enumerable.Range(0, 9).Select(i => i * 0.1f).ToArray();
    private readonly TestProbe _mediator;
    private readonly TestProbe _peerA;
    private readonly TestProbe _peerB;

    public PeerActorSpec() : base(TestConfig.Node(roles: "peer", stepTimeout: "1500ms"), "peer-spec")
    {
        _mediator = CreateTestProbe("mediator");
        _peerA = CreateTestProbe("peer-a");
        _peerB = CreateTestProbe("peer-b");
    }

    private IActorRef StartPeer()
    {
        var setup = new PeerSetup(Plan, 3, _theta0, new SgdOptions(1.0), new TrainingOptions(5, 4, 1), Train, null,
                                  CreateTestProbe("reporter").Ref, Mediator: _mediator.Ref);
        var peer = Sys.ActorOf(PeerActor.Props(setup), "peer");
        var subscribe = _mediator.ExpectMsg<Subscribe>();
        Assert.Equal(DecentralizedDeployment.Topic("run"), subscribe.Topic);
        peer.Tell(new SubscribeAck(subscribe), _mediator.Ref);
        return peer;
    }

    private T Published<T>() where T : class =>
        (T)_mediator.FishForMessage<Publish>(p => p.Message is T, TimeSpan.FromSeconds(5)).Message;

    /// <summary>Runs the start barrier to the end and returns the peer's share of step 0.</summary>
    private (IActorRef Peer, GradientShare Step0) Started()
    {
        var peer = StartPeer();
        var ready = Published<PeerReady>();
        peer.Tell(ready);                                            // its own publication comes back to it
        peer.Tell(new PeerReady(Plan, AddressA, _peerA.Ref));
        peer.Tell(new PeerReady(Plan, AddressB, _peerB.Ref));
        peer.Tell(new PeerReadyAck("run", AddressA));
        peer.Tell(new PeerReadyAck("run", AddressB));
        var share = Published<GradientShare>();
        Assert.Equal((0L, Self), (share.Step, share.NodeId));
        return (peer, share);
    }

    /// <summary>A share as the topic delivers it: from the peer actor of the node it names (node 7 is nobody's: from the test).</summary>
    private void Deliver(IActorRef peer, GradientShare share) =>
        peer.Tell(share, share.NodeId switch { 0 => _peerA.Ref, 1 => _peerB.Ref, Self => peer, _ => TestActor });

    private static GradientShare Share(long step, int node, float value, string run = "run", int samples = 4) =>
        new(run, step, node, samples, 1.0, 0.001, Enumerable.Repeat(value, 9).ToArray());

    private PeerQueries.Replica Replica(IActorRef peer)
    {
        peer.Tell(PeerQueries.GetReplica.Instance, TestActor);
        return ExpectMsg<PeerQueries.Replica>();
    }

    /// <summary>θ − 1·ḡ with ḡ the weighted average of <paramref name="shares"/> in the order given.</summary>
    private static float[] Updated(float[] theta, params GradientShare[] shares)
    {
        var average = new float[theta.Length];
        GradientAggregation.WeightedAverage(shares.Select(s => (ReadOnlyMemory<float>)s.Gradient).ToList(), shares.Select(s => s.SampleCount).ToList(), average);
        return theta.Zip(average, (t, g) => t - g).ToArray();
    }

    [Fact]
    public void Peer_starts_no_step_before_every_peer_is_ready_and_has_acknowledged_it()
    {
        var peer = StartPeer();
        var ready = Published<PeerReady>();
        Assert.Equal(("run", peer), (ready.Plan.RunId, ready.Peer));
        peer.Tell(ready);
        peer.Tell(new PeerReady(Plan, AddressA, _peerA.Ref));
        peer.Tell(new PeerReady(Plan, AddressB, _peerB.Ref));
        _peerA.ExpectMsg<PeerReadyAck>(m => m.NodeAddress == ready.NodeAddress);   // it acknowledges what it receives
        _peerB.ExpectMsg<PeerReadyAck>();

        // Every PeerReady received, but B has not acknowledged ours: B may not yet receive our shares.
        peer.Tell(new PeerReadyAck("run", AddressA));
        Published<PeerReady>();                                      // still announcing itself
        Assert.Equal(-1, Replica(peer).NodeId);

        peer.Tell(new PeerReadyAck("run", AddressB));
        var share = Published<GradientShare>();
        Assert.Equal((0L, Self, 4), (share.Step, share.NodeId, share.SampleCount));
        Assert.Equal(Self, Replica(peer).NodeId);
    }

    [Fact]
    public void A_share_naming_another_node_than_its_sender_is_dropped_and_never_applied()
    {
        var (peer, own) = Started();
        Deliver(peer, own);
        peer.Tell(Share(0, 1, 100f), _peerA.Ref);                   // node 0 passes a share off as node 1's
        peer.Tell(Share(0, 0, 100f), TestActor);                     // a stranger names node 0
        Deliver(peer, Share(0, 0, 1f));
        Deliver(peer, Share(0, 1, 2f));

        StepZeroApplied(peer, dropped: 2, Share(0, 0, 1f), Share(0, 1, 2f), own);
    }

    /// <summary>Step 0 finished with exactly <paramref name="shares"/> applied, and <paramref name="dropped"/> shares dropped.</summary>
    private void StepZeroApplied(IActorRef peer, long dropped, params GradientShare[] shares)
    {
        Assert.Equal(1, Published<GradientShare>().Step);
        var replica = Replica(peer);
        Assert.Equal(Updated(_theta0, shares), replica.Parameters);
        Assert.Equal(dropped, replica.Dropped);
    }

    [Fact]
    public void A_share_that_arrives_before_the_barrier_passed_is_judged_by_its_sender_once_it_has()
    {
        var peer = StartPeer();
        var ready = Published<PeerReady>();
        peer.Tell(ready);
        peer.Tell(new PeerReady(Plan, AddressA, _peerA.Ref));
        peer.Tell(new PeerReady(Plan, AddressB, _peerB.Ref));
        peer.Tell(Share(0, 0, 1f), _peerA.Ref);                      // node 0 passed first and sent its share of step 0
        peer.Tell(Share(0, 1, 100f), _peerA.Ref);                    // and one in node 1's name
        peer.Tell(new PeerReadyAck("run", AddressA));
        peer.Tell(new PeerReadyAck("run", AddressB));
        var own = Published<GradientShare>();
        Deliver(peer, own);
        Deliver(peer, Share(0, 1, 2f));

        StepZeroApplied(peer, dropped: 1, Share(0, 0, 1f), Share(0, 1, 2f), own);
    }

    [Fact]
    public void Peer_waits_for_every_share_of_its_step()
    {
        var (peer, own) = Started();
        Deliver(peer, own);
        Deliver(peer, Share(0, 0, 1f));
        _mediator.ExpectNoMsg(TimeSpan.FromMilliseconds(300));     // node 1's share is missing
        Assert.Equal(0, Replica(peer).Step);

        var b = Share(0, 1, 2f);
        Deliver(peer, b);
        Assert.Equal(1, Published<GradientShare>().Step);
        var replica = Replica(peer);
        Assert.Equal(1, replica.Step);
        Assert.Equal(Updated(_theta0, Share(0, 0, 1f), b, own), replica.Parameters);
    }

    [Fact]
    public void Peer_weights_each_share_by_its_sample_count()
    {
        var (peer, own) = Started();
        Assert.Equal(4, own.SampleCount);
        // Unequal counts (1, 3 and its own 4) and unequal gradients: a plain mean, or a count given to the wrong node,
        // gives another θ.
        var a = new GradientShare("run", 0, 0, 1, 1.0, 0.001, Enumerable.Range(0, 9).Select(i => 1f + i).ToArray());
        var b = Share(0, 1, -2f, samples: 3);
        Deliver(peer, own);
        Deliver(peer, a);
        Deliver(peer, b);
        Assert.Equal(1, Published<GradientShare>().Step);

        // θ1 = θ0 − lr·(1·g_a + 3·g_b + 4·g_own) / 8 with lr 1, worked out here in double.
        var expected = _theta0.Select((t, i) => t - (1.0 * a.Gradient[i] + 3.0 * b.Gradient[i] + 4.0 * own.Gradient[i]) / 8.0).ToArray();
        var actual = Replica(peer).Parameters;
        for (int i = 0; i < expected.Length; i++)
            Assert.Equal(expected[i], actual[i], 1e-5);
    }

    [Fact]
    public void Peer_holds_a_share_of_the_next_step_until_that_step()
    {
        var (peer, own0) = Started();
        var early = Share(1, 0, 5f);
        Deliver(peer, early);                                            // node 0 is a step ahead
        Deliver(peer, own0);
        Deliver(peer, Share(0, 0, 1f));
        Deliver(peer, Share(0, 1, 1f));
        var own1 = Published<GradientShare>();
        Assert.Equal(1, own1.Step);
        var theta1 = Replica(peer).Parameters;
        Assert.Equal(Updated(_theta0, Share(0, 0, 1f), Share(0, 1, 1f), own0), theta1);   // the early share was not applied to step 0

        Deliver(peer, own1);
        Deliver(peer, Share(1, 1, 3f));                                  // node 0's step-1 share is not sent again
        Assert.Equal(2, Published<GradientShare>().Step);
        var replica = Replica(peer);
        Assert.Equal(Updated(theta1, early, Share(1, 1, 3f), own1), replica.Parameters);
        Assert.Equal(0, replica.Dropped);
    }

    [Fact]
    public void Peer_drops_shares_of_old_steps_of_other_runs_and_duplicates()
    {
        var (peer, own0) = Started();
        Deliver(peer, own0);
        Deliver(peer, Share(0, 0, 1f));
        Deliver(peer, Share(0, 1, 1f));
        var own1 = Published<GradientShare>();
        var theta1 = Replica(peer).Parameters;

        Deliver(peer, Share(0, 0, 100f));                                // step 0 is over
        Deliver(peer, Share(1, 0, 100f, run: "other"));                  // another run
        Deliver(peer, Share(1, 0, 2f));
        Deliver(peer, Share(1, 0, 100f));                                // node 0 again
        Deliver(peer, Share(1, 7, 100f));                                // not a participant
        Deliver(peer, own1);
        Deliver(peer, own1);                                             // its own, twice
        Deliver(peer, Share(1, 1, 4f));
        Assert.Equal(2, Published<GradientShare>().Step);
        var replica = Replica(peer);
        Assert.Equal(Updated(theta1, Share(1, 0, 2f), Share(1, 1, 4f), own1), replica.Parameters);
        Assert.Equal(5, replica.Dropped);
    }

    [Fact]
    public void Peer_averages_in_node_id_order_not_arrival_order()
    {
        var (peer, own) = Started();
        // In float32, 4·10⁸ + 4·g == 4·10⁸ for a small g: the order of the sum decides the bits.
        var big = Share(0, 0, 1e8f);
        var minusBig = Share(0, 1, -1e8f);
        Deliver(peer, own);                                              // arrival order: node 2, 1, 0
        Deliver(peer, minusBig);
        Deliver(peer, big);
        Published<GradientShare>();

        var nodeOrder = Updated(_theta0, big, minusBig, own);
        var arrivalOrder = Updated(_theta0, own, minusBig, big);
        Assert.NotEqual(nodeOrder, arrivalOrder);                    // the orders really differ here
        Assert.Equal(nodeOrder, Replica(peer).Parameters);
    }

    [Fact]
    public void A_peer_silent_past_the_step_timeout_is_dropped_once_the_survivors_agree()
    {
        var (peer, own0) = Started();
        Deliver(peer, own0);
        Deliver(peer, Share(0, 0, 1f));
        // Node 1 never shares: after distsgd.step-timeout (1.5 s here) the peer reports what it holds, and steps no further.
        var report = Published<MembershipReport>();
        Assert.Equal((Self, -1L, 0L), (report.NodeId, report.AppliedStep, report.OpenStep));
        Assert.Equal([1], report.Lost);
        Assert.Equal([0, 2], report.HeldSenders);
        Assert.Equal(0, Replica(peer).Step);

        // Node 0 agrees. Nothing was applied yet, so the open step 0 starts again, numbered 1, without node 1.
        peer.Tell(new MembershipReport("run", 0, [1], -1, [], 0, [0, 2]));
        var own1 = Published<GradientShare>();
        Assert.Equal(1, own1.Step);
        Assert.Equal(own0.Gradient, own1.Gradient);                  // the same batch at the same θ
        Deliver(peer, own1);
        Deliver(peer, Share(0, 1, 9f));                                  // the lost peer's late share counts for nothing
        Deliver(peer, Share(1, 0, 1f));
        Assert.Equal(2, Published<GradientShare>().Step);
        Assert.Equal(Updated(_theta0, Share(1, 0, 1f), own1), Replica(peer).Parameters);
    }

    [Fact]
    public void A_peer_that_applied_a_step_with_the_lost_peers_share_redoes_it_with_the_shares_every_survivor_holds()
    {
        var (peer, own0) = Started();
        Deliver(peer, own0);
        Deliver(peer, Share(0, 0, 1f));
        Deliver(peer, Share(0, 1, 4f));                                  // node 1's last share reached this peer …
        var own1 = Published<GradientShare>();
        Assert.Equal(1, own1.Step);
        Assert.Equal(Updated(_theta0, Share(0, 0, 1f), Share(0, 1, 4f), own0), Replica(peer).Parameters);

        // … but not node 0, which reports node 1 lost while it still gathers step 0.
        peer.Tell(new MembershipReport("run", 0, [1], -1, [], 0, [0, 2]));
        var report = Published<MembershipReport>();
        Assert.Equal((0L, 1L), (report.AppliedStep, report.OpenStep));
        Assert.Equal([1], report.Lost);
        Assert.Equal([0, 1, 2], report.AppliedSenders);

        // Step 0 is redone with the shares of nodes 0 and 2 only, as on node 0; the survivors go on at step 2.
        var own2 = Published<GradientShare>();
        Assert.Equal(2, own2.Step);
        var theta1 = Updated(_theta0, Share(0, 0, 1f), own0);
        Assert.Equal(theta1, Replica(peer).Parameters);
        Assert.Equal(1, Replica(peer).Step);
        Deliver(peer, own2);
        Deliver(peer, Share(2, 0, 2f));
        Assert.Equal(3, Published<GradientShare>().Step);
        Assert.Equal(Updated(theta1, Share(2, 0, 2f), own2), Replica(peer).Parameters);
    }

    [Fact]
    public void A_peer_on_the_minority_side_stops_instead_of_training_alone()
    {
        var reporter = CreateTestProbe("minority-reporter");
        var setup = new PeerSetup(Plan, 3, _theta0, new SgdOptions(1.0), new TrainingOptions(5, 4, 1), Train, null, reporter.Ref, Mediator: _mediator.Ref);
        var peer = Sys.ActorOf(PeerActor.Props(setup), "minority-peer");
        var subscribe = _mediator.ExpectMsg<Subscribe>();
        peer.Tell(new SubscribeAck(subscribe), _mediator.Ref);
        peer.Tell(Published<PeerReady>());
        peer.Tell(new PeerReady(Plan, AddressA, _peerA.Ref));
        peer.Tell(new PeerReady(Plan, AddressB, _peerB.Ref));
        peer.Tell(new PeerReadyAck("run", AddressA));
        peer.Tell(new PeerReadyAck("run", AddressB));
        Deliver(peer, Published<GradientShare>());

        // Neither other peer sends anything: this one alone is 1 of 3.
        var failed = reporter.FishForMessage<RunProgress.RunFailed>(_ => true, TimeSpan.FromSeconds(10));
        Assert.Contains("minority side of a partition", failed.Reason);
        Assert.Equal(0, Replica(peer).Step);
    }

    [Fact]
    public void A_peer_that_ended_the_epoch_with_the_lost_peers_share_redoes_the_last_step_and_hashes_again()
    {
        var (peer, own) = Started();
        var theta = _theta0;
        for (long step = 0; step < Plan.StepsPerEpoch - 1; step++)
        {
            Deliver(peer, own);
            Deliver(peer, Share(step, 0, 1f));
            Deliver(peer, Share(step, 1, 2f));
            theta = Updated(theta, Share(step, 0, 1f), Share(step, 1, 2f), own);
            own = Published<GradientShare>();
        }
        long last = Plan.StepsPerEpoch - 1;
        Deliver(peer, own);
        Deliver(peer, Share(last, 0, 1f));
        Deliver(peer, Share(last, 1, 2f));                               // node 1's last share reached this peer only
        var first = Published<ParameterHash>();
        Assert.Equal(1, first.Epoch);

        // Node 0 still gathers the last step without node 1's share; node 1 is lost.
        peer.Tell(new MembershipReport("run", 0, [1], last - 1, [0, 1, 2], last, [0, 2]));
        var report = Published<MembershipReport>();
        Assert.Equal(last, report.AppliedStep);
        var again = Published<ParameterHash>();                      // the epoch end, redone
        Assert.NotEqual(first.Hash, again.Hash);
        Assert.Equal(Updated(theta, Share(last, 0, 1f), own), Replica(peer).Parameters);

        // Node 0 applies the step the same way and hashes the same: the next epoch starts at step last + 2.
        peer.Tell(new ParameterHash("run", 1, 0, again.Hash, false));
        Assert.Equal(last + 2, Published<GradientShare>().Step);
    }

    /// <summary>
    /// The topic hands a peer its own hash too, and under load only after the other peers' hashes completed the round and
    /// the peer moved on to the next epoch: that echo is no bad message (it was counted as a drop, failing the fault-free
    /// cluster test one run in four on a loaded machine).
    /// </summary>
    [Fact]
    public void A_peers_own_hash_echoed_after_the_round_is_not_a_drop()
    {
        var (peer, own) = Started();
        for (long step = 0; step < Plan.StepsPerEpoch; step++)
        {
            Deliver(peer, own);
            Deliver(peer, Share(step, 0, 1f));
            Deliver(peer, Share(step, 1, 2f));
            if (step < Plan.StepsPerEpoch - 1)
                own = Published<GradientShare>();
        }
        var hash = Published<ParameterHash>();
        Assert.Equal(1, hash.Epoch);
        peer.Tell(new ParameterHash("run", 1, 0, hash.Hash, false));
        peer.Tell(new ParameterHash("run", 1, 1, hash.Hash, false));
        Assert.Equal(Plan.StepsPerEpoch, Published<GradientShare>().Step);   // epoch 2 under way
        peer.Tell(hash);                                                      // its own hash, late
        Assert.Equal(0, Replica(peer).Dropped);
    }

    /// <summary>
    /// The kinds of bad share the other peer specs do not cover, each sent while step 0 waits: dropped, counted, never
    /// applied; the replica after the step is what the good shares give (a non-finite share takes its node out of the step).
    /// </summary>
    [Theory]
    [InlineData("wrong_length")]
    [InlineData("non_finite")]
    [InlineData("beyond_the_window")]
    [InlineData("negative_samples")]
    public void A_bad_share_is_dropped_and_never_applied(string kind)
    {
        var (peer, own) = Started();
        var bad = kind switch
        {
            "wrong_length" => new GradientShare("run", 0, 1, 4, 1.0, 0, new float[4]),
            "non_finite" => Share(0, 1, float.NaN),
            "beyond_the_window" => Share(0 + StepBuffer.DefaultWindow + 1, 1, 100f),
            _ => Share(0, 1, 100f, samples: -4),
        };
        Deliver(peer, own);
        Deliver(peer, Share(0, 0, 1f));
        Deliver(peer, bad);
        if (kind != "non_finite")
            Deliver(peer, Share(0, 1, 3f));
        Assert.Equal(1, Published<GradientShare>().Step);
        var replica = Replica(peer);
        Assert.Equal(kind == "non_finite" ? Updated(_theta0, Share(0, 0, 1f), own) : Updated(_theta0, Share(0, 0, 1f), Share(0, 1, 3f), own),
                     replica.Parameters);
        Assert.Equal(1, replica.Dropped);
    }
}
