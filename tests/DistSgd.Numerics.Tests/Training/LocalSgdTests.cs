using DistSgd.Numerics.Data;
using DistSgd.Numerics.Models;
using DistSgd.Numerics.Optim;
using DistSgd.Numerics.Tensors;
using DistSgd.Numerics.Training;

namespace DistSgd.Numerics.Tests.Training;

/// <summary>Local SGD's rounds within an epoch, its model average, and its hyper-parameter.</summary>
public class LocalSgdTests
{
    [Theory]
    [InlineData(10, 4, new[] { 3, 9 }, new[] { 0, 4 })]          // rounds 0–3, 4–9: the last takes the remainder
    [InlineData(12, 4, new[] { 3, 7, 11 }, new[] { 0, 4, 8 })]   // the epoch is whole rounds
    [InlineData(5, 8, new[] { 4 }, new[] { 0 })]                 // fewer steps than H: one round, the epoch
    [InlineData(15, 8, new[] { 14 }, new[] { 0 })]               // fewer than 2H: one round of 15
    public void Rounds_of_H_steps_end_by_averaging_and_an_epochs_last_step_always_averages(int stepsPerEpoch, int h, int[] averaging, int[] starts)
    {
        Assert.Equal(averaging, Enumerable.Range(0, stepsPerEpoch).Where(s => LocalSgd.IsAveragingStep(s, stepsPerEpoch, h)).ToArray());
        Assert.Equal(starts, Enumerable.Range(0, stepsPerEpoch).Where(s => LocalSgd.IsRoundStart(s, stepsPerEpoch, h)).ToArray());
    }

    [Theory]
    [InlineData(235, 8)]   // full Fashion-MNIST, 4 peers × 64: 29 averaging steps (30 when the last round was cut short: 12.8 %)
    [InlineData(47, 4)]
    [InlineData(100, 16)]
    [InlineData(9, 2)]
    public void An_epoch_of_at_least_H_steps_averages_at_most_one_step_in_H(int stepsPerEpoch, int h)
    {
        int averaging = Enumerable.Range(0, stepsPerEpoch).Count(s => LocalSgd.IsAveragingStep(s, stepsPerEpoch, h));
        Assert.Equal(stepsPerEpoch / h, averaging);
        Assert.True(averaging * h <= stepsPerEpoch);
    }

    [Fact]
    public void With_H_1_every_step_averages_and_starts_a_round()
    {
        Assert.All(Enumerable.Range(0, 7), s => Assert.True(LocalSgd.IsAveragingStep(s, 7, 1) && LocalSgd.IsRoundStart(s, 7, 1)));
    }

    [Fact]
    public void The_model_average_is_the_round_start_plus_the_sample_weighted_mean_change()
    {
        float[] start = [1f, 2f];
        var changes = new ReadOnlyMemory<float>[] { new float[] { 0.5f, -1f }, new float[] { 1.5f, 1f }, Array.Empty<float>() };
        var theta = new float[2];
        long samples = LocalSgd.AverageModels(start, changes, [1, 3, 0], theta);   // a peer without samples is skipped
        Assert.Equal(4, samples);
        Assert.Equal([1f + (0.5f + 3 * 1.5f) / 4, 2f + (-1f + 3f) / 4], theta);
    }

    [Fact]
    public void The_round_start_plus_an_all_reduces_average_is_the_all_gathers_model_bit_for_bit()
    {
        // Decision 0136: pairwise sums each slice with the whole-vector operations, so θ₀ + Δ̄ is the same bits either way.
        float[] start = [0.1f, -2.3f, 7.7f, 1e-3f, 5f];
        var changes = new ReadOnlyMemory<float>[] { new float[] { 0.3f, 1.1f, -0.7f, 2e-4f, 0.9f }, Array.Empty<float>(), new float[] { -0.2f, 0.6f, 0.05f, 3e-4f, -1.3f } };
        int[] weights = [7, 0, 3];
        var gathered = new float[5];
        long samples = LocalSgd.AverageModels(start, changes, weights, gathered);

        var average = new float[5];
        for (int k = 0; k < 2; k++)
        {
            var (from, length) = AllReduce.Slice(5, 2, k);
            var pieces = changes.Select(c => c.IsEmpty ? c : c.Slice(from, length)).ToArray();
            AllReduce.AverageSlice(pieces, weights, samples, average.AsSpan(from, length));
        }
        var reduced = new float[5];
        LocalSgd.MoveToAverage(start, average, samples, reduced);

        Assert.Equal(gathered, reduced);
        LocalSgd.MoveToAverage(start, average, 0, reduced);   // no samples at all: the round start
        Assert.Equal(start, reduced);
    }

