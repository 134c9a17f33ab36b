using Akka.Actor;
using DistSgd.Actors.Membership;

namespace DistSgd.Actors.Tests.Membership;

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

    [Fact]
    public void A_side_change_is_reported_once_when_it_happens()
    {
        var side = new PartitionSide();
        Assert.Equal(SideChange.None, side.Observe(true));
        Assert.Equal(SideChange.LostMajority, side.Observe(false));
        Assert.Equal(SideChange.None, side.Observe(false));
        Assert.False(side.OnMajoritySide);
        Assert.Equal(SideChange.RegainedMajority, side.Observe(true));
        Assert.Equal(SideChange.None, side.Observe(true));
    }
}
