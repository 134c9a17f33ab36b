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
    /// (a progress display; it should return quickly, as it runs between the steps). With <paramref name="resumeFrom"/>
    /// it continues that checkpoint's run where it stopped (θ, optimizer, stop rule, epoch, batch, the epoch's
    /// sums), bit for bit as if it had never stopped; <paramref name="checkpoints"/> is asked at every step boundary.
    /// </summary>
    /// <exception cref="TrainingDivergedException">The loss became NaN or infinite.</exception>
    public TrainingResult Train(float[] parameters, Dataset train, Dataset? test = null,
                                Action<EpochMetrics>? onEpoch = null, CancellationToken cancellation = default,
                                Checkpoint? resumeFrom = null, CheckpointWriter? checkpoints = null,
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

        int firstEpoch = 1, firstStepInEpoch = 0;
        var progress = EpochProgress.Empty;
        if (resumeFrom is not null)
        {
            resumeFrom.RestoreInto(parameters, _optimizer, stopping);
            epochs.AddRange(resumeFrom.Epochs);
            (firstEpoch, firstStepInEpoch, progress) = (resumeFrom.Epoch, resumeFrom.StepInEpoch, resumeFrom.Progress);
        }
        checkpoints?.Schedule.Start(_optimizer.State.Step);

        for (int epoch = firstEpoch; epoch <= _options.Epochs && stopReason == StopReason.EpochLimit; epoch++)
        {
            long epochStart = _clock.GetTimestamp();
            var order = sampler.EpochOrder(epoch);
            // A resumed epoch goes on with the sums of its steps before the checkpoint; the others start from nothing.
            double lossSum = epoch == firstEpoch ? progress.LossSum : 0;
            double earlierSeconds = epoch == firstEpoch ? progress.ComputeSeconds : 0;
            double rate = epoch == firstEpoch && firstStepInEpoch > 0 ? progress.LearningRate : _optimizer.CurrentLearningRate;
            int stepInEpoch = epoch == firstEpoch ? firstStepInEpoch : 0;
            long stepsPerEpoch = (order.Length + batchSize - 1) / batchSize;
            for (int start = stepInEpoch * batchSize; start < order.Length; start += batchSize, stepInEpoch++)
            {
                bool cancelled = cancellation.IsCancellationRequested;
                // Stopped (Ctrl+C) at a step boundary: a last checkpoint keeps every step taken.
                if (checkpoints is not null)
                    AtStepBoundary(checkpoints, parameters, stopping, epochs, epoch, stepInEpoch,
                                   new EpochProgress(stepInEpoch, start, lossSum, rate, earlierSeconds + _clock.GetElapsedTime(epochStart).TotalSeconds),
                                   now: cancelled);
                if (cancelled)
                {
                    stopReason = StopReason.Cancelled;
                    break;
                }
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
                                              earlierSeconds + _clock.GetElapsedTime(epochStart).TotalSeconds));
            }
            if (stopReason == StopReason.Cancelled)
                break;
            double seconds = earlierSeconds + _clock.GetElapsedTime(epochStart).TotalSeconds;
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
                stopReason = StopReason.LossPlateau;
        }
        return new TrainingResult(epochs, stopReason, _clock.GetElapsedTime(started).TotalSeconds);
    }

    /// <summary>A checkpoint before the step, when the schedule says so or <paramref name="now"/> (a method of its own: no closure per step).</summary>
    private void AtStepBoundary(CheckpointWriter checkpoints, float[] parameters, EarlyStopping stopping, List<EpochMetrics> epochs,
                                int epoch, int stepInEpoch, EpochProgress progress, bool now)
    {
        long step = _optimizer.State.Step;
        // Written before the next step changes θ: no copy needed.
        Func<string, Checkpoint> capture = identity =>
            Checkpoint.Capture(identity, step, epoch, stepInEpoch, parameters, _optimizer, stopping, progress, epochs, copy: false);
        if (now)
            checkpoints.WriteNow(step, capture);
        else
            checkpoints.AtStepBoundary(step, stepInEpoch == 0, capture);
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
