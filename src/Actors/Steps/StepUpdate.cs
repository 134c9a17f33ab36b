using System.Diagnostics;
using DistSgd.Numerics.Optim;
using DistSgd.Numerics.Training;

namespace DistSgd.Actors.Steps;

/// <summary>
/// The end of a synchronous step, the same for the master and for every peer: average the gathered
/// gradients in participant order, update θ, add the step to the epoch's totals, and check that the
/// loss and θ are still finite.
/// </summary>
public static class StepUpdate
{
    /// <param name="Samples">Σ nᵢ behind the averaged gradient (0: nothing applied).</param>
    /// <param name="Divergence">Why the run must stop (a non-finite loss or θ), or null.</param>
    public readonly record struct Outcome(long Samples, double LossSum, string? Divergence);

    /// <param name="parametersBefore">When not empty, receives θ before the update (a peer's undo copy), in the same pass.</param>
    /// <param name="velocityBefore">When not empty, receives the optimizer's velocity before the update.</param>
    public static Outcome Apply(StepGather gather, SgdOptimizer optimizer, float[] parameters, EpochTotals totals, double wallSeconds,
                                int epoch, long step, Span<float> parametersBefore = default, Span<float> velocityBefore = default)
    {
        long updateStarted = Stopwatch.GetTimestamp();
        // ḡ = Σ nᵢ·gᵢ / Σ nᵢ in participant order; θ ← optimizer(θ, ḡ): the same bits wherever it runs, in one pass.
        double rate = optimizer.CurrentLearningRate;
        var (samples, parameterSum) = gather.Reduction is { } reduction
            // The all-reduce made ḡ with the same operations in the same order (pairwise) or in ring order.
            ? optimizer.StepAveraged(parameters, reduction.Average, reduction.Samples, parametersBefore, velocityBefore)
            : AverageAndStep(gather, optimizer, parameters, parametersBefore, velocityBefore);
        double lossSum = totals.AddStep(gather.Replies, samples, wallSeconds, Stopwatch.GetElapsedTime(updateStarted).TotalSeconds, rate);

        // Σθ is finite exactly when every θᵢ is (barring overflow of the sum, which is divergence too).
        // Every gradient of the step being non-finite is the same failure seen one step earlier.
        bool allNonFinite = samples == 0 && gather.NonFinite.Count > 0;
        bool finite = !allNonFinite && float.IsFinite(parameterSum) && (samples == 0 || double.IsFinite(lossSum));
        string? divergence = finite ? null
            : TrainingDivergedException.Describe(epoch, step, allNonFinite ? double.NaN : lossSum / Math.Max(1, samples), rate,
                                                 optimizer.Options.LearningRate);
        return new Outcome(samples, lossSum, divergence);
    }

    private static AveragedStep AverageAndStep(StepGather gather, SgdOptimizer optimizer, float[] parameters, Span<float> parametersBefore,
                                               Span<float> velocityBefore)
    {
        var (gradients, weights) = gather.Shares();
        // Sparse shares (top-k over the data plane) are averaged by their entries alone, with the same bits (decision 0141).
        return gather.Entries() is { } entries
            ? optimizer.AverageEntriesAndStep(parameters, entries, weights, parametersBefore, velocityBefore)
            : optimizer.AverageAndStep(parameters, gradients, weights, parametersBefore, velocityBefore);
    }

    /// <summary>
    /// The last step of a local-SGD round (<see cref="LocalSgd.AverageModels"/>): θ ← θ₀ + Σ nᵢ·Δᵢ / Σ nᵢ over the gathered
    /// changes in participant order, or over the all-reduce's average of them (<see cref="StepGather.Reduction"/>, decision
    /// 0136), the step added to the totals; the optimizer is not stepped (each node did).
    /// </summary>
    public static Outcome AverageModels(StepGather gather, float[] roundStart, SgdOptimizer optimizer, float[] parameters, EpochTotals totals,
                                        double wallSeconds, int epoch, long step, Span<float> parametersBefore = default,
                                        Span<float> velocityBefore = default)
    {
        long updateStarted = Stopwatch.GetTimestamp();
        if (!parametersBefore.IsEmpty)
            parameters.CopyTo(parametersBefore);
        if (!velocityBefore.IsEmpty)
            optimizer.State.Velocity.CopyTo(velocityBefore);
        long samples = gather.Reduction is { } reduction ? MoveToReduced(reduction, roundStart, parameters) : AverageShares(gather, roundStart, parameters);
        double lossSum = totals.AddStep(gather.Replies, samples, wallSeconds, Stopwatch.GetElapsedTime(updateStarted).TotalSeconds,
                                        optimizer.CurrentLearningRate);
        bool allNonFinite = samples == 0 && gather.NonFinite.Count > 0;
        bool finite = !allNonFinite && float.IsFinite(System.Numerics.Tensors.TensorPrimitives.Sum(parameters)) && (samples == 0 || double.IsFinite(lossSum));
        string? divergence = finite ? null
            : TrainingDivergedException.Describe(epoch, step, allNonFinite ? double.NaN : lossSum / Math.Max(1, samples), optimizer.CurrentLearningRate,
                                                 optimizer.Options.LearningRate);
        return new Outcome(samples, lossSum, divergence);
    }

    private static long MoveToReduced(Collectives.IAllReduce reduction, float[] roundStart, float[] parameters)
    {
        LocalSgd.MoveToAverage(roundStart, reduction.Average, reduction.Samples, parameters);
        return reduction.Samples;
    }

    private static long AverageShares(StepGather gather, float[] roundStart, float[] parameters)
    {
        var (changes, weights) = gather.Shares();
        return LocalSgd.AverageModels(roundStart, changes, weights, parameters);
    }
}
