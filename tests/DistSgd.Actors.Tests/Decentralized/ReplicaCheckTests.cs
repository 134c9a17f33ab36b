using DistSgd.Actors.Decentralized;
using DistSgd.Numerics.Optim;

namespace DistSgd.Actors.Tests.Decentralized;

public class ReplicaCheckTests
{
    private static readonly byte[] Good = [1, 2, 3];
    private static readonly byte[] Bad = [9, 9, 9];

    [Fact]
    public void The_source_is_the_lowest_node_of_the_majority_hash()
    {
        Assert.Equal(1, ReplicaCheck.ChooseSource(new Dictionary<int, byte[]> { [0] = Bad, [1] = Good, [2] = (byte[])Good.Clone() }));
        Assert.Equal(0, ReplicaCheck.ChooseSource(new Dictionary<int, byte[]> { [0] = Good, [1] = Good, [2] = Bad }));
    }

    [Fact]
    public void A_tie_goes_to_the_group_holding_the_lowest_node_id()
    {
        Assert.Equal(0, ReplicaCheck.ChooseSource(new Dictionary<int, byte[]> { [3] = Good, [0] = Bad, [1] = Good, [2] = Bad }));
    }

    [Fact]
    public void The_hash_covers_parameters_step_and_velocity()
    {
        float[] theta = [1f, 2f];
        var hash = ReplicaCheck.Hash(theta, new SgdState(3, [0.5f, 0.5f]));
        Assert.Equal(32, hash.Length);
        Assert.Equal(hash, ReplicaCheck.Hash([1f, 2f], new SgdState(3, [0.5f, 0.5f])));
        Assert.NotEqual(hash, ReplicaCheck.Hash([1f, BitConverter.Int32BitsToSingle(BitConverter.SingleToInt32Bits(2f) + 1)], new SgdState(3, [0.5f, 0.5f])));
        Assert.NotEqual(hash, ReplicaCheck.Hash(theta, new SgdState(4, [0.5f, 0.5f])));
        Assert.NotEqual(hash, ReplicaCheck.Hash(theta, new SgdState(3, [0.5f, 0.25f])));
    }
}
