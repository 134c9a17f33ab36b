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
        int reachable = all.Count - lost.Count;
        if (2 * reachable != all.Count)
            return 2 * reachable > all.Count;
        var lowest = all.OrderBy(a => a, Member.AddressOrdering).First();
        return !lost.Contains(lowest);
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
/// answers of <see cref="ClusterMajority.IsOnMajoritySide"/> go in, the changes come out. Starts on the majority side.
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
