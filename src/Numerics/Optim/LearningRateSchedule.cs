namespace DistSgd.Numerics.Optim;

/// <summary>How the learning rate η changes over the optimizer's steps.</summary>
/// <remarks>
/// A schedule with a planned length (<see cref="PlannedSteps"/>) can be re-planned when the run's length in steps
/// changes under it (a membership change re-shards the training set, so an epoch has more or fewer steps):
/// <see cref="Replan"/> stretches or squeezes the rest of the schedule over the steps that remain.
/// </remarks>
public abstract record LearningRateSchedule
{
    /// <summary>
    /// The schedule a run names (--schedule): "cosine" over <paramref name="totalSteps"/>, "step" (×0.1 at a third and two
    /// thirds of the run, at least one epoch apart, so that a re-plan keeps the decays at those fractions), anything else
    /// constant. One place for the trainer that starts a run and a worker that steps on its own (local SGD).
    /// </summary>
    public static LearningRateSchedule Named(string name, long totalSteps, long stepsPerEpoch) => name switch
    {
        "cosine" => new Cosine(totalSteps),
        "step" => new StepDecay(Math.Max(stepsPerEpoch, totalSteps / 3), 0.1, totalSteps),
        _ => Constant.Instance,
    };

    /// <summary>The learning rate for step <paramref name="step"/> (0-based), given the base rate η₀.</summary>
    public abstract double RateAt(long step, double baseRate);

    /// <summary>Checks the schedule's own options; throws ArgumentException naming the bad one.</summary>
    public virtual void Validate()
    {
    }

    /// <summary>
    /// The step at which the schedule ends (η reaches its final value there), or null for a schedule whose rates do
    /// not depend on the run's length (nothing to re-plan).
    /// </summary>
    public virtual long? PlannedSteps => null;

    /// <summary>The original schedule under any re-plans (this one for a schedule never re-planned).</summary>
    public virtual LearningRateSchedule Original => this;

    /// <summary>The re-plans on top of <see cref="Original"/>, oldest first (empty for a schedule never re-planned).</summary>
    public virtual IReadOnlyList<ScheduleReplan> Replans => [];

    /// <summary>
    /// The rate at a point <paramref name="position"/> of the original schedule's own steps, which a re-plan makes
    /// fractional; <see cref="RateAt"/> of a whole step is this at that step.
    /// </summary>
    protected internal virtual double RateAtPosition(double position, double baseRate) => RateAt((long)Math.Floor(position), baseRate);

    /// <summary>Where step <paramref name="step"/> lies on the original schedule's own steps (the step itself until a re-plan).</summary>
    protected internal virtual double PositionOf(long step) => step;

