using DistSgd.Actors.Transport;

namespace DistSgd.Actors.Tests.Transport;

public sealed class RefusalLogTests
{
    private static readonly DateTime T0 = new(2026, 12, 1, 12, 0, 0, DateTimeKind.Utc);
    private static readonly TimeSpan Minute = TimeSpan.FromMinutes(1);

    /// <summary>The decisions for refusals of one kind at <paramref name="times"/> (seconds after T0), 3 a minute.</summary>
    private static List<RefusalLogDecision> Decisions(params double[] times)
    {
        var window = default(RefusalLogWindow);
        var decisions = new List<RefusalLogDecision>();
        foreach (double t in times)
        {
            (window, var decision) = RefusalLog.Judge(window, T0.AddSeconds(t), 3, Minute);
            decisions.Add(decision);
        }
        return decisions;
    }

    [Fact]
    public void The_first_ones_of_a_window_are_logged_the_last_of_them_says_so_and_the_rest_are_only_counted()
    {
        var decisions = Decisions(0, 1, 2, 3, 4, 59.9);

        Assert.Equal([true, true, true, false, false, false], decisions.Select(d => d.Log));
        Assert.Equal([false, false, true, false, false, false], decisions.Select(d => d.LastInWindow));
        Assert.All(decisions, d => Assert.Equal(0, d.UnloggedBefore));
    }

    [Fact]
    public void The_first_one_after_the_window_logs_itself_and_the_count_the_window_left_unlogged()
    {
        var decisions = Decisions(0, 1, 2, 3, 4, 5, 60, 61);

        Assert.Equal(new RefusalLogDecision(true, false, 3), decisions[6]);
        Assert.Equal(new RefusalLogDecision(true, false, 0), decisions[7]);
    }

    [Fact]
    public void A_window_that_logged_everything_has_nothing_to_summarise()
    {
        Assert.Equal(new RefusalLogDecision(true, false, 0), Decisions(0, 1, 120)[2]);
        Assert.Equal(new RefusalLogDecision(true, true, 0), RefusalLog.Judge(default, T0, 1, Minute).Decision);
    }

    [Fact]
    public void A_flood_of_200_refusals_of_one_kind_costs_a_few_lines_and_other_kinds_keep_their_own_windows()
    {
        var lines = new List<string>();
        var now = T0;
        var log = new RefusalLog(lines.Add, perWindow: 5, window: Minute, now: () => now);

        for (int i = 0; i < 200; i++)
            log.Record(new DataPlaneRefusal(ConnectionRefusal.UnprovenCap, $"127.0.0.1:{40000 + i}", "too many"));
        Assert.True(log.Record(new DataPlaneRefusal(ConnectionRefusal.BadProof, "10.0.0.9:5000", "wrong key")));

        Assert.Equal(6, lines.Count);
        Assert.Equal("data plane refused a connection from 127.0.0.1:40000: refused_unproven_cap: too many", lines[0]);
        Assert.EndsWith("(further refused_unproven_cap refusals in this 60s window are only counted)", lines[4]);
        Assert.Equal("data plane refused a connection from 10.0.0.9:5000: refused_bad_proof: wrong key", lines[5]);

        now = T0 + Minute;
        Assert.True(log.Record(new DataPlaneRefusal(ConnectionRefusal.UnprovenCap, "127.0.0.1:1", "too many")));
        Assert.Equal("data plane: 195 more refused_unproven_cap refusals were counted but not logged in the 60s before", lines[6]);
        Assert.Equal(8, lines.Count);
    }
}
