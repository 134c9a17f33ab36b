using Akka.Actor;
using DistSgd.Actors.Membership;

namespace DistSgd.Actors.Tests.Membership;

public class ParticipantTrackerTests
{
    private static readonly Address A = new("akka.tcp", "distsgd", "10.0.0.1", 4053);
    private static readonly Address B = new("akka.tcp", "distsgd", "10.0.0.2", 4053);

    private readonly Dictionary<Address, List<int>> _participants = new() { [A] = [0, 2], [B] = [1] };

    private ParticipantTracker<int> Tracker() => new(address => _participants.GetValueOrDefault(address) ?? []);

    [Fact]
    public void An_unreachable_member_loses_its_participants_as_unreachable()
    {
        var tracker = Tracker();
        var change = tracker.Unreachable(A);
        Assert.Equal(LossCause.Unreachable, change.Cause);
        Assert.Equal([new ParticipantLost<int>(0, LossCause.Unreachable), new ParticipantLost<int>(2, LossCause.Unreachable)], change.Lost);
        Assert.Equal([A], tracker.UnreachableMembers);
        Assert.Equal([0, 2], tracker.LostAsUnreachable);   // told the run's end: they may only be paused
    }

    [Fact]
    public void Participants_lost_as_unreachable_are_regained_when_their_member_is_reachable_again()
    {
        var tracker = Tracker();
        tracker.Unreachable(A);
        _participants.Remove(A);   // the mode forgot them

        var change = tracker.Reachable(A);

        Assert.Null(change.Cause);
        Assert.Empty(change.Lost);
        Assert.Equal([0, 2], change.Regained);
        Assert.Empty(tracker.UnreachableMembers);
        Assert.Empty(tracker.LostAsUnreachable);
        Assert.Empty(tracker.Reachable(A).Regained);
    }

    [Fact]
    public void A_removed_member_loses_its_participants_for_good()
    {
        var tracker = Tracker();
        tracker.Unreachable(B);
        Assert.Equal([1], tracker.LostAsUnreachable);
        var removed = tracker.Removed(B);
        Assert.Empty(tracker.LostAsUnreachable);   // removed: quarantined, nothing reaches it any more

        Assert.Equal([new ParticipantLost<int>(1, LossCause.Removed)], removed.Lost);
        Assert.Empty(tracker.UnreachableMembers);
        Assert.Empty(tracker.Reachable(B).Regained);
    }

    [Fact]
    public void A_member_without_participants_changes_only_reachability()
    {
        var tracker = Tracker();
        var other = new Address("akka.tcp", "distsgd", "10.0.0.9", 4053);
        var change = tracker.Unreachable(other);
        Assert.Empty(change.Lost);
        Assert.Equal([other], tracker.UnreachableMembers);
        Assert.Null(tracker.On("not a cluster event"));
    }

    [Fact]
    public void Every_cause_has_words_for_the_notes()
    {
        Assert.Equal("unreachable", LossCause.Unreachable.Describe());
        Assert.Equal("stopped", new ParticipantLost<int>(3, LossCause.Stopped).Describe());
        Assert.All(Enum.GetValues<LossCause>(), cause => Assert.False(string.IsNullOrEmpty(cause.Describe())));
    }

    [Fact]
    public void A_loss_names_its_detail_after_its_cause()
    {
        Assert.Equal("refused to join: 784 features here, 20 in the plan",
                     new ParticipantLost<int>(1, LossCause.Refused, "784 features here, 20 in the plan").Describe());
        // The master's notes and the tests of a crashed worker read these words.
        Assert.Equal("dropped its data connection", LossCause.ConnectionClosed.Describe());
        Assert.StartsWith("could not be sent", LossCause.SendFailed.Describe());
    }
}
