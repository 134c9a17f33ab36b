using Akka.Actor;
using Akka.Cluster;

namespace DistSgd.Actors.Membership;

/// <summary>Why a participant stopped being waited for.</summary>
public enum LossCause
{
    /// <summary>The failure detector counts its node unreachable (it may come back).</summary>
    Unreachable,
    /// <summary>Its node left the cluster or was downed and removed.</summary>
    Removed,
    /// <summary>Its actor stopped (a watched actor terminated).</summary>
    Stopped,
    /// <summary>Its data connection closed (direct transport): a crashed process closes its sockets at once.</summary>
    ConnectionClosed,
    /// <summary>A payload could not be sent to it over the data connection.</summary>
    SendFailed,
    /// <summary>It sent nothing within distsgd.step-timeout.</summary>
    Silent,
    /// <summary>It refused to join the run.</summary>
    Refused,
}

/// <summary>The words for a <see cref="LossCause"/>.</summary>
public static class LossCauses
{
    /// <summary>The cause in words, for notes, logs and the live progress ("unreachable", "dropped its data connection", …).</summary>
    public static string Describe(this LossCause cause) => cause switch
    {
        LossCause.Unreachable => "unreachable",
        LossCause.Removed => "removed",
        LossCause.Stopped => "stopped",
        LossCause.ConnectionClosed => "dropped its data connection",
        LossCause.SendFailed => "could not be sent its payload",
        LossCause.Silent => "silent",
        LossCause.Refused => "refused to join",
        _ => throw new ArgumentOutOfRangeException(nameof(cause), cause, "no words for this loss cause"),
    };

    /// <summary>The cause in words followed by what it alone does not say (<paramref name="detail"/>), when there is one.</summary>
    public static string Describe(this LossCause cause, string? detail) => detail is null ? cause.Describe() : $"{cause.Describe()}: {detail}";
}

/// <summary>A participant of the run is lost: it is no longer waited for.</summary>
/// <typeparam name="TId">How the mode names a participant: the master its worker's actor (a worker has no index before
/// the run starts), a peer its node id.</typeparam>
/// <param name="Detail">What the cause alone does not say (a refusal's reason), or null.</param>
public sealed record ParticipantLost<TId>(TId Id, LossCause Cause, string? Detail = null) where TId : notnull
{
    /// <summary>The cause in words (with the detail), for notes and logs.</summary>
    public string Describe() => Cause.Describe(Detail);
}

/// <summary>What one cluster membership event means for the run's participants.</summary>
/// <param name="Member">The member the event is about.</param>
/// <param name="Lost">The participants on that member now lost, in the order the mode listed them.</param>
/// <param name="Regained">Participants lost as unreachable on that member that are reachable again (to invite back).</param>
public sealed record MembershipChange<TId>(Address Member, LossCause? Cause, IReadOnlyList<ParticipantLost<TId>> Lost,
                                           IReadOnlyList<TId> Regained) where TId : notnull;

/// <summary>
/// The one place where membership churn enters a coordinator, for both modes (as Akka.Cluster.Tools'
/// OldestChangedBuffer is for the singleton): turns the cluster's reachability and removal events into
/// <see cref="MembershipChange{TId}"/>s naming the participants lost (<see cref="ParticipantLost{TId}"/>, with a
/// <see cref="LossCause"/>) and those reachable again; keeps which members this node's own events count unreachable
/// (Cluster.State is updated by another actor and may lag them) and which participants were lost as unreachable, so
/// that they can be invited back. Pure: the mode says who its participants on a member are.
/// </summary>
public sealed class ParticipantTracker<TId> where TId : notnull
{
    private static readonly IReadOnlyList<TId> None = [];
    private readonly Func<Address, IReadOnlyList<TId>> _participantsAt;
    private readonly HashSet<Address> _unreachable = new();
    private readonly Dictionary<Address, IReadOnlyList<TId>> _lostAsUnreachable = new();

    /// <param name="participantsAt">The mode's participants on a member, in the order they are to be lost.</param>
    public ParticipantTracker(Func<Address, IReadOnlyList<TId>> participantsAt) => _participantsAt = participantsAt;

    /// <summary>Members this node's own events say are unreachable now.</summary>
    public IReadOnlyCollection<Address> UnreachableMembers => _unreachable;

    /// <summary>Changes of <see cref="UnreachableMembers"/> so far: a verdict taken over that set holds while this stays the same.</summary>
    public long UnreachableVersion { get; private set; }

    /// <summary>
    /// Participants lost as unreachable whose member is neither reachable again nor removed: they may only be paused
    /// (SIGSTOP, a long GC), and what is sent to them waits in their sockets until they run again.
    /// </summary>
    public IReadOnlyList<TId> LostAsUnreachable => _lostAsUnreachable.Values.SelectMany(lost => lost).ToList();

    /// <summary>
    /// What a cluster event means: unreachable (its participants lost, remembered to invite back), reachable again
    /// (those remembered), removed (its participants lost for good); null for any other message.
    /// </summary>
    public MembershipChange<TId>? On(object clusterEvent) => clusterEvent switch
    {
        ClusterEvent.UnreachableMember m => Unreachable(m.Member.Address),
        ClusterEvent.ReachableMember m => Reachable(m.Member.Address),
        ClusterEvent.MemberRemoved m => Removed(m.Member.Address),
        _ => null,
    };

    /// <summary>A participant lost for a reason the mode saw itself (stopped, connection closed, silent, …).</summary>
    public static ParticipantLost<TId> Lost(TId id, LossCause cause) => new(id, cause);

    /// <summary>The member is unreachable: its participants are lost, and remembered to be invited back.</summary>
    public MembershipChange<TId> Unreachable(Address address)
    {
        if (_unreachable.Add(address))
            UnreachableVersion++;
        var lost = _participantsAt(address);
        if (lost.Count > 0)
            _lostAsUnreachable[address] = lost;
        return new MembershipChange<TId>(address, LossCause.Unreachable, lost.Select(id => Lost(id, LossCause.Unreachable)).ToList(), None);
    }

    /// <summary>The member is reachable again: the participants lost as unreachable there are regained.</summary>
    public MembershipChange<TId> Reachable(Address address)
    {
        if (_unreachable.Remove(address))
            UnreachableVersion++;
        return new MembershipChange<TId>(address, null, [], _lostAsUnreachable.Remove(address, out var back) ? back : None);
    }

    /// <summary>The member left or was removed: its participants are lost for good.</summary>
    public MembershipChange<TId> Removed(Address address)
    {
        if (_unreachable.Remove(address))
            UnreachableVersion++;
        _lostAsUnreachable.Remove(address);
        return new MembershipChange<TId>(address, LossCause.Removed,
                                         _participantsAt(address).Select(id => Lost(id, LossCause.Removed)).ToList(), None);
    }
}
