using System.Diagnostics;
using System.Numerics.Tensors;
using DistSgd.Numerics.Data;
using DistSgd.Numerics.Models;
using DistSgd.Numerics.Optim;

namespace DistSgd.Numerics.Training;

/// <summary>
/// The seed's sequential SGD: initialise θ, then for each epoch split the shuffled training set into
/// mini-batches and take one SGD step per batch; stop at the epoch limit or on a loss plateau.
/// </summary>
/// <remarks>Allocates its batch buffers once; a step allocates nothing.</remarks>
public sealed class SequentialTrainer
{
    private readonly Model _model;
    private readonly SgdOptimizer _optimizer;
    private readonly TrainingOptions _options;
    private readonly TimeProvider _clock;

    public SequentialTrainer(Model model, SgdOptimizer optimizer, TrainingOptions options, TimeProvider? clock = null)
    {
        _model = model ?? throw new ArgumentNullException(nameof(model));
        _optimizer = optimizer ?? throw new ArgumentNullException(nameof(optimizer));
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _clock = clock ?? TimeProvider.System;
        if (optimizer.ParameterCount != model.ParameterCount)
            throw new ArgumentException($"the optimizer holds {optimizer.ParameterCount} parameters, the model {model.ParameterCount}");
    }

    /// <summary>
    /// Trains θ in place on <paramref name="train"/>, evaluating on <paramref name="test"/> after every
    /// epoch when given, and reports each epoch to <paramref name="onEpoch"/> and each step to <paramref name="onStep"/>
    /// (a progress display; it should return quickly, as it runs between the steps).
    /// </summary>
    /// <exception cref="TrainingDivergedException">The loss became NaN or infinite.</exception>
    public TrainingResult Train(float[] parameters, Dataset train, Dataset? test = null,
                                Action<EpochMetrics>? onEpoch = null, CancellationToken cancellation = default,
                                Action<StepReport>? onStep = null)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(train);
        CheckCompatible(train);
        if (test is not null)
            CheckCompatible(test);

        int batchSize = Math.Min(_options.BatchSize, train.Count);
        var sampler = new BatchSampler(train.Count, _options.Seed);
        var batchFeatures = new float[batchSize * train.FeatureCount];
        var batchTargets = new float[batchSize];
        var gradient = new float[_model.ParameterCount];
        var stopping = new EarlyStopping(_options.Patience, _options.MinDelta);
        var epochs = new List<EpochMetrics>(_options.Epochs);
        long started = _clock.GetTimestamp();
        var stopReason = StopReason.EpochLimit;

        for (int epoch = 1; epoch <= _options.Epochs; epoch++)
        {
            if (cancellation.IsCancellationRequested)
            {
                stopReason = StopReason.Cancelled;
                break;
            }
            long epochStart = _clock.GetTimestamp();
            var order = sampler.EpochOrder(epoch);
            double lossSum = 0;
            double rate = _optimizer.CurrentLearningRate;
            long stepsPerEpoch = (order.Length + batchSize - 1) / batchSize;
            for (int start = 0; start < order.Length; start += batchSize)
            {
                int rows = Math.Min(batchSize, order.Length - start);
                BatchSampler.GatherBatch(train, order.Slice(start, rows), batchFeatures, batchTargets);
                float loss = _model.LossAndGradient(parameters, batchFeatures.AsSpan(0, rows * train.FeatureCount),
                                                    batchTargets.AsSpan(0, rows), rows, gradient);
                if (!float.IsFinite(loss))
                    throw Diverged(epoch, _optimizer.State.Step, loss);
                rate = _optimizer.CurrentLearningRate;
                _optimizer.Step(parameters, gradient);
                lossSum += (double)loss * rows;
                onStep?.Invoke(new StepReport(epoch, start / batchSize + 1, stepsPerEpoch, lossSum, start + rows,
                                              _clock.GetElapsedTime(epochStart).TotalSeconds));
            }
            double seconds = _clock.GetElapsedTime(epochStart).TotalSeconds;
            // The last step's update can overflow θ while its loss was still finite: that is divergence too, and no
            // epoch's metrics or model are reported from a non-finite θ. Σθ is finite exactly when every θᵢ is.
            if (!float.IsFinite(TensorPrimitives.Sum(parameters)))
                throw Diverged(epoch, _optimizer.State.Step - 1, (float)(lossSum / train.Count));

            var score = test is null ? default : _model.Evaluate(parameters, test.Features, test.Targets, test.Count);
            var metrics = new EpochMetrics(
                epoch, _optimizer.State.Step, lossSum / train.Count,
                test is null ? double.NaN : score.MeanLoss,
                test is not null && test.IsClassification ? score.Accuracy : double.NaN,
                seconds, train.Count / Math.Max(seconds, 1e-9), rate);
            epochs.Add(metrics);
            onEpoch?.Invoke(metrics);

            if (stopping.Observe(metrics.TrainLoss))
            {
                stopReason = StopReason.LossPlateau;
                break;
            }
        }
        return new TrainingResult(epochs, stopReason, _clock.GetElapsedTime(started).TotalSeconds);
    }

    private void CheckCompatible(Dataset data)
    {
        if (data.FeatureCount != _model.Spec.InputCount)
            throw new ArgumentException($"{data.Name} has {data.FeatureCount} features, the model {_model.Spec} expects {_model.Spec.InputCount}");
        if (data.ClassCount != _model.Spec.ClassCount)
            throw new ArgumentException($"{data.Name} has {data.ClassCount} classes, the model {_model.Spec} expects {_model.Spec.ClassCount}");
    }

    private TrainingDivergedException Diverged(int epoch, long step, float loss) =>
        new(TrainingDivergedException.Describe(epoch, step, loss, _optimizer.CurrentLearningRate, _optimizer.Options.LearningRate));
}
