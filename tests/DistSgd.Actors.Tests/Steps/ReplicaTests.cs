using DistSgd.Actors.Centralized;
using DistSgd.Actors.Protocol;
using DistSgd.Actors.Steps;
using DistSgd.Numerics.Models;
using DistSgd.Numerics.Optim;
using DistSgd.Numerics.Tensors;
using DistSgd.Numerics.Training;

namespace DistSgd.Actors.Tests.Steps;

public class ReplicaTests
{
    internal static readonly ModelSpec Spec = new(ModelKind.Softmax, 2, 2, []);
    private static readonly RunPlan Plan = new("r", Spec, 4, 1, 2, 8, 2);

    /// <summary>Kernels that record their disposal, computing with the managed default.</summary>
    private sealed class DisposableKernels : IMatrixKernels, IDisposable
    {
        public bool Disposed { get; private set; }

        public string Name => "test";

        public void Gemm(bool transposeA, bool transposeB, int m, int n, int k, float alpha, ReadOnlySpan<float> a, int lda,
                         ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc) =>
            MatrixKernels.Default.Gemm(transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);

        public void Dispose() => Disposed = true;
    }

    /// <summary>Hyper-parameter keys as a real run's plan carries them (a step must not parse them).</summary>
    internal const string SomeHyperparameters = "lr=0.05;momentum=0.9;schedule=cosine;batch=64";

    /// <summary>A replica of a 2-step-per-epoch run at θ = 0 with η = 0.5.</summary>
    /// <param name="hyperparameters">The plan's hyper-parameter keys (a real run's plan carries some: lr, momentum, …).</param>
    internal static Replica Make(IMatrixKernels? kernels = null, int epochs = 2, string hyperparameters = "") =>
        new(Plan with { Epochs = epochs, Hyperparameters = hyperparameters }, new float[Spec.ParameterCount], new SgdOptions(0.5), new TrainingOptions(epochs, 4, 1),
            kernels ?? new DisposableKernels(), null);

    [Fact]
    public void Disposing_the_replica_disposes_its_evaluation_kernels()
    {
        var kernels = new DisposableKernels();
        var replica = Make(kernels);
        Assert.False(kernels.Disposed);
        replica.Dispose();
        Assert.True(kernels.Disposed);
    }

    [Fact]
    public void A_gathered_step_updates_theta_and_advances_through_the_epoch()
    {
        using var replica = Make();
        var gather = new StepGather(Plan.RunId, Spec.ParameterCount);
        gather.Begin(0, [0, 1]);
        var ones = Enumerable.Repeat(1f, Spec.ParameterCount).ToArray();
        gather.Offer(new GradientReply("r", 0, 0, 2, 2.0, 0, ones));
        gather.Offer(new GradientReply("r", 0, 1, 2, 2.0, 0, ones));
        gather.Close();

        var outcome = replica.Apply(gather, 0.01);
        replica.Advance();

        Assert.Null(outcome.Divergence);
        Assert.Equal(4, outcome.Samples);
        Assert.All(replica.Parameters, p => Assert.Equal(-0.5f, p));   // θ ← 0 − 0.5·1
        Assert.Equal((1L, 1, 1), (replica.Step, replica.Epoch, replica.StepInEpoch));
        Assert.False(replica.EpochIsDone);
        replica.Advance();
        Assert.True(replica.EpochIsDone);
    }

    [Fact]
    public void Closing_an_epoch_records_its_metrics_and_starts_new_totals()
    {
        using var replica = Make();
        var gather = new StepGather(Plan.RunId, Spec.ParameterCount);
        gather.Begin(0, [0]);
        gather.Offer(new GradientReply("r", 0, 0, 4, 8.0, 0, new float[Spec.ParameterCount]));
        gather.Close();
        replica.Apply(gather, 0.01);
        replica.Advance();

        var (metrics, plateau) = replica.CloseEpoch(null, replica.Step, 0, null);

        Assert.False(plateau);
        Assert.Equal(2.0, metrics.TrainLoss);
        Assert.Equal([metrics], replica.Epochs);
        Assert.Equal(0, replica.Totals.Samples);
        Assert.False(replica.AtEpochLimit);
        replica.NextEpoch();
        Assert.Equal((2, 0), (replica.Epoch, replica.StepInEpoch));
        Assert.True(replica.AtEpochLimit);
    }

    [Fact]
    public void The_schedule_is_replanned_only_when_the_steps_that_remain_are_not_the_ones_it_was_sized_for()
    {
        // 4 epochs × 2 steps, cosine over 8 steps.
        using var replica = new Replica(Plan with { Epochs = 4 }, new float[Spec.ParameterCount],
                                        new SgdOptions(0.5, schedule: new LearningRateSchedule.Cosine(8)), new TrainingOptions(4, 4, 1),
                                        MatrixKernels.Default, null);
        Assert.Equal(8, replica.RemainingSteps);
        Assert.Null(replica.ReplanSchedule());                 // a fault-free epoch start: nothing to change
        replica.MoveTo(4, 3, 0);
        replica.Optimizer.Restore(new SgdState(4, []));
        Assert.Equal(4, replica.RemainingSteps);
        Assert.Null(replica.ReplanSchedule());

        replica.StepsPerEpoch = 3;                             // a lost peer's shard shared out: epochs 3 and 4 take 3 steps
        Assert.Equal(6, replica.RemainingSteps);
        string? note = replica.ReplanSchedule();
        Assert.Equal("epoch 3: the learning-rate schedule is re-planned over the 6 steps that remain (3 per epoch), from lr 0.25 at step 4 to its final rate at step 10", note);
        Assert.Equal([new ScheduleReplan(4, 6)], replica.Optimizer.Schedule.Replans);
        Assert.Null(replica.ReplanSchedule());                 // the next epoch start finds it sized already
    }
}
