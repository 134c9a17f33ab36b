namespace DistSgd.Numerics.Training;

/// <summary>
/// The seed's stop rule, step 3: stop when the monitored loss has not improved by at least
/// <see cref="MinDelta"/> for <see cref="Patience"/> epochs in a row. Patience 0 turns it off.
/// </summary>
public sealed class EarlyStopping
{
    public EarlyStopping(int patience, double minDelta)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(patience);
        if (!(minDelta >= 0) || !double.IsFinite(minDelta))
            throw new ArgumentOutOfRangeException(nameof(minDelta), minDelta, "min-delta must be a finite number ≥ 0");
        Patience = patience;
        MinDelta = minDelta;
    }

    public int Patience { get; }

    public double MinDelta { get; }

    /// <summary>The lowest loss seen so far.</summary>
    public double Best { get; private set; } = double.PositiveInfinity;

    /// <summary>Epochs since the loss last improved by at least MinDelta.</summary>
    public int EpochsWithoutImprovement { get; private set; }

    /// <summary>What <see cref="Observe"/> would answer for <paramref name="loss"/>, without recording it.</summary>
    public bool WouldStop(double loss) =>
        Patience > 0 && (loss < Best - MinDelta ? 0 : EpochsWithoutImprovement + 1) >= Patience;

    /// <summary>Records one epoch's loss; true when training should stop.</summary>
    public bool Observe(double loss)
    {
        if (loss < Best - MinDelta)
        {
            Best = loss;
            EpochsWithoutImprovement = 0;
        }
        else
        {
            Best = Math.Min(Best, loss);
            EpochsWithoutImprovement++;
        }
        return Patience > 0 && EpochsWithoutImprovement >= Patience;
    }
}
