using DistSgd.Actors.Centralized;
using DistSgd.Actors.Protocol;
using DistSgd.Actors.Steps;

namespace DistSgd.Actors.Tests.Steps;

public class EpochTotalsTests
{
    private static IGradientContribution[] Step(double loss) =>
        [new GradientReply("run", 1, 0, 4, loss, 0.002, [1f]), new GradientReply("run", 1, 1, 4, loss / 3, 0.001, [1f])];

    [Fact]
    public void A_step_taken_back_leaves_the_totals_exactly_as_they_were()
    {
        var totals = new EpochTotals();
        totals.AddStep(Step(0.1), 8, 0.01, 0.001, 0.05);
        var before = totals.ToMetrics(1, 1, null, false, 0);

        totals.AddStep(Step(0.7), 8, 0.03, 0.002, 0.04);
        totals.UndoLastStep();

        Assert.Equal(before, totals.ToMetrics(1, 1, null, false, 0));   // the same bits, not a subtraction
        Assert.Throws<InvalidOperationException>(totals.UndoLastStep);  // once per step
    }
}
