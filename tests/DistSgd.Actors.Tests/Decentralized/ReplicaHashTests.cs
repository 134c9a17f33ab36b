using DistSgd.Actors.Decentralized;
using DistSgd.Numerics.Optim;

namespace DistSgd.Actors.Tests.Decentralized;

/// <summary>With local SGD each peer's momentum is its own: the replica hash covers θ and the step, not the velocity.</summary>
public class ReplicaHashTests
{
    [Fact]
    public void Local_sgd_hashes_leave_the_velocity_out_and_gradient_averaging_hashes_keep_it()
    {
        float[] theta = [1f, 2f];
        var mine = new SgdState(5, [0.1f, 0.2f]);
        var theirs = new SgdState(5, [0.3f, 0.4f]);
        Assert.Equal(ReplicaCheck.Hash(theta, mine, syncEvery: 4), ReplicaCheck.Hash(theta, theirs, syncEvery: 4));
        Assert.NotEqual(ReplicaCheck.Hash(theta, mine), ReplicaCheck.Hash(theta, theirs));
        Assert.NotEqual(ReplicaCheck.Hash(theta, mine, 4), ReplicaCheck.Hash(theta, new SgdState(6, [0.1f, 0.2f]), 4));
        Assert.NotEqual(ReplicaCheck.Hash(theta, mine, 4), ReplicaCheck.Hash([1f, 2.5f], mine, 4));
    }
}
