namespace DistSgd.Numerics.Tensors;

/// <summary>Picks the fastest <see cref="IMatrixKernels"/> this machine supports.</summary>
public static class MatrixKernels
{
    private static readonly Lazy<IMatrixKernels> s_default = new(() => Create(1));

    /// <summary>
    /// The process-wide single-threaded kernels. One thread is the default because parallelism
    /// already comes from elsewhere: a simulated cluster runs one worker per node in this process,
    /// and at batch 64 a second thread gains little (see bench/README.md).
    /// </summary>
    public static IMatrixKernels Default => s_default.Value;

    /// <summary>
    /// Kernels that use <paramref name="threads"/> threads per call (the caller plus pooled workers).
    /// Results are bit-identical for every thread count. Dispose the result when done with it to
    /// stop its worker threads (they are background threads, so forgetting does not block exit).
    /// </summary>
    public static PackedKernels Create(int threads) => new(threads);
}
