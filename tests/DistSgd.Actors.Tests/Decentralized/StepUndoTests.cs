using DistSgd.Actors.Decentralized;
using DistSgd.Numerics.Optim;

namespace DistSgd.Actors.Tests.Decentralized;

public class StepUndoTests
{
    private static GradientShare Share(int node, float[] gradient) => new("run", 4, node, 2, 1.0, 0, gradient);

    [Fact]
    public void Restoring_gives_back_exactly_the_replica_before_the_last_applied_step()
    {
        var optimizer = new SgdOptimizer(new SgdOptions(0.5, momentum: 0.9), 3);
        float[] theta = [1f, 2f, 3f];
        optimizer.Step(theta, [0.1f, 0.2f, 0.3f]);
        var before = ((float[])theta.Clone(), optimizer.State.Step, (float[])optimizer.State.Velocity.Clone());

        var undo = new StepUndo(3, 3);
        undo.Capture(theta, optimizer.State);
        optimizer.Step(theta, [1f, 1f, 1f]);
        undo.Applied(4, [Share(0, [1f, 1f, 1f])]);
        Assert.Equal(4, undo.AppliedStep);

        undo.Restore(theta, optimizer);
        Assert.Equal(before.Item1, theta);
        Assert.Equal(before.Item2, optimizer.State.Step);
        Assert.Equal(before.Item3, optimizer.State.Velocity);
        optimizer.Step(theta, [1f, 1f, 1f]);                          // the optimizer does not share the undo's copy
        undo.Restore(theta, optimizer);
        Assert.Equal(before.Item1, theta);
    }

    [Fact]
    public void The_previous_steps_arrays_are_released_unless_the_new_step_uses_them_again()
    {
        var undo = new StepUndo(1, 0);
        float[] a = [1f], b = [2f], c = [3f];
        var released = new List<float[]>();
        undo.Applied(0, [Share(0, a), Share(1, b)], share => released.Add(share.Gradient));
        Assert.Empty(released);
        Assert.True(undo.Uses(a));

        undo.Applied(1, [Share(0, a), Share(1, c)], share => released.Add(share.Gradient));   // a redo keeps a
        Assert.Same(b, Assert.Single(released));
        Assert.False(undo.Uses(b));
        Assert.Equal([0, 1], undo.Shares.Select(s => s.NodeId));
    }

    [Fact]
    public void An_abandoned_step_records_the_skipped_step_as_applied_with_no_shares_and_releases_the_last_steps_arrays()
    {
        var undo = new StepUndo(1, 0);
        float[] a = [1f], b = [2f];
        var released = new List<float[]>();
        undo.Applied(4, [Share(0, a), Share(1, b)]);

        undo.Abandoned(6, share => released.Add(share.Gradient));

        Assert.Equal(6, undo.AppliedStep);
        Assert.Empty(undo.Shares);
        Assert.Equal([a, b], released);
    }

    [Fact]
    public void A_late_peer_reports_the_step_before_it_joined_with_the_senders_the_others_used_until_it_applies_one()
    {
        var undo = new StepUndo(1, 1);
        undo.Joined(41, [0, 1, 2]);
        Assert.Equal(41L, undo.AppliedStep);
        Assert.Equal([0, 1, 2], undo.Senders);
        Assert.Empty(undo.Shares);                                     // nothing to redo it with

        undo.Applied(42, [Share(0, [1f]), Share(3, [2f])]);
        Assert.Equal(42L, undo.AppliedStep);
        Assert.Equal([0, 3], undo.Senders);
    }
}
