using DistSgd.Numerics.Data;
using DistSgd.Numerics.Training;

namespace DistSgd.Numerics.Tests.Training;

/// <summary>What a decentralized run needs after losing a peer: re-sharding among the survivors, and a stop vote that can be cast again.</summary>
public class PeerLossHelpersTests
{
    [Fact]
    public void Survivors_shard_by_their_rank_in_the_sorted_surviving_ids()
    {
        var train = Synthetic.GaussianBlobs(90, 2, 3, spread: 2, seed: 1);
        // Node 1 was lost: nodes 0, 2 and 3 take shards 0, 1 and 2 of three, whatever order they are listed in.
        var survivor = ShardBatches.ForMember(train, 2, [3, 0, 2], batchSize: 10, seed: 5);
        var same = new ShardBatches(train, 1, 3, 10, 5);
        Assert.Equal(same.ShardSize, survivor.ShardSize);
        var (a, b) = (new float[20], new float[10]);
        var (c, d) = (new float[20], new float[10]);
        Assert.Equal(same.Gather(1, 0, c, d), survivor.Gather(1, 0, a, b));
        Assert.Equal(c, a);
        Assert.Equal(d, b);

        var error = Assert.Throws<ArgumentException>(() => ShardBatches.ForMember(train, 1, [0, 2, 3], 10, 5));
        Assert.Contains("1 is not one of the members 0, 2, 3", error.Message);
    }

    [Fact]
    public void WouldStop_answers_like_Observe_without_recording_the_loss()
    {
        var stopping = new EarlyStopping(patience: 2, minDelta: 0.01);
        stopping.Observe(1.0);
        stopping.Observe(1.0);                                   // one epoch without improvement
        Assert.True(stopping.WouldStop(1.0));
        Assert.False(stopping.WouldStop(0.5));
        Assert.Equal(1, stopping.EpochsWithoutImprovement);      // nothing recorded
        Assert.Equal(stopping.WouldStop(1.0), stopping.Observe(1.0));
    }
}
