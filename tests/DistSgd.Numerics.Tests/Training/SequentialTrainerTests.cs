using DistSgd.Numerics.Data;
using DistSgd.Numerics.Models;
using DistSgd.Numerics.Optim;
using DistSgd.Numerics.Tensors;
using DistSgd.Numerics.Training;

namespace DistSgd.Numerics.Tests.Training;

public class SequentialTrainerTests
{
    private static Dataset NoisyLine(int count, float[] weights, float bias, int seed)
    {
        var random = new Random(seed);
        int d = weights.Length;
        var x = new float[count * d];
        var y = new float[count];
        for (int i = 0; i < count; i++)
        {
            double target = bias;
            for (int j = 0; j < d; j++)
            {
                x[i * d + j] = (float)(random.NextDouble() * 2 - 1);
                target += weights[j] * x[i * d + j];
            }
            y[i] = (float)(target + (random.NextDouble() - 0.5) * 0.01);
        }
        return new Dataset("line", x, d, y, 0);
    }

    [Fact]
    public void Linear_regression_recovers_the_generating_weights()
    {
        float[] weights = [2f, -3f, 0.5f];
        var data = NoisyLine(2000, weights, bias: 1.5f, seed: 4);
        var model = new Model(new ModelSpec(ModelKind.Linear, 3, 0), NaiveKernels.Instance);
        var theta = new float[model.ParameterCount];
        model.Initialize(theta, 1);
        var trainer = new SequentialTrainer(model, new SgdOptimizer(new SgdOptions(0.1, momentum: 0.9), theta.Length),
                                            new TrainingOptions(epochs: 20, batchSize: 32, seed: 2));
        var result = trainer.Train(theta, data);
        for (int j = 0; j < 3; j++)
            Assert.Equal(weights[j], theta[j], 1e-2);
        Assert.Equal(1.5f, theta[3], 1e-2);
        Assert.True(result.Final!.TrainLoss < 1e-3, $"final loss {result.Final.TrainLoss}");
    }

    [Fact]
    public void Training_stops_on_a_loss_plateau_before_the_epoch_limit()
    {
        var data = NoisyLine(500, [1f], 0f, 1);
        var model = new Model(new ModelSpec(ModelKind.Linear, 1, 0), NaiveKernels.Instance);
        var theta = new float[model.ParameterCount];
        var trainer = new SequentialTrainer(model, new SgdOptimizer(new SgdOptions(0.2), theta.Length),
                                            new TrainingOptions(epochs: 200, batchSize: 50, seed: 2, patience: 3, minDelta: 1e-4));
        var result = trainer.Train(theta, data);
        Assert.Equal(StopReason.LossPlateau, result.StopReason);
        Assert.InRange(result.Epochs.Count, 4, 199);
    }

    [Fact]
    public void The_same_seed_gives_bit_identical_parameters()
    {
        var data = NoisyLine(300, [1f, 2f], 0.5f, 7);
        float[] Run()
        {
            var model = new Model(new ModelSpec(ModelKind.Mlp, 2, 0 + 3, [8]), NaiveKernels.Instance);
            var labelled = new Dataset("blobs", data.Features, 2, data.Targets.Select(t => (float)(Math.Abs((int)t) % 3)).ToArray(), 3);
            var theta = new float[model.ParameterCount];
            model.Initialize(theta, 5);
            new SequentialTrainer(model, new SgdOptimizer(new SgdOptions(0.05, momentum: 0.9), theta.Length),
                                  new TrainingOptions(3, 16, seed: 5)).Train(theta, labelled);
            return theta;
        }
        Assert.Equal(Run(), Run());
    }

    [Fact]
    public void A_diverging_run_stops_with_advice_to_lower_the_learning_rate()
    {
        var data = NoisyLine(200, [100f], 0f, 3);
        var model = new Model(new ModelSpec(ModelKind.Linear, 1, 0), NaiveKernels.Instance);
        var theta = new float[model.ParameterCount];
        var trainer = new SequentialTrainer(model, new SgdOptimizer(new SgdOptions(50), theta.Length),
                                            new TrainingOptions(50, 10, seed: 1));
        var error = Assert.Throws<TrainingDivergedException>(() => trainer.Train(theta, data));
        Assert.Contains("--lr", error.Message);
    }

    [Fact]
    public void Early_stopping_counts_epochs_without_a_min_delta_improvement()
    {
        var stopping = new EarlyStopping(patience: 2, minDelta: 0.1);
        Assert.False(stopping.Observe(1.0));
        Assert.False(stopping.Observe(0.95));  // not better by 0.1
        Assert.False(stopping.Observe(0.8));   // better by 0.2: reset
        Assert.False(stopping.Observe(0.79));
        Assert.True(stopping.Observe(0.78));
    }
}
