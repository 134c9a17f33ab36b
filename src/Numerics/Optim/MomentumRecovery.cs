namespace DistSgd.Numerics.Optim;

/// <summary>
/// Rebuilds the momentum buffer of SGD from two consecutive parameter vectors, so that a new master can go on
/// from the θ its workers hold without the old master ever shipping its optimizer state anywhere.
/// </summary>
/// <remarks>
/// Plain momentum updates θₛ = θₛ₋₁ − ηₛ₋₁·vₛ (weight decay is inside v), so vₛ = (θₛ₋₁ − θₛ) / ηₛ₋₁ exactly in real
/// arithmetic. In float32 the difference loses the low bits of θ: the rebuilt v is off by about ulp(θ)/η, and the
/// next update η·μ·v by about one ulp of θ, which is noise next to a gradient step. Nesterov momentum
/// (θ ← θ − η(g′ + μv)) cannot be inverted from θ alone, and η = 0 carries no information: both give null.
/// </remarks>
public static class MomentumRecovery
{
    /// <summary>
    /// Writes vₛ = (θₛ₋₁ − θₛ) / ηₛ₋₁ into <paramref name="velocity"/>; false (and nothing written) when the options
    /// cannot be inverted (Nesterov, no momentum) or <paramref name="previousRate"/> is not positive.
    /// </summary>
    public static bool TryVelocity(SgdOptions options, ReadOnlySpan<float> previous, ReadOnlySpan<float> current,
                                   double previousRate, Span<float> velocity)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (previous.Length != current.Length || velocity.Length != current.Length)
            throw new ArgumentException($"θₛ₋₁ has {previous.Length} values, θₛ {current.Length} and v {velocity.Length}; all must be equal");
        if (options.Momentum <= 0 || options.Nesterov || !(previousRate > 0))
            return false;
        for (int i = 0; i < velocity.Length; i++)
            velocity[i] = (float)(((double)previous[i] - current[i]) / previousRate);
        return true;
    }
}