    /// <summary>
    /// The schedule re-planned at step <paramref name="fromStep"/> so that what is left of it takes
    /// <paramref name="remainingSteps"/> steps: rates before <paramref name="fromStep"/> are unchanged, the rate at
    /// <paramref name="fromStep"/> is the one this schedule had there (no jump), and the schedule reaches its end
    /// (<see cref="PlannedSteps"/>) at step <paramref name="fromStep"/> + <paramref name="remainingSteps"/>, the
    /// step after the run's last. Pure: the same arguments give the same schedule, to the bit.
    /// </summary>
    /// <returns>
    /// This schedule, unchanged, when it already ends there, when it has no planned length (<see cref="Constant"/>),
    /// or when no step remains; otherwise a <see cref="Replanned"/>.
    /// </returns>
    public LearningRateSchedule Replan(long fromStep, long remainingSteps)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(fromStep);
        if (PlannedSteps is not { } end || remainingSteps <= 0 || fromStep + remainingSteps == end)
            return this;
        return new Replanned(this, fromStep, remainingSteps);
    }

    /// <summary>
    /// <see cref="Original"/> with <paramref name="replans"/> applied in order: the schedule a run had after them (a
    /// checkpoint stores the re-plans, not the schedule).
    /// </summary>
    public LearningRateSchedule WithReplans(IEnumerable<ScheduleReplan> replans)
    {
        ArgumentNullException.ThrowIfNull(replans);
        var schedule = Original;
        foreach (var replan in replans)
            schedule = schedule.Replan(replan.FromStep, replan.RemainingSteps);
        return schedule;
    }

    /// <summary>η = η₀ for every step.</summary>
    public sealed record Constant : LearningRateSchedule
    {
        public static readonly Constant Instance = new();

        public override double RateAt(long step, double baseRate) => baseRate;

        public override string ToString() => "constant";
    }

    /// <summary>
    /// η = η₀·γ^⌊step / stepSize⌋: multiply by γ every <see cref="StepSize"/> steps. <see cref="TotalSteps"/>, when
    /// given, is the run's planned length, so that a re-plan keeps the decays at the same fractions of the run.
    /// </summary>
    public sealed record StepDecay(long StepSize, double Gamma, long? TotalSteps = null) : LearningRateSchedule
    {
        public override double RateAt(long step, double baseRate) => baseRate * Math.Pow(Gamma, step / StepSize);

        public override long? PlannedSteps => TotalSteps;

        protected internal override double RateAtPosition(double position, double baseRate) =>
            baseRate * Math.Pow(Gamma, Math.Floor(position / StepSize));

        public override void Validate()
        {
            if (StepSize <= 0)
                throw new ArgumentOutOfRangeException(nameof(StepSize), StepSize, "the step size of a step schedule must be at least 1 step");
            if (!(Gamma > 0 && Gamma <= 1))
                throw new ArgumentOutOfRangeException(nameof(Gamma), Gamma, "the decay factor γ of a step schedule must be in (0, 1]");
            if (TotalSteps is <= 0)
                throw new ArgumentOutOfRangeException(nameof(TotalSteps), TotalSteps, "the planned length of a step schedule must be at least 1 step");
        }

        public override string ToString() => $"step(every {StepSize} steps ×{Gamma})";
    }

    /// <summary>
    /// Cosine annealing: η = η_min + (η₀ − η_min)·(1 + cos(π·t/T))/2 for t &lt; T, then η_min,
    /// with T = <see cref="TotalSteps"/> and η_min = η₀·<see cref="FinalFraction"/>.
    /// </summary>
    public sealed record Cosine(long TotalSteps, double FinalFraction = 0) : LearningRateSchedule
    {
        public override double RateAt(long step, double baseRate) => RateAtPosition(step, baseRate);

        public override long? PlannedSteps => TotalSteps;

        protected internal override double RateAtPosition(double position, double baseRate)
        {
            double minimum = baseRate * FinalFraction;
            if (position >= TotalSteps)
                return minimum;
            return minimum + (baseRate - minimum) * 0.5 * (1 + Math.Cos(Math.PI * position / TotalSteps));
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

    /// <summary>
    /// <see cref="Before"/> re-planned at <see cref="FromStep"/>: before it, <see cref="Before"/>'s rates; from it on,
    /// the rest of the original schedule's own steps, from where <see cref="Before"/> stood at <see cref="FromStep"/>
    /// (position p₀) to the original's end E, spread evenly over <see cref="RemainingSteps"/> steps:
    /// position(t) = p₀ + (E − p₀)·(t − FromStep)/RemainingSteps, η(t) = the original's rate at position(t). For a
    /// cosine this continues the cosine from the phase reached (rate and slope carry on) and reaches η_min at step
    /// FromStep + RemainingSteps; for step decay the remaining decays fall at the same fractions of the run.
    /// </summary>
    /// <remarks>Made by <see cref="LearningRateSchedule.Replan"/>, which checks the arguments.</remarks>
    public sealed record Replanned : LearningRateSchedule
    {
        private readonly double _startPosition;
        private readonly double _endPosition;

        internal Replanned(LearningRateSchedule before, long fromStep, long remainingSteps)
        {
            Before = before;
            FromStep = fromStep;
            RemainingSteps = remainingSteps;
            _startPosition = before.PositionOf(fromStep);
            _endPosition = before.Original.PlannedSteps!.Value;
        }

        /// <summary>The schedule before this re-plan.</summary>
        public LearningRateSchedule Before { get; }

        /// <summary>The first step of the new plan.</summary>
        public long FromStep { get; }

        /// <summary>Steps the rest of the schedule now takes.</summary>
        public long RemainingSteps { get; }

        public override LearningRateSchedule Original => Before.Original;

        public override IReadOnlyList<ScheduleReplan> Replans => [.. Before.Replans, new ScheduleReplan(FromStep, RemainingSteps)];

        public override long? PlannedSteps => FromStep + RemainingSteps;

        public override double RateAt(long step, double baseRate) =>
            step < FromStep ? Before.RateAt(step, baseRate) : Original.RateAtPosition(PositionOf(step), baseRate);

        protected internal override double RateAtPosition(double position, double baseRate) => Original.RateAtPosition(position, baseRate);

        protected internal override double PositionOf(long step)
        {
            if (step < FromStep)
                return Before.PositionOf(step);
            if (step >= FromStep + RemainingSteps)
                return _endPosition;
            return _startPosition + (_endPosition - _startPosition) * (step - FromStep) / RemainingSteps;
        }

        public override string ToString() => $"{Original}, re-planned {string.Join(", ", Replans)}";
    }
}

/// <summary>
/// One re-plan of a learning-rate schedule (<see cref="LearningRateSchedule.Replan"/>): from optimizer step
/// <paramref name="FromStep"/> on, the rest of the schedule takes <paramref name="RemainingSteps"/> steps.
/// </summary>
public readonly record struct ScheduleReplan(long FromStep, long RemainingSteps)
{
    public override string ToString() => $"at step {FromStep} over {RemainingSteps} steps";
}
