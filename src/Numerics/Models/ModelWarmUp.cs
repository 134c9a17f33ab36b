using DistSgd.Numerics.Optim;
using DistSgd.Numerics.Tensors;

namespace DistSgd.Numerics.Models;

/// <summary>
/// Runs a few training steps and an evaluation of a model on throwaway zeros, so that the JIT compiles the numeric
/// code a run executes (the GEMM kernels and their block loop, packing, TensorPrimitives' instantiations, the
/// optimizer) before the run needs it. A node calls it while it waits to join its cluster, time it would otherwise
/// spend idle, instead of in its first training steps (README, "Warm-up").
/// </summary>
/// <remarks>
/// DistSgd.Numerics is not precompiled (decision 0069): its code is compiled for the CPU at hand at its first call,
/// fully optimized. Nothing here touches a run's state: its own model, parameters, optimizer and data, all dropped
/// at the end, so no result moves by a bit. The shapes are the run's (batch size, layer widths): TensorPrimitives
/// picks different helpers for short and long spans, and the GEMM different paths for different shapes.
/// </remarks>
public static class ModelWarmUp
{
    /// <summary>Set to "off" to skip the warm-up (to measure what it buys; README, "Warm-up").</summary>
    public const string SwitchVariable = "DISTSGD_WARM_UP";

    /// <summary>Whether the warm-up runs: unless <see cref="SwitchVariable"/> is "off".</summary>
    public static bool Enabled(string? switchValue) => !string.Equals(switchValue, "off", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// <see cref="Run"/> on a thread-pool thread, or a completed task when <see cref="SwitchVariable"/> turns it off.
    /// </summary>
    public static Task Start(ModelSpec spec, int batchSize, SgdOptions optimizerOptions) =>
        Enabled(Environment.GetEnvironmentVariable(SwitchVariable))
            ? Task.Run(() => Run(spec, batchSize, optimizerOptions))
            : Task.CompletedTask;

    /// <summary>
    /// <paramref name="steps"/> training steps (each also through <see cref="SgdOptimizer.AverageAndStep"/> with one, two
    /// and three shares, <see cref="SgdOptimizer.AverageEntriesAndStep"/> and <see cref="SgdOptimizer.StepAveraged"/>: each
    /// its own compiled pass) and one evaluation at
    /// <paramref name="batchSize"/> rows of <paramref name="spec"/>, on the calling thread.
    /// </summary>
    public static void Run(ModelSpec spec, int batchSize, SgdOptions optimizerOptions, int steps = 2)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(optimizerOptions);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batchSize);
        ArgumentOutOfRangeException.ThrowIfNegative(steps);
        var model = new Model(spec, MatrixKernels.Default);
        var parameters = new float[model.ParameterCount];
        model.Initialize(parameters, seed: 1);
        var gradient = new float[model.ParameterCount];
        var features = new float[batchSize * spec.InputCount];
        var targets = new float[batchSize];
        var optimizer = new SgdOptimizer(optimizerOptions, model.ParameterCount);
        var shares = new ReadOnlyMemory<float>[] { gradient, gradient, gradient };
        var weights = new[] { batchSize, batchSize, batchSize };
        var entries = new SparseVector?[] { new SparseVector(model.ParameterCount, 0) };
        for (int step = 0; step < steps; step++)
        {
            model.LossAndGradient(parameters, features, targets, batchSize, gradient);
            optimizer.Step(parameters, gradient);
            for (int count = 1; count <= shares.Length; count++)
                optimizer.AverageAndStep(parameters, shares[..count], weights[..count]);
            optimizer.AverageEntriesAndStep(parameters, entries, weights[..1]);
            optimizer.StepAveraged(parameters, gradient, batchSize);
        }
        model.Evaluate(parameters, features, targets, batchSize);
    }
}
