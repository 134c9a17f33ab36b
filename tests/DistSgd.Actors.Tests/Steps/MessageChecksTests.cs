using DistSgd.Actors.Centralized;
using DistSgd.Actors.Steps;

namespace DistSgd.Actors.Tests.Steps;

public class MessageChecksTests
{
    private static ComputeGradient Request(long step, float value, string run = "run", int length = 4) =>
        new(run, step, 1, 0, Enumerable.Repeat(value, length).ToArray());

    [Fact]
    public void A_worker_serves_its_master_s_steps_and_the_same_step_again_but_not_another_theta_for_it()
    {
        var check = new ComputeRequestCheck();
        Assert.Equal(GatherOutcome.ForeignRun, check.Judge(Request(0, 1f), fromMaster: true));   // before joining
        check.Join("run", 4);
        Assert.Equal(GatherOutcome.Accepted, check.Judge(Request(0, 1f), fromMaster: true));
        Assert.Equal(GatherOutcome.Accepted, check.Judge(Request(0, 1f), fromMaster: true));      // asked again
        Assert.Equal(GatherOutcome.Duplicate, check.Judge(Request(0, 2f), fromMaster: true));
        Assert.Equal(GatherOutcome.Accepted, check.Judge(Request(7, 2f), fromMaster: true));      // steps it was not sent
        Assert.Equal(GatherOutcome.StaleStep, check.Judge(Request(6, 2f), fromMaster: true));
        Assert.Equal(GatherOutcome.NotParticipant, check.Judge(Request(8, 2f), fromMaster: false));
        Assert.Equal(GatherOutcome.WrongLength, check.Judge(Request(8, 2f, length: 3), fromMaster: true));
        Assert.Equal(GatherOutcome.NonFinite, check.Judge(Request(8, float.NaN), fromMaster: true));
        Assert.Equal(GatherOutcome.ForeignRun, check.Judge(Request(8, 2f, run: "other"), fromMaster: true));
        Assert.Equal(7, check.DroppedTotal);
        check.Leave();
        Assert.Equal(GatherOutcome.ForeignRun, check.Judge(Request(9, 2f), fromMaster: true));
        check.Join("run", 4);                                                                        // a new run starts over
        Assert.Equal(GatherOutcome.Accepted, check.Judge(Request(0, 5f), fromMaster: true));
    }

    private sealed class ManualClock : TimeProvider
    {
        public long Ticks { get; set; }
        public override long TimestampFrequency => TimeSpan.TicksPerSecond;
        public override long GetTimestamp() => Ticks;
    }

    [Fact]
    public void Drops_are_logged_once_per_kind_per_interval_with_the_count_of_those_not_logged()
    {
        var lines = new List<string>();
        var clock = new ManualClock();
        var log = new DropLog(lines.Add, TimeSpan.FromSeconds(10), clock);
        Assert.True(log.Record(GatherOutcome.WrongLength, "gradient of worker 1 for step 3"));
        for (int i = 0; i < 1000; i++)
            Assert.False(log.Record(GatherOutcome.WrongLength, "gradient of worker 1 for step 3"));
        Assert.True(log.Record(GatherOutcome.Duplicate, "gradient of worker 0 for step 3"));   // another kind: logged at once
        clock.Ticks += TimeSpan.FromSeconds(11).Ticks;
        Assert.True(log.Record(GatherOutcome.WrongLength, "gradient of worker 1 for step 9"));

        Assert.Equal(3, lines.Count);
        Assert.Equal("dropped gradient of worker 1 for step 3: wrong_length", lines[0]);
        Assert.Equal("dropped gradient of worker 0 for step 3: duplicate", lines[1]);
        Assert.Equal("dropped gradient of worker 1 for step 9: wrong_length (and 1000 more wrong_length drops in the last 11s, not logged one by one)", lines[2]);
    }

    [Fact]
    public void The_per_kind_breakdown_adds_up_every_source_and_leaves_out_kinds_without_drops()
    {
        var kinds = DroppedMessages.ByKind(
            [new(GatherOutcome.Duplicate, 2), new(GatherOutcome.WrongLength, 0), new(GatherOutcome.Duplicate, 1), new(GatherOutcome.NonFinite, 4)],
            badFrames: 3, other: 0);
        Assert.Equal(new Dictionary<string, long> { ["bad_frame"] = 3, ["duplicate"] = 3, ["non_finite"] = 4 }, kinds);
    }
}
