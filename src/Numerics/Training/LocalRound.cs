using System.Numerics.Tensors;
using DistSgd.Numerics.Models;
using DistSgd.Numerics.Optim;

namespace DistSgd.Numerics.Training;

/// <summary>
/// A centralized worker's local-SGD round (<see cref="LocalSgd"/>, decision 0091): from the master's θ₀ it takes the
/// round's steps on its own shard with its own optimizer, θ ← optimizer(θ, gᵢ), and gives back the change Δ = θ − θ₀,
/// which the master averages weighted by the round's samples: θ ← θ₀ + Σ nᵢ·Δᵢ / Σ nᵢ.
/// </summary>
/// <remarks>
/// The optimizer's step is the master's at the round's start, so η follows the run's schedule step by step; before a
/// round the schedule is re-planned over the steps the run has left (<see cref="SgdOptimizer.Replan"/>, a no-op unless the
/// shards changed), as the master re-plans its own. The velocity is the worker's own and carries over from round to round
/// (local momentum, as the decentralized mode keeps it). A step whose batch is empty (the shard ran out) still advances
/// the optimizer's step. θ, the gradient and the velocity are allocated once.
/// </remarks>
public sealed class LocalRound
{
    private readonly SgdOptimizer _optimizer;
    private readonly float[] _theta;
    private readonly float[] _gradient;

    public LocalRound(SgdOptions options, int parameterCount)
    {
        _optimizer = new SgdOptimizer(options, parameterCount);
        _theta = new float[parameterCount];
        _gradient = new float[parameterCount];
    }

    /// <summary>The worker's optimizer (its velocity is this worker's alone).</summary>
    public SgdOptimizer Optimizer => _optimizer;

    /// <summary>
    /// Takes <paramref name="steps"/> steps from θ₀ = <paramref name="roundStart"/>, the first of them the run's step
    /// <paramref name="step"/> and step <paramref name="stepInEpoch"/> of <paramref name="epoch"/> on
    /// <paramref name="batches"/>, with <paramref name="remainingSteps"/> left in the run from it; writes Δ = θ − θ₀ into
    /// <paramref name="change"/>. Returns the samples and Σ of the per-sample loss over the round.
    /// </summary>
    public (int Samples, double LossSum) Run(ReadOnlySpan<float> roundStart, long step, long remainingSteps, int steps, Model model,
                                             ShardBatches batches, int epoch, int stepInEpoch, float[] features, float[] targets,
                                             Span<float> change)
    {
        roundStart.CopyTo(_theta);
        _optimizer.State.Step = step;
        _optimizer.Replan(remainingSteps);
        int samples = 0;
        double lossSum = 0;
        int inputs = model.Spec.InputCount;
        for (int j = 0; j < steps; j++)
        {
            int rows = batches.Gather(epoch, stepInEpoch + j, features, targets);
            if (rows == 0)
            {
                _optimizer.State.Step++;   // η's schedule advances on every node, as the master's steps do
                continue;
            }
            float loss = model.LossAndGradient(_theta, features.AsSpan(0, rows * inputs), targets.AsSpan(0, rows), rows, _gradient);
            _optimizer.Step(_theta, _gradient);
            samples += rows;
            lossSum += (double)loss * rows;
        }
        TensorPrimitives.Subtract(_theta, roundStart, change);
        return (samples, lossSum);
    }
}
