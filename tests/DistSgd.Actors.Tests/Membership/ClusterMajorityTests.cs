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

    [Fact]
    public void The_majority_verdict_is_taken_again_only_when_the_cluster_state_or_the_unreachable_set_changed()
    {
        int judged = 0;
        bool answer = true;
        var verdict = new MajorityVerdict((_, _) => { judged++; return answer; });
        var state = new Akka.Cluster.ClusterEvent.CurrentClusterState();
        Address[] unreachable = [];

        Assert.True(verdict.Of(state, unreachable, 0));
        answer = false;
        Assert.True(verdict.Of(state, unreachable, 0));   // the same snapshot and version: the same verdict, not judged again
        Assert.Equal(1, judged);
        Assert.False(verdict.Of(state, [Node(2552)], 1));   // this node's own unreachability events changed
        Assert.Equal(2, judged);
        answer = true;
        Assert.True(verdict.Of(new Akka.Cluster.ClusterEvent.CurrentClusterState(), unreachable, 1));   // a new snapshot
        Assert.Equal(3, judged);
    }

    [Fact]
    public void The_unreachable_version_moves_with_every_change_of_the_unreachable_set()
    {
        var tracker = new ParticipantTracker<int>(_ => []);
        tracker.Unreachable(Node(1));
        tracker.Unreachable(Node(1));   // already unreachable: nothing changed
        Assert.Equal(1, tracker.UnreachableVersion);
        tracker.Reachable(Node(1));
        tracker.Unreachable(Node(2));
        tracker.Removed(Node(2));
        tracker.Removed(Node(3));   // never unreachable
        Assert.Equal(4, tracker.UnreachableVersion);
    }
}
