using DistSgd.Actors.Centralized;
using DistSgd.Actors.Protocol;
using DistSgd.Actors.Steps;

namespace DistSgd.Actors.Tests.Steps;

public class StepBufferTests
{
    private static IGradientContribution Share(long step, int node, string run = "run", float value = 1f) =>
        new GradientReply(run, step, node, 4, 1.0, 0.001, [value, value, value]);

    [Fact]
    public void A_share_of_the_next_step_is_held_and_offered_when_that_step_begins()
    {
        var buffer = new StepBuffer("run", parameterCount: 3);
        buffer.Begin(5, [0, 1]);
        Assert.Equal(GatherOutcome.Buffered, buffer.Offer(Share(6, 1, value: 7f)));
        Assert.Empty(buffer.Gather.Replies);                 // not applied early
        Assert.Equal(1, buffer.HeldCount);

        buffer.Offer(Share(5, 0));
        buffer.Offer(Share(5, 1));
        Assert.True(buffer.Gather.IsComplete);

        buffer.Begin(6, [0, 1]);
        Assert.Equal([7f, 7f, 7f], buffer.Gather.Replies.Single().Gradient);
        Assert.Equal([0], buffer.Gather.WaitingFor);
        Assert.Equal(0, buffer.HeldCount);
        Assert.Equal(0, buffer.DroppedTotal);
    }

    [Fact]
    public void A_resumed_buffer_holds_shares_of_its_first_step_before_opening_it()
    {
        // Resumed at step 120: a faster peer's share of step 120 may arrive before this peer passes the start barrier.
        var buffer = new StepBuffer("run", 3) { FirstStep = 120 };
        Assert.Equal(GatherOutcome.Buffered, buffer.Offer(Share(120, 1)));
        Assert.Equal(GatherOutcome.FutureStep, buffer.Offer(Share(120 + StepBuffer.DefaultWindow, 1)));
        buffer.Begin(120, [0, 1]);
        Assert.Equal([1], buffer.Gather.Replies.Select(r => r.Participant));
    }

    [Fact]
    public void Before_the_first_step_shares_of_step_zero_are_held()
    {
        var buffer = new StepBuffer("run", 3);
        Assert.Equal(GatherOutcome.Buffered, buffer.Offer(Share(0, 2)));
        buffer.Begin(0, [0, 1, 2]);
        Assert.Equal([2], buffer.Gather.Replies.Select(r => r.Participant));
    }

    [Fact]
    public void Foreign_duplicate_too_far_ahead_and_skipped_shares_are_dropped_and_counted()
    {
        var buffer = new StepBuffer("run", 3, window: 2);
        buffer.Begin(5, [0, 1]);
        Assert.Equal(GatherOutcome.ForeignRun, buffer.Offer(Share(6, 0, run: "other")));
        Assert.Equal(GatherOutcome.Buffered, buffer.Offer(Share(6, 0)));
        Assert.Equal(GatherOutcome.Duplicate, buffer.Offer(Share(6, 0, value: 9f)));
        Assert.Equal(GatherOutcome.FutureStep, buffer.Offer(Share(8, 0)));
        Assert.Equal(GatherOutcome.StaleStep, buffer.Offer(Share(4, 0)));

        buffer.Begin(7, [0, 1]);                                // step 6 skipped: its held share is stale
        Assert.Empty(buffer.Gather.Replies);
        Assert.Equal(5, buffer.DroppedTotal);
        Assert.Equal(2, buffer.Dropped[GatherOutcome.StaleStep]);
    }

    [Fact]
    public void A_held_share_of_a_peer_that_left_is_dropped_when_its_step_begins()
    {
        var buffer = new StepBuffer("run", 3);
        buffer.Begin(0, [0, 1]);
        buffer.Offer(Share(1, 1));
        buffer.Begin(1, [0]);
        Assert.Empty(buffer.Gather.Replies);
        Assert.Equal(1, buffer.Dropped[GatherOutcome.NotParticipant]);
    }

    [Fact]
    public void The_average_sums_in_participant_order_whatever_the_arrival_order()
    {
        // In float32, 1e8 + 1 == 1e8: the order of the sum decides the bits.
        var values = new[] { 1e8f, 1f, -1e8f, 3f };
        var forward = new StepBuffer("run", 3);
        var backward = new StepBuffer("run", 3);
        forward.Begin(0, [0, 1, 2, 3]);
        backward.Begin(0, [0, 1, 2, 3]);
        for (int i = 0; i < 4; i++)
        {
            forward.Offer(Share(0, i, value: values[i]));
            backward.Offer(Share(0, 3 - i, value: values[3 - i]));
        }
        var a = new float[3];
        var b = new float[3];
        Assert.Equal(16, forward.Gather.Average(a));
        Assert.Equal(16, backward.Gather.Average(b));
        Assert.Equal(a, b);
        Assert.Equal(3f * 4 / 16, a[0]);                      // ((1e8 + 1) − 1e8 + 3)·4 / 16 in float32
    }
}
