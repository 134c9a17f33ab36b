using Akka.Actor;
using DistSgd.Actors.Centralized;

namespace DistSgd.Actors.Tests.Centralized;

public class ClusterMajorityTests
{
    private static Address Node(int port) => new("akka.tcp", "distsgd", "127.0.0.1", port);

    [Fact]
    public void The_side_reaching_more_than_half_the_members_is_the_majority()
    {
        var members = new[] { Node(1), Node(2), Node(3) };
        Assert.True(ClusterMajority.IsOnMajoritySide(members, []));
        Assert.True(ClusterMajority.IsOnMajoritySide(members, [Node(3)]));          // a worker crashed
        Assert.False(ClusterMajority.IsOnMajoritySide(members, [Node(2), Node(3)])); // cut off from both others
    }

    [Fact]
    public void Of_two_equal_halves_the_one_with_the_lowest_address_is_kept()
    {
        var members = new[] { Node(1), Node(2), Node(3), Node(4) };
        Assert.True(ClusterMajority.IsOnMajoritySide(members, [Node(3), Node(4)]));
        Assert.False(ClusterMajority.IsOnMajoritySide(members, [Node(1), Node(2)]));
    }
}
