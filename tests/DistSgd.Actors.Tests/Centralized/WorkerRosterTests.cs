using Akka.Actor;
using DistSgd.Actors.Centralized;

namespace DistSgd.Actors.Tests.Centralized;

public class WorkerRosterTests
{
    private sealed class Worker(string host, string name = "worker") : MinimalActorRef
    {
        public override ActorPath Path { get; } = new RootActorPath(new Address("akka.tcp", "distsgd", host, 4053)) / "user" / name;
        public override IActorRefProvider Provider => throw new NotSupportedException();
    }

    private static (WorkerRoster Roster, Worker A, Worker B, Worker C) ThreeStarted()
    {
        var roster = new WorkerRoster();
        var (a, b, c) = (new Worker("10.0.0.1"), new Worker("10.0.0.2"), new Worker("10.0.0.3"));
        foreach (var w in new[] { c, a, b })
            roster.Register(w);
        roster.NumberByAddress();
        foreach (int index in roster.Participants.Keys)
            roster.Accept(index, null);
        roster.StartEpoch();
        return (roster, a, b, c);
    }

    [Fact]
    public void Indices_follow_the_addresses_whatever_the_registration_order()
    {
        var roster = new WorkerRoster();
        var (a, b) = (new Worker("10.0.0.1"), new Worker("10.0.0.2"));
        Assert.True(roster.Register(b));
        Assert.False(roster.Register(b));
        roster.Register(a);
        Assert.Equal(WorkerRoster.NoIndex, roster.IndexOf(a));

        var numbered = roster.NumberByAddress();

        Assert.Equal([(0, (IActorRef)a), (1, b)], numbered);
        Assert.Equal(1, roster.IndexOf(b));
        Assert.False(roster.AllAccepted);
        roster.Accept(0, "10.0.0.1:9000");
        roster.Accept(1, "10.0.0.2:9000");
        Assert.True(roster.AllAccepted);
        Assert.True(roster.TryEndpoint(1, out var endpoint));
        Assert.Equal("10.0.0.2:9000", endpoint);
    }

    [Fact]
    public void A_worker_that_joins_under_way_takes_part_from_the_next_epoch_and_the_shards_are_recut()
    {
        var (roster, a, _, c) = ThreeStarted();
        Assert.Equal(3, roster.ShardCount);
        Assert.Equal(0, roster.Forget(a));
        var d = new Worker("10.0.0.4");
        Assert.Equal(0, roster.FreeIndex(held: null, maxWorkers: 6));
        Assert.Equal(5, roster.FreeIndex(held: 5, maxWorkers: 6));
        Assert.True(roster.Register(d, 3));
        Assert.True(roster.JoinUnderWay(d, 3, null));
        Assert.False(roster.JoinUnderWay(d, 2, null));   // not its index
        Assert.Equal([1, 2], roster.Participants.Keys);

        Assert.False(roster.StartEpoch());               // 3 shards still: 1, 2 and 3
        Assert.Equal([1, 2, 3], roster.Participants.Keys);
        Assert.Equal((0, 1, 2), (roster.ShardOf(1), roster.ShardOf(2), roster.ShardOf(3)));
        roster.Forget(c);
        Assert.True(roster.StartEpoch());                // now 2
        Assert.Equal(2, roster.ShardCount);
    }

    [Fact]
    public void An_evicted_worker_is_out_at_once_and_remembered_until_its_member_goes()
    {
        var (roster, a, b, _) = ThreeStarted();
        Assert.Same(b, roster.Evict(1));
        Assert.Null(roster.Evict(1));
        Assert.False(roster.IsRegistered(b));
        Assert.DoesNotContain(1, roster.Participants.Keys);
        Assert.Equal(b.Path.Address, roster.EvictedAt(b));
        Assert.Equal([b], roster.Evicted);

        roster.ForgetEvictedAt(a.Path.Address);
        Assert.NotNull(roster.EvictedAt(b));
        roster.ForgetEvictedAt(b.Path.Address);
        Assert.Null(roster.EvictedAt(b));
        Assert.Empty(roster.Evicted);
    }

    [Fact]
    public void Forgetting_a_worker_without_an_index_touches_no_participant()
    {
        var roster = new WorkerRoster();
        var a = new Worker("10.0.0.1");
        roster.Register(a);
        Assert.Equal(WorkerRoster.NoIndex, roster.Forget(a));
        Assert.Null(roster.Forget(a));
        Assert.Empty(roster.Registered);
    }

    [Fact]
    public void A_recovered_run_keeps_the_shards_of_the_workers_in_its_epoch()
    {
        var roster = new WorkerRoster();
        var (a, b, c) = (new Worker("10.0.0.1"), new Worker("10.0.0.2"), new Worker("10.0.0.3"));
        var positions = new (IActorRef, WorkerPosition)[]
        {
            (a, new WorkerPosition("run", 0, 42, 3, 5, 1, 2, true)),
            (b, new WorkerPosition("run", 2, 42, 3, 5, 0, 2, true)),
            (c, new WorkerPosition("run", 4, 30, 2, 9, 0, 3, true)),   // computing in an earlier epoch
        };

        Assert.True(roster.Recover(positions, epoch: 3, shardCount: 2));

        Assert.Equal([0, 2], roster.Participants.Keys);
        Assert.Equal((1, 0), (roster.ShardOf(0), roster.ShardOf(2)));
        Assert.Equal([4], roster.Joining.Keys);
        Assert.Equal(4, roster.IndexOf(c));
    }

    [Fact]
    public void A_recovered_run_with_nobody_in_its_epoch_starts_the_next_epoch_with_everyone()
    {
        var roster = new WorkerRoster();
        var a = new Worker("10.0.0.1");
        Assert.False(roster.Recover([(a, new WorkerPosition("run", 1, 10, 1, 9, 0, 3, true))], epoch: 2, shardCount: 2));
        Assert.Equal([1], roster.Participants.Keys);
        Assert.Empty(roster.Joining);
        Assert.Equal(0, roster.ShardCount);
    }

    [Fact]
    public void At_the_end_of_the_run_nobody_is_left()
    {
        var (roster, a, _, _) = ThreeStarted();
        roster.Clear();
        Assert.Empty(roster.Registered);
        Assert.Empty(roster.Participants);
        Assert.Null(roster.Forget(a));
    }

    [Fact]
    public void With_a_rotation_each_epoch_turns_the_shards_so_every_shard_meets_every_worker()
    {
        var (roster, _, _, _) = ThreeStarted();
        Assert.Equal([0, 1, 2], roster.Participants.Keys.Select(roster.ShardOf));   // no rotation: shard = rank
        roster.StartEpoch(rotation: 1);
        Assert.Equal([1, 2, 0], roster.Participants.Keys.Select(roster.ShardOf));
        roster.StartEpoch(rotation: 5);
        Assert.Equal([2, 0, 1], roster.Participants.Keys.Select(roster.ShardOf));
    }
}
