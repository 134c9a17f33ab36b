using System.Text.Json;
using DistSgd.Host.Results;
using DistSgd.Numerics.Training;

namespace DistSgd.Host.Tests.Results;

public class RunSummaryTests
{
    private static EpochMetrics Epoch(int epoch, long step, long bytes, long dropped) =>
        new(epoch, step, 0.5, 0.5, 0.9, 1.0, 100, 0.1,
            new StepTimeBreakdown(step, 0.5, 0.1, 0.3, 0.2, bytes, bytes, dropped));

    private static JsonElement Totals(params EpochMetrics[] epochs) =>
        JsonSerializer.SerializeToElement(RunSummary.Totals(new TrainingResult(epochs, StopReason.EpochLimit, 3.0)));

    [Fact]
    public void Dropped_messages_are_the_last_epochs_running_count_not_the_sum_of_the_column()
    {
        // Each epoch's dropped_messages counts from the run's start: 1 bad frame in epoch 1, none after.
        var totals = Totals(Epoch(1, 10, 100, 1), Epoch(2, 20, 100, 1), Epoch(3, 30, 100, 1));
        Assert.Equal(1, totals.GetProperty("DroppedMessages").GetInt64());
        Assert.Equal(30, totals.GetProperty("Steps").GetInt64());
        Assert.Equal(300, totals.GetProperty("BytesSent").GetInt64());   // bytes are per epoch: these do add up
    }

    [Fact]
    public void A_run_without_epochs_or_without_communication_dropped_nothing()
    {
        Assert.Equal(0, Totals().GetProperty("DroppedMessages").GetInt64());
        Assert.Equal(0, Totals(new EpochMetrics(1, 5, 0.5, 0.5, 0.9, 1.0, 100, 0.1)).GetProperty("DroppedMessages").GetInt64());
    }

    [Fact]
    public void Bytes_sent_per_step_divide_the_bytes_by_the_steps_that_sent_them()
    {
        var epochs = new[]
        {
            new EpochMetrics(1, 10, 0.5, 0.5, 0.9, 1.0, 100, 0.1, new StepTimeBreakdown(10, 0.5, 0.1, 0.3, 0.2, 1_000, 1_000, 0)),
            new EpochMetrics(2, 16, 0.5, 0.5, 0.9, 1.0, 100, 0.1, new StepTimeBreakdown(6, 0.5, 0.1, 0.3, 0.2, 600, 600, 0)),
        };
        Assert.Equal(100, Totals(epochs).GetProperty("BytesSentPerStep").GetDouble());
        Assert.Equal(JsonValueKind.Null, Totals(new EpochMetrics(1, 5, 0.5, 0.5, 0.9, 1.0, 100, 0.1)).GetProperty("BytesSentPerStep").ValueKind);
    }
}