    [Fact]
    public void Nothing_to_average_leaves_the_round_start()
    {
        var theta = new float[] { 9f, 9f };
        Assert.Equal(0, LocalSgd.AverageModels([1f, 2f], [Array.Empty<float>()], [0], theta));
        Assert.Equal([1f, 2f], theta);
    }

    [Theory]
    [InlineData(1, "")]
    [InlineData(8, "sync-every=8")]
    public void The_hyperparameter_is_written_only_when_H_is_not_1_and_read_back(int h, string key)
    {
        Assert.Equal(key, string.Join(';', LocalSgd.Keys(h)));
        Assert.Equal(h, LocalSgd.FromKeys("lr=0.1;" + key));
    }

    [Theory]
    [InlineData(1, 4)]
    [InlineData(2, 4)]
    [InlineData(4, 7)]
    [InlineData(8, 15)]
    [InlineData(16, 31)]
    public void A_peer_holds_shares_up_to_a_whole_round_ahead(int h, int window) =>
        Assert.Equal(window, LocalSgd.BufferWindow(4, h));   // found with H = 8: a share 5 steps ahead was dropped, the run stalled

    [Fact]
    public void A_bad_value_is_refused_naming_the_key() =>
        Assert.Contains("sync-every", Assert.Throws<FormatException>(() => LocalSgd.FromKeys("sync-every=0")).Message);

    [Theory]
    [InlineData(0, 10, 4, 4)]
    [InlineData(4, 10, 4, 6)]   // the epoch's last round takes the remainder
    [InlineData(0, 12, 4, 4)]
    [InlineData(8, 12, 4, 4)]
    [InlineData(3, 10, 1, 1)]
    [InlineData(0, 3, 8, 3)]
    [InlineData(224, 235, 8, 11)]
    public void A_round_takes_its_steps_up_to_its_averaging_step(int stepInEpoch, int stepsPerEpoch, int h, int steps)
    {
        Assert.Equal(steps, LocalSgd.RoundSteps(stepInEpoch, stepsPerEpoch, h));
        Assert.True(LocalSgd.IsAveragingStep(stepInEpoch + steps - 1, stepsPerEpoch, h));
    }

    [Fact]
    public void A_workers_optimizer_is_the_one_the_plan_describes()
    {
        var options = LocalSgd.OptimizerFromKeys("workers=4;lr=0.05;momentum=0.9;weight-decay=0.0001;schedule=cosine;patience=3", 141, 47);
        Assert.Equal((0.05, 0.9, 0.0001), (options.LearningRate, options.Momentum, options.WeightDecay));
        Assert.Equal(new LearningRateSchedule.Cosine(141), options.Schedule);
        Assert.Contains("momentum", Assert.Throws<FormatException>(() => LocalSgd.OptimizerFromKeys("lr=0.05;weight-decay=0", 10, 5)).Message);
    }

    [Fact]
    public void A_local_round_is_sequential_sgd_on_the_shard_from_the_round_start_and_returns_the_change()
    {
        var train = Synthetic.GaussianBlobs(60, 4, 3, spread: 3, seed: 2);
        var spec = new ModelSpec(ModelKind.Mlp, 4, 3, [5], Activation.Tanh);
        var model = new Model(spec, NaiveKernels.Instance);
        var theta0 = new float[spec.ParameterCount];
        model.Initialize(theta0, 1);
        var options = new SgdOptions(0.1, momentum: 0.9, schedule: new LearningRateSchedule.Cosine(12));
        var batches = new ShardBatches(train, 1, 2, 8, 5);   // 30 samples: batches of 8, 8, 8, 6
        var (features, targets) = (new float[8 * 4], new float[8]);

        var round = new LocalRound(options, spec.ParameterCount);
        var change = new float[spec.ParameterCount];
        var (samples, lossSum) = round.Run(theta0, 6, 6, 3, model, batches, 2, 1, features, targets, change);

        // The same steps by hand: the optimizer at the run's step 6, batches 1 to 3 of epoch 2.
        var optimizer = new SgdOptimizer(options, spec.ParameterCount);
        optimizer.Restore(new SgdState(6, new float[spec.ParameterCount]));
        var theta = (float[])theta0.Clone();
        var gradient = new float[spec.ParameterCount];
        double expectedLoss = 0;
        for (int j = 1; j <= 3; j++)
        {
            int rows = batches.Gather(2, j, features, targets);
            expectedLoss += (double)model.LossAndGradient(theta, features.AsSpan(0, rows * 4), targets.AsSpan(0, rows), rows, gradient) * rows;
            optimizer.Step(theta, gradient);
        }
        Assert.Equal((22, expectedLoss), (samples, lossSum));
        Assert.Equal(theta.Select((t, i) => t - theta0[i]), change);
        Assert.Equal(9, round.Optimizer.State.Step);
        Assert.Equal(optimizer.State.Velocity, round.Optimizer.State.Velocity);   // kept for the next round: local momentum
    }
}
