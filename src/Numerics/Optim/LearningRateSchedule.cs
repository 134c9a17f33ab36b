namespace DistSgd.Numerics.Optim;

/// <summary>How the learning rate η changes over the optimizer's steps.</summary>
public abstract record LearningRateSchedule
{
    /// <summary>The learning rate for step <paramref name="step"/> (0-based), given the base rate η₀.</summary>
    public abstract double RateAt(long step, double baseRate);

    /// <summary>Checks the schedule's own options; throws ArgumentException naming the bad one.</summary>
    public virtual void Validate()
    {
    }

    /// <summary>η = η₀ for every step.</summary>
    public sealed record Constant : LearningRateSchedule
    {
        public static readonly Constant Instance = new();

        public override double RateAt(long step, double baseRate) => baseRate;

        public override string ToString() => "constant";
    }

    /// <summary>η = η₀·γ^⌊step / stepSize⌋: multiply by γ every <see cref="StepSize"/> steps.</summary>
    public sealed record StepDecay(long StepSize, double Gamma) : LearningRateSchedule
    {
        public override double RateAt(long step, double baseRate) => baseRate * Math.Pow(Gamma, step / StepSize);

        public override void Validate()
        {
            if (StepSize <= 0)
                throw new ArgumentOutOfRangeException(nameof(StepSize), StepSize, "the step size of a step schedule must be at least 1 step");
            if (!(Gamma > 0 && Gamma <= 1))
                throw new ArgumentOutOfRangeException(nameof(Gamma), Gamma, "the decay factor γ of a step schedule must be in (0, 1]");
        }

        public override string ToString() => $"step(every {StepSize} steps ×{Gamma})";
    }

    /// <summary>
    /// Cosine annealing: η = η_min + (η₀ − η_min)·(1 + cos(π·t/T))/2 for t &lt; T, then η_min,
    /// with T = <see cref="TotalSteps"/> and η_min = η₀·<see cref="FinalFraction"/>.
    /// </summary>
    public sealed record Cosine(long TotalSteps, double FinalFraction = 0) : LearningRateSchedule
    {
        public override double RateAt(long step, double baseRate)
        {
            double minimum = baseRate * FinalFraction;
            if (step >= TotalSteps)
                return minimum;
            return minimum + (baseRate - minimum) * 0.5 * (1 + Math.Cos(Math.PI * step / TotalSteps));
        }

        public override void Validate()
        {
            if (TotalSteps <= 0)
                throw new ArgumentOutOfRangeException(nameof(TotalSteps), TotalSteps, "a cosine schedule needs at least 1 step");
            if (!(FinalFraction >= 0 && FinalFraction <= 1))
                throw new ArgumentOutOfRangeException(nameof(FinalFraction), FinalFraction, "the final fraction of a cosine schedule must be in [0, 1]");
        }

        public override string ToString() => $"cosine(over {TotalSteps} steps to ×{FinalFraction})";
    }
}
