using System.Diagnostics;
using System.Numerics.Tensors;
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

    public static Outcome Apply(StepGather gather, float[] average, SgdOptimizer optimizer, float[] parameters,
                                EpochTotals totals, double wallSeconds, int epoch, long step)
    {
        long updateStarted = Stopwatch.GetTimestamp();
        // ḡ = Σ nᵢ·gᵢ / Σ nᵢ in participant order; θ ← optimizer(θ, ḡ): the same bits wherever it runs.
        long samples = gather.Average(average);
        double rate = optimizer.CurrentLearningRate;
        if (samples > 0)
            optimizer.Step(parameters, average);
        double lossSum = totals.AddStep(gather.Replies, samples, wallSeconds, Stopwatch.GetElapsedTime(updateStarted).TotalSeconds, rate);

        // Σθ is finite exactly when every θᵢ is (barring overflow of the sum, which is divergence too).
        // Every gradient of the step being non-finite is the same failure seen one step earlier.
        bool allNonFinite = samples == 0 && gather.NonFinite.Count > 0;
        bool finite = !allNonFinite && float.IsFinite(TensorPrimitives.Sum(parameters)) && (samples == 0 || double.IsFinite(lossSum));
        string? divergence = finite ? null
            : TrainingDivergedException.Describe(epoch, step, allNonFinite ? double.NaN : lossSum / Math.Max(1, samples), rate,
                                                 optimizer.Options.LearningRate);
        return new Outcome(samples, lossSum, divergence);
    }
}
