using DistSgd.Actors.Centralized;
using DistSgd.Actors.Decentralized;
using DistSgd.Actors.Steps;
using DistSgd.Host.Runs;

namespace DistSgd.Host.Tests.Runs;

/// <summary>The table of a node's exit codes (README, "Exit codes of a node"), row by row.</summary>
public class NodeEndingTests
{
    private static readonly PeerFinished Finished = new(1, [0.5f], [1, 2, 3]);
    private static readonly NodeLost Removed = new("this node was removed from the cluster before the run ended");
    private static readonly TimeSpan NoPause = TimeSpan.Zero;
    private static readonly TimeSpan Stopped = TimeSpan.FromSeconds(31);

    [Fact]
    public void A_peer_that_finished_and_was_then_removed_ends_as_finished()
    {
        // Issue 18: the lead killed, the new lead wrote the results and left; the last survivor, a minority against the
        // dead node, downed itself 1.7 s after it finished and used to exit 1.
        var outcome = NodeEnding.Outcome(ended: null, Finished, Removed);
        Assert.Same(Finished, outcome);
        var exit = NodeEnding.Exit(outcome!, "run1", NoPause, removedAfterwards: true);
        Assert.Equal(ExitCodes.Ok, exit.ExitCode);
        Assert.StartsWith("done: run run1 ended; the lead peer (lowest node id) writes the results", exit.Line);
        Assert.Contains("removed this node as its part finished, which changes nothing", exit.Line);
    }

    [Fact]
    public void A_worker_told_the_run_ended_ends_as_finished_whatever_the_cluster_did_to_it()
    {
        var ended = new RunEnded("run1");
        Assert.Same(ended, NodeEnding.Outcome(ended, null, Removed));
        Assert.Equal(new NodeExit(ExitCodes.Ok, "done: run run1 ended; the master writes the results"), NodeEnding.Exit(ended, "run1", NoPause));
    }

    [Fact]
    public void A_worker_that_hears_the_end_after_a_long_pause_says_so_and_exits_0()
    {
        var exit = NodeEnding.Exit(new RunEnded("run1"), "run1", Stopped);
        Assert.Equal(ExitCodes.Ok, exit.ExitCode);
        Assert.Contains("this node did not run for 31 s (stopped, e.g. SIGSTOP, or starved) and heard the end when it ran again", exit.Line);
    }

    [Fact]
    public void A_node_removed_before_its_part_finished_exits_1_saying_so_and_naming_a_long_pause()
    {
        Assert.Same(Removed, NodeEnding.Outcome(null, null, Removed));
        Assert.Equal(new NodeExit(ExitCodes.TrainingFailed, Removed.Reason), NodeEnding.Exit(Removed, "run1", TimeSpan.FromSeconds(4)));
        var woken = NodeEnding.Exit(Removed, "run1", Stopped);
        Assert.Equal(ExitCodes.TrainingFailed, woken.ExitCode);
        Assert.StartsWith("this node did not run for 31 s", woken.Line);
        Assert.Contains(Removed.Reason, woken.Line);
        Assert.Contains("The run goes on without this node if the others hold a majority", woken.Line);
    }

    [Fact]
    public void Only_a_removed_centralized_worker_node_joins_again()
    {
        var removed = Removed with { Removed = true };
        Assert.True(NodeEnding.Rejoins(removed, centralized: true, hostsMaster: false));
        Assert.False(NodeEnding.Rejoins(removed, centralized: true, hostsMaster: true));     // the master's node ends as before
        Assert.True(NodeEnding.Rejoins(removed, centralized: false, hostsMaster: false));    // a peer joins again as a late peer (0098)
        Assert.False(NodeEnding.Rejoins(new NodeLost("the master's node left"), centralized: true, hostsMaster: false));
        Assert.False(NodeEnding.Rejoins(new RunEnded("run1"), centralized: true, hostsMaster: false));
    }

    [Fact]
    public void A_peer_the_others_went_on_without_joins_again_and_any_other_failure_ends_the_node()
    {
        var failed = new RunProgress.RunFailed("the other peers count this peer (node 2) as lost");
        Assert.True(NodeEnding.Rejoins(failed, centralized: false, hostsMaster: false, leftOut: true));
        Assert.False(NodeEnding.Rejoins(failed, centralized: false, hostsMaster: false, leftOut: false));   // diverged, bad plan, …
        Assert.False(NodeEnding.Rejoins(failed, centralized: true, hostsMaster: false, leftOut: true));
    }

