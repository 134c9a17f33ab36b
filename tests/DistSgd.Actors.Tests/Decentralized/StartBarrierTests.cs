using Akka.Actor;
using DistSgd.Actors.Decentralized;
using DistSgd.Actors.Protocol;
using DistSgd.Actors.Transport;
using DistSgd.Numerics.Models;

namespace DistSgd.Actors.Tests.Decentralized;

public class StartBarrierTests
{
    private const string A = "akka.tcp://n@a:1";
    private const string B = "akka.tcp://n@b:2";
    private const string C = "akka.tcp://n@c:3";

    [Fact]
    public void The_barrier_passes_once_every_peer_is_ready_and_has_acknowledged_this_one()
    {
        var barrier = new StartBarrier("run", B, 3);
        var keyOfC = Enumerable.Repeat((byte)0xC, DataPlaneHandshake.KeySize).ToArray();
        Assert.True(barrier.Ready(C, "c:9", keyOfC));
        Assert.True(barrier.Ready(B, "b:9"));
        Assert.True(barrier.Ready(A, "a:9"));
        Assert.False(barrier.Ready(A, "a:9"));                       // again: not newly seen
        Assert.True(barrier.Acknowledged(A));
        Assert.True(barrier.Acknowledged(B));
        Assert.Null(barrier.TryPass());                              // C has not acknowledged ours

        Assert.True(barrier.Acknowledged(C));
        var passed = barrier.TryPass();
        Assert.NotNull(passed);
        Assert.Null(passed.Problem);
        Assert.Equal((0, 1, 2), (passed.NodeIdOf(A), passed.NodeIdOf(B), passed.NodeIdOf(C)));   // ranks by address
        Assert.Equal("c:9", passed.Endpoints[2]);
        Assert.Equal(keyOfC, passed.Keys[2]);                       // each node's key travels with its endpoint
        Assert.False(passed.Keys.ContainsKey(1));
        Assert.Empty(passed.Peers);                                  // no actor announced: on the Akka transport no share would count
    }

    [Fact]
    public void The_barrier_waits_for_this_peers_own_readiness()
    {
        var barrier = new StartBarrier("run", C, 2);
        barrier.Ready(A, "");
        barrier.Ready(B, "");
        barrier.Acknowledged(A);
        barrier.Acknowledged(B);
        Assert.Null(barrier.TryPass());                              // its own publication has not come back yet
    }

    [Fact]
    public void More_peers_than_expected_is_a_problem_naming_them()
    {
        var barrier = new StartBarrier("run", A, 2);
        foreach (var address in new[] { A, B, C })
        {
            barrier.Ready(address, "");
            barrier.Acknowledged(address);
        }
        var passed = barrier.TryPass();
        Assert.NotNull(passed);
        Assert.Contains($"3 peers announced run run, 2 expected: {A}, {B}, {C}", passed.Problem);
    }

    [Fact]
    public void A_member_that_left_counts_no_more_and_the_timeout_names_what_is_missing()
    {
        var barrier = new StartBarrier("run", A, 3);
        barrier.Ready(A, "");
        barrier.Ready(B, "");
        barrier.Acknowledged(A);
        barrier.Acknowledged(B);
        barrier.Forget(B);
        Assert.Equal(1, barrier.Seen);
        Assert.Equal("the start barrier did not pass within 30s (distsgd.start-timeout): PeerReady from 1 of 3 peers",
                     barrier.TimeoutProblem(TimeSpan.FromSeconds(30)));

        barrier.Ready(B, "");
        barrier.Ready(C, "");
        Assert.EndsWith($"all 3 peers ready; no acknowledgement from {B}, {C}", barrier.TimeoutProblem(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public void A_peer_with_another_configuration_or_transport_cannot_train_with_this_one()
    {
        var plan = new RunPlan("run", new ModelSpec(ModelKind.Softmax, 2, 3), 4, 1, 5, 42, 4);
        var peer = ActorRefs.Nobody;
        Assert.Null(StartBarrier.Mismatch(plan, direct: false, new PeerReady(plan, A, peer)));
        var key = new byte[DataPlaneHandshake.KeySize];
        Assert.Null(StartBarrier.Mismatch(plan, direct: true, new PeerReady(plan, A, peer, "a:9", key)));
        Assert.Contains("without a 32-byte data-plane key", StartBarrier.Mismatch(plan, direct: true, new PeerReady(plan, A, peer, "a:9")));
        Assert.Contains("without a 32-byte data-plane key", StartBarrier.Mismatch(plan, direct: true, new PeerReady(plan, A, peer, "a:9", new byte[5])));
        Assert.Contains("uses the direct transport, this peer the akka one", StartBarrier.Mismatch(plan, direct: false, new PeerReady(plan, A, peer, "a:9")));
        Assert.Contains("uses the akka transport, this peer the direct one", StartBarrier.Mismatch(plan, direct: true, new PeerReady(plan, A, peer)));
        Assert.StartsWith($"the peer at {A} runs a different run configuration: ", StartBarrier.Mismatch(plan, direct: false, new PeerReady(plan with { Seed = 2 }, A, peer)));
    }
}
