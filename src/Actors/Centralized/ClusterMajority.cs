using Akka.Actor;
using Akka.Cluster;

namespace DistSgd.Actors.Centralized;

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
