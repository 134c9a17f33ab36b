using System.Globalization;
using System.Numerics.Tensors;
using DistSgd.Numerics.Optim;

namespace DistSgd.Numerics.Training;

/// <summary>
/// Local SGD, periodic model averaging (Lin et al., "Don't use large mini-batches, use local SGD"): every node takes
/// H steps on its own shard with its own optimizer, then the models are averaged, weighted by samples, and every node
/// goes on from the average (distsgd.sync-every, <c>--sync-every</c>). H = 1 is plain gradient averaging.
/// </summary>
/// <remarks>
/// Rounds are counted within an epoch, so every node agrees on them from the step in epoch alone, and an epoch's last
/// step always averages (the epoch ends with identical replicas, which the hash round checks). Rounds are H steps, and
/// the epoch's last round takes the remainder (H to 2H − 1 steps; the whole epoch when it has fewer than H), so an
/// epoch of S ≥ H steps averages ⌊S/H⌋ times: never more than 1/H of its steps (decision 0115). What travels at the
/// round's last step is each node's change over the round, Δᵢ = θᵢ − θ₀ with θ₀ the round's start (the same on every
/// node), so that it can be compressed like a gradient: θ ← θ₀ + Σ nᵢ·Δᵢ / Σ nᵢ.
/// </remarks>
public static class LocalSgd
{
    /// <summary>
    /// Where the epoch's last round starts: after ⌊S/H⌋ − 1 rounds of H steps (0 when the epoch has fewer than 2H steps,
    /// a single round; with H = 1 every step is a round, the last one the epoch's last step).
    /// </summary>
    public static long LastRoundStart(long stepsPerEpoch, int syncEvery) =>
        syncEvery <= 1 ? Math.Max(0, stepsPerEpoch - 1) : Math.Max(0, (stepsPerEpoch / syncEvery - 1) * syncEvery);

    /// <summary>Whether step <paramref name="stepInEpoch"/> (0-based) of an epoch of <paramref name="stepsPerEpoch"/> steps ends a round.</summary>
    public static bool IsAveragingStep(long stepInEpoch, long stepsPerEpoch, int syncEvery) =>
        syncEvery <= 1 || stepInEpoch + 1 >= stepsPerEpoch
        || ((stepInEpoch + 1) % syncEvery == 0 && stepInEpoch + 1 <= LastRoundStart(stepsPerEpoch, syncEvery));

    /// <summary>
    /// Steps of the round that starts at <paramref name="stepInEpoch"/>, its averaging step included: H, or the rest of the
    /// epoch from its last round's start (1 when H = 1). A centralized worker takes them all on one θ from the master.
    /// </summary>
    public static int RoundSteps(int stepInEpoch, int stepsPerEpoch, int syncEvery) =>
        syncEvery <= 1 ? 1
            : Math.Max(1, stepInEpoch >= LastRoundStart(stepsPerEpoch, syncEvery) ? stepsPerEpoch - stepInEpoch : syncEvery - stepInEpoch % syncEvery);

    /// <summary>
    /// The optimizer of a run as its plan's hyper-parameters describe it (lr, momentum, weight-decay, schedule over
    /// <paramref name="totalSteps"/>), for a node that steps on its own: a centralized worker in a local-SGD round.
    /// Throws <see cref="FormatException"/> naming the key when one is missing or not a number.
    /// </summary>
    public static SgdOptions OptimizerFromKeys(string hyperparameters, long totalSteps, long stepsPerEpoch)
    {
        var keys = hyperparameters.Split(';', StringSplitOptions.RemoveEmptyEntries).Select(p => p.Split('=', 2)).Where(p => p.Length == 2)
                                  .GroupBy(p => p[0]).ToDictionary(g => g.Key, g => g.Last()[1]);
        double Number(string key) =>
            keys.TryGetValue(key, out string? text) && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double value)
                ? value : throw new FormatException($"{key}: expected a number in the run's hyper-parameters, found '{text}'");
        return new SgdOptions(Number("lr"), Number("momentum"), Number("weight-decay"),
                              schedule: LearningRateSchedule.Named(keys.GetValueOrDefault("schedule", "constant"), totalSteps, stepsPerEpoch));
    }

    /// <summary>Whether step <paramref name="stepInEpoch"/> starts a round (the first of an epoch, or the one after an averaging step).</summary>
    public static bool IsRoundStart(long stepInEpoch, long stepsPerEpoch, int syncEvery) =>
        syncEvery <= 1 || (stepInEpoch % syncEvery == 0 && stepInEpoch <= LastRoundStart(stepsPerEpoch, syncEvery));

    /// <summary>θ ← θ₀ + Σ nᵢ·Δᵢ / Σ nᵢ over the changes in the order given (node-id order: bit-identical everywhere); returns Σ nᵢ.</summary>
    public static long AverageModels(ReadOnlySpan<float> roundStart, IReadOnlyList<ReadOnlyMemory<float>> changes, IReadOnlyList<int> weights,
                                     Span<float> parameters)
    {
        long samples = GradientAggregation.WeightedAverage(changes, weights, parameters);
        MoveToAverage(roundStart, parameters, samples, parameters);
        return samples;
    }

    /// <summary>
    /// θ ← θ₀ + Δ̄, with Δ̄ = Σ nᵢ·Δᵢ / Σ nᵢ already averaged (by <see cref="AverageModels"/>, or by an all-reduce, which
    /// sums each slice once in a fixed order: decision 0136); θ ← θ₀ when <paramref name="samples"/> = Σ nᵢ is 0.
    /// <paramref name="averageChange"/> may be <paramref name="parameters"/> itself.
    /// </summary>
    public static void MoveToAverage(ReadOnlySpan<float> roundStart, ReadOnlySpan<float> averageChange, long samples, Span<float> parameters)
    {
        if (samples == 0)
            roundStart.CopyTo(parameters);
        else
            TensorPrimitives.Add(roundStart, averageChange, parameters);
    }

    /// <summary>
    /// How many steps ahead a peer must hold shares: a peer may finish a round (its local steps and its averaging step's
    /// send) while another is still at the round's first step, and an epoch's last round has up to 2H − 1 steps, so at
    /// least 2H − 1 when H &gt; 1; never less than <paramref name="window"/>.
    /// </summary>
    public static int BufferWindow(int window, int syncEvery) => syncEvery <= 1 ? window : Math.Max(window, 2 * syncEvery - 1);

    /// <summary>The hyper-parameter "sync-every=H" when H &gt; 1 (a default run's description stays what it was).</summary>
    public static IEnumerable<string> Keys(int syncEvery)
    {
        if (syncEvery > 1)
            yield return $"sync-every={syncEvery.ToString(CultureInfo.InvariantCulture)}";
    }

    /// <summary>H from "key=value;…" hyper-parameters; 1 when they name none. Throws <see cref="FormatException"/> on a bad value.</summary>
    public static int FromKeys(string hyperparameters)
    {
        foreach (string pair in hyperparameters.Split(';', StringSplitOptions.RemoveEmptyEntries))
            if (pair.StartsWith("sync-every=", StringComparison.Ordinal))
                return int.TryParse(pair["sync-every=".Length..], NumberStyles.None, CultureInfo.InvariantCulture, out int h) && h >= 1
                    ? h : throw new FormatException($"sync-every: expected a number of steps ≥ 1, found '{pair["sync-every=".Length..]}'");
        return 1;
    }
}