    [Fact]
    public void A_removed_node_that_also_saw_the_master_s_node_leave_is_a_removal_and_joins_again()
    {
        // Issue 20 on main under load: the woken worker heard "the master's node left" (a removed node sees every other
        // member leave as it shuts down) before its own removal, and exited instead of joining again.
        var masterLeft = new NodeLost("the master's node akka.tcp://distsgd@127.0.0.1:36903 left the cluster before the run ended");
        var lost = NodeEnding.Lost(NodeEnding.SelfRemoved, masterLeft);
        Assert.Same(NodeEnding.SelfRemoved, lost);
        Assert.True(NodeEnding.Rejoins(NodeEnding.Outcome(null, null, lost)!, centralized: true, hostsMaster: false));
        // Heard alone, the master's node leaving ends the worker as before; seen while this node is down, it is the removal.
        Assert.Same(masterLeft, NodeEnding.Lost(null, masterLeft));
        Assert.False(NodeEnding.Rejoins(masterLeft, centralized: true, hostsMaster: false));
        Assert.Same(NodeEnding.SelfRemoved, NodeEnding.MasterLost(masterLeft.Reason, selfDown: true));
        Assert.Equal(masterLeft, NodeEnding.MasterLost(masterLeft.Reason, selfDown: false));
    }

    [Fact]
    public void The_run_s_own_ending_wins_over_both_and_a_failed_run_exits_1()
    {
        var failed = new RunProgress.RunFailed("every worker was lost");
        Assert.Same(failed, NodeEnding.Outcome(failed, Finished, Removed));
        Assert.Equal(new NodeExit(ExitCodes.TrainingFailed, "every worker was lost"), NodeEnding.Exit(failed, "run1", NoPause));
        Assert.Null(NodeEnding.Outcome(null, null, null));
        Assert.Throws<ArgumentException>(() => NodeEnding.Exit("something else", "run1", NoPause));
    }

    [Fact]
    public void The_pause_watch_names_the_longest_recent_pause_beyond_its_interval()
    {
        var watch = new PauseWatch();
        var interval = PauseWatch.Interval;
        var t = TimeSpan.FromSeconds(10);
        watch.Tick(t);
        Assert.Equal(TimeSpan.Zero, watch.PauseBefore(t));
        watch.Tick(t += interval);                                        // on time
        watch.Tick(t += interval + TimeSpan.FromMilliseconds(500));       // a busy moment: not kept
        Assert.Equal(TimeSpan.Zero, watch.PauseBefore(t));
        watch.Tick(t += interval + TimeSpan.FromSeconds(31));             // 31 s stopped
        watch.Tick(t += interval + TimeSpan.FromSeconds(2));              // 2 s late: shorter, the longest is kept
        Assert.Equal(TimeSpan.FromSeconds(31), watch.PauseBefore(t));
        // Long after (invited back, the run went on, the timer on time): the 31 s pause no longer explains the ending,
        // then the 2 s one neither.
        var later = t;
        while (later < t + PauseWatch.Recent)
            watch.Tick(later += interval);
        Assert.Equal(TimeSpan.FromSeconds(2), watch.PauseBefore(later));
        watch.Tick(later += interval);
        Assert.Equal(TimeSpan.Zero, watch.PauseBefore(later));
    }

    /// <summary>CI once saw a woken worker hear the run's end before its timer ticked again, and its last line not name the pause.</summary>
    [Fact]
    public void A_pause_still_without_its_next_tick_is_named_as_ending_now()
    {
        var watch = new PauseWatch();
        var t = TimeSpan.FromSeconds(3);
        watch.Tick(t);
        Assert.Equal(TimeSpan.Zero, watch.PauseBefore(t + PauseWatch.Interval + TimeSpan.FromMilliseconds(500)));   // a busy moment
        Assert.Equal(TimeSpan.FromSeconds(12), watch.PauseBefore(t + PauseWatch.Interval + TimeSpan.FromSeconds(12)));
        watch.Tick(t += PauseWatch.Interval + TimeSpan.FromSeconds(12));   // the tick after it: the same pause, kept
        Assert.Equal(TimeSpan.FromSeconds(12), watch.PauseBefore(t + TimeSpan.FromMilliseconds(100)));
    }
}
