using DistSgd.Actors.Decentralized;

namespace DistSgd.Actors.Tests.Decentralized;

public class HashRoundTests
{
    private static readonly byte[] Good = [1, 2, 3];
    private static readonly byte[] Bad = [9, 9, 9];

    private static ParameterHash Hash(int epoch, int node, byte[] hash, bool stop = false) => new("run", epoch, node, hash, stop);

    [Fact]
    public void The_round_completes_only_with_every_participants_hash_and_holds_those_of_later_epochs()
    {
        var round = new HashRound();
        round.Offer(Hash(2, 1, Good));                               // a faster peer's next epoch
        round.Offer(Hash(1, 1, Good));
        Assert.Null(round.TryComplete(Hash(1, 0, Good), [0, 1, 2], out var missing));
        Assert.Equal([2], missing);

        round.Offer(Hash(1, 2, Good));
        var agreed = round.TryComplete(Hash(1, 0, Good), [0, 1, 2], out missing);
        Assert.Empty(missing);
        Assert.NotNull(agreed);
        Assert.True(agreed.AllEqual);
        Assert.True(round.Holds(2, 1));                              // epoch 2's hash is kept
        Assert.False(round.Holds(1, 1));                             // epoch 1's round is over
    }

    [Fact]
    public void Differing_replicas_copy_the_majority_and_every_peer_follows_the_sources_vote()
    {
        var round = new HashRound();
        round.Offer(Hash(3, 1, Good, stop: true));
        round.Offer(Hash(3, 2, (byte[])Good.Clone(), stop: true));
        var agreed = round.TryComplete(Hash(3, 0, Bad), [0, 1, 2], out _);

        Assert.NotNull(agreed);
        Assert.False(agreed.AllEqual);
        Assert.Equal(1, agreed.Source);
        Assert.True(agreed.VotesToStop);
        Assert.False(agreed.Matches(Bad));
        Assert.StartsWith("REPLICA MISMATCH after epoch 3: parameter hashes node 0 090909, node 1 010203, node 2 010203; re-synchronising",
                          agreed.Describe(3));
    }

    [Fact]
    public void A_reporting_peers_hashes_are_withdrawn_and_a_lost_peers_hash_no_longer_counts()
    {
        var round = new HashRound();
        round.Offer(Hash(1, 1, Good));
        round.Offer(Hash(1, 2, Bad));
        round.Withdraw(1);
        Assert.Null(round.TryComplete(Hash(1, 0, Good), [0, 1, 2], out var missing));
        Assert.Equal([1], missing);

        var agreed = round.TryComplete(Hash(1, 0, Good), [0, 1], out _);   // node 2 is gone: its hash is left out
        Assert.Null(agreed);                                                 // node 1 still has to publish again
        round.Offer(Hash(1, 1, Good));
        agreed = round.TryComplete(Hash(1, 0, Good), [0, 1], out _);
        Assert.NotNull(agreed);
        Assert.True(agreed.AllEqual);
        Assert.Equal([0, 1], agreed.Hashes.Keys.Order());
    }

    [Fact]
    public void A_hash_of_another_run_or_an_epoch_over_is_dropped_and_the_peers_own_late_echo_is_not()
    {
        var round = new HashRound();
        Assert.Equal(HashRound.Arrival.Held, round.Admit(Hash(3, 1, Good), "run", self: 0, epoch: 3));
        Assert.Equal(HashRound.Arrival.Held, round.Admit(Hash(4, 1, Good), "run", self: 0, epoch: 3));   // a faster peer
        Assert.Equal(HashRound.Arrival.Dropped, round.Admit(Hash(2, 1, Good), "run", self: 0, epoch: 3));
        Assert.Equal(HashRound.Arrival.Dropped, round.Admit(new ParameterHash("other", 3, 1, Good, false), "run", self: 0, epoch: 3));
        Assert.Equal(HashRound.Arrival.OwnEcho, round.Admit(Hash(2, 0, Good), "run", self: 0, epoch: 3));
        Assert.True(round.Holds(4, 1));
        Assert.False(round.Holds(2, 1));
    }

    [Fact]
    public void Every_peer_takes_the_late_peers_of_the_lowest_node_ids_hash_and_no_others()
    {
        var join = new PeerJoin(3, "akka.tcp://distsgd@h:9", Akka.Actor.ActorRefs.Nobody, "", null);
        var round = new HashRound();
        round.Offer(Hash(2, 1, Good) with { Joiners = [join with { NodeId = 7 }] });   // not the lead's: ignored
        round.Offer(Hash(2, 2, Good));
        var agreed = round.TryComplete(Hash(2, 0, Good) with { Joiners = [join] }, [0, 1, 2], out _);
        Assert.Equal([join], agreed!.Joiners);

        var led = new HashRound();
        led.Offer(Hash(2, 0, Good) with { Joiners = [join] });
        led.Offer(Hash(2, 2, Good));
        Assert.Equal([join], led.TryComplete(Hash(2, 1, Good), [0, 1, 2], out _)!.Joiners);   // seen from node 1: the same
    }
}
