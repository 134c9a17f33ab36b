namespace DistSgd.Numerics.Optim;

/// <summary>
/// Options of stochastic gradient descent, validated at construction so a bad value fails before any
/// training starts. Immutable; the optimizer's changing state lives in <see cref="SgdState"/>.
/// </summary>
public sealed record SgdOptions
{
    public SgdOptions(double learningRate, double momentum = 0, double weightDecay = 0, bool nesterov = false,
                      LearningRateSchedule? schedule = null)
    {
        if (!(learningRate > 0) || !double.IsFinite(learningRate))
            throw new ArgumentOutOfRangeException(nameof(learningRate), learningRate, "the learning rate must be a finite number > 0");
        if (!(momentum >= 0 && momentum < 1))
            throw new ArgumentOutOfRangeException(nameof(momentum), momentum, "momentum must be in [0, 1)");
        if (!(weightDecay >= 0) || !double.IsFinite(weightDecay))
            throw new ArgumentOutOfRangeException(nameof(weightDecay), weightDecay, "weight decay must be a finite number ≥ 0");
        if (nesterov && momentum == 0)
            throw new ArgumentException("Nesterov momentum needs a momentum > 0", nameof(nesterov));
        schedule ??= LearningRateSchedule.Constant.Instance;
        schedule.Validate();
        LearningRate = learningRate;
        Momentum = momentum;
        WeightDecay = weightDecay;
        Nesterov = nesterov;
        Schedule = schedule;
    }

    /// <summary>Base learning rate η₀.</summary>
    public double LearningRate { get; }

    /// <summary>Momentum μ (0 = plain SGD).</summary>
    public double Momentum { get; }

    /// <summary>L2 weight decay λ, added to the gradient as λ·θ.</summary>
    public double WeightDecay { get; }

    public bool Nesterov { get; }

    public LearningRateSchedule Schedule { get; }

    public override string ToString() =>
        $"sgd(lr {LearningRate}, momentum {Momentum}{(Nesterov ? " nesterov" : "")}, weight decay {WeightDecay}, {Schedule})";
}
