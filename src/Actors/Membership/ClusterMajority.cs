using Akka.Actor;
using Akka.Cluster;

namespace DistSgd.Actors.Membership;

/// <summary>
/// Which side of a partition a node is on, by the rule of the split brain resolver's keep-majority strategy
/// (reference.conf): the side that reaches more than half of the members survives, and of two equal halves the
/// one holding the lowest address. A master on the other side is about to be downed and must not change θ.
/// </summary>
public static class ClusterMajority
{
    /// <param name="members">The members that count (Up, WeaklyUp, Leaving), this node included.</param>
    /// <param name="unreachable">The members this node cannot reach.</param>
    public static bool IsOnMajoritySide(IEnumerable<Address> members, IEnumerable<Address> unreachable)
    {
        var all = members.ToHashSet();
        if (all.Count == 0)
            return true;
        var lost = unreachable.Where(all.Contains).ToHashSet();
        var lowest = all.OrderBy(a => a, Member.AddressOrdering).First();
        return IsOnMajoritySide(all.Count, lost.Count, lost.Contains(lowest));
    }

    /// <summary>
    /// The same rule on counts (what a coordinator checks at every step, without allocating): <paramref name="members"/>
    /// that count, how many of them this node cannot reach, and whether the lowest address among them is one of those.
    /// </summary>
    public static bool IsOnMajoritySide(int members, int unreachable, bool lowestUnreachable)
    {
        if (members == 0)
            return true;
        int reachable = members - unreachable;
        if (2 * reachable != members)
            return 2 * reachable > members;
        return !lowestUnreachable;
    }

    /// <summary>
    /// <see cref="IsOnMajoritySide(int, int, bool)"/> of the cluster as <paramref name="state"/> and this node's own
    /// unreachability events (<paramref name="unreachable"/>) see it, counting the members Up, WeaklyUp and Leaving;
    /// loops over the state without LINQ, since the centralized master asks at every step.
    /// </summary>
    public static bool IsOnMajoritySide(ClusterEvent.CurrentClusterState state, IReadOnlyCollection<Address> unreachable)
    {
        int members = 0, lost = 0;
        Address? lowest = null;
        bool lowestLost = false;
        foreach (var member in state.Members)
        {
            if (member.Status is not (MemberStatus.Up or MemberStatus.WeaklyUp or MemberStatus.Leaving))
                continue;
            members++;
            bool isLost = unreachable.Contains(member.Address) || Holds(state.Unreachable, member.Address);
            if (isLost)
                lost++;
            if (lowest is null || Member.AddressOrdering.Compare(member.Address, lowest) < 0)
                (lowest, lowestLost) = (member.Address, isLost);
        }
        return IsOnMajoritySide(members, lost, lowestLost);
    }

    /// <summary>Whether a member of <paramref name="members"/> has <paramref name="address"/> (by address, as the rule counts).</summary>
    private static bool Holds(IEnumerable<Member> members, Address address)
    {
        foreach (var member in members)
            if (member.Address.Equals(address))
                return true;
        return false;
    }
}

/// <summary>
/// <see cref="ClusterMajority.IsOnMajoritySide(ClusterEvent.CurrentClusterState, IReadOnlyCollection{Address})"/> asked at
/// every step of the centralized master, taken again only when its inputs changed: the cluster's state is an immutable
/// snapshot that Akka replaces when anything in it changes, and this node's own unreachability events come with a version
/// (<see cref="ParticipantTracker{TId}.UnreachableVersion"/>). The same snapshot and version give the same verdict, so
/// the walk over the members and its comparisons of addresses (about 0.05 ms) run once per change instead of once a step.
/// </summary>
/// <param name="judge">The rule (a test counts its calls); default <see cref="ClusterMajority.IsOnMajoritySide(ClusterEvent.CurrentClusterState, IReadOnlyCollection{Address})"/>.</param>
public sealed class MajorityVerdict(Func<ClusterEvent.CurrentClusterState, IReadOnlyCollection<Address>, bool>? judge = null)
{
    private readonly Func<ClusterEvent.CurrentClusterState, IReadOnlyCollection<Address>, bool> _judge = judge ?? ClusterMajority.IsOnMajoritySide;
    private ClusterEvent.CurrentClusterState? _state;
    private long _version = -1;
    private bool _majority;

    /// <summary>Whether this node is on the majority side, as <paramref name="state"/> and <paramref name="unreachable"/> (at <paramref name="version"/>) tell.</summary>
    public bool Of(ClusterEvent.CurrentClusterState state, IReadOnlyCollection<Address> unreachable, long version)
    {
        if (!ReferenceEquals(state, _state) || version != _version)
            (_state, _version, _majority) = (state, version, _judge(state, unreachable));
        return _majority;
    }
}

/// <summary>How a coordinator's side of a partition changed (<see cref="PartitionSide.Observe"/>).</summary>
public enum SideChange
{
    /// <summary>Still on the same side.</summary>
    None,
    /// <summary>It was on the majority side and now sees only a minority: it must stop changing θ.</summary>
    LostMajority,
    /// <summary>It was on the minority side and sees the majority again: it may go on.</summary>
    RegainedMajority,
}

/// <summary>
/// Which side of a partition a coordinator last saw itself on, so that it acts once per change of side: the
/// answers of <see cref="ClusterMajority.IsOnMajoritySide(IEnumerable{Address}, IEnumerable{Address})"/> go in, the changes come out. Starts on the majority side.
/// </summary>
public sealed class PartitionSide
{
    /// <summary>True while the last answer was the majority side.</summary>
    public bool OnMajoritySide { get; private set; } = true;

    /// <summary>Records the latest answer; says whether the side changed, and how.</summary>
    public SideChange Observe(bool onMajoritySide)
    {
        var change = onMajoritySide == OnMajoritySide ? SideChange.None
                   : onMajoritySide ? SideChange.RegainedMajority : SideChange.LostMajority;
        OnMajoritySide = onMajoritySide;
        return change;
    }
}
