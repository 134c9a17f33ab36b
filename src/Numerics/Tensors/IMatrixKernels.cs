namespace DistSgd.Numerics.Tensors;

/// <summary>
/// The dense kernels every model's forward and backward pass is built from. Row-major storage,
/// caller-owned result buffers, no allocation per call.
/// </summary>
/// <remarks>
/// Implementations must be deterministic: the same inputs and the same thread count give
/// bit-identical outputs, whatever the scheduling (the decentralized mode relies on identical
/// replicas). In practice that means every output element is summed in a fixed order by one thread.
/// </remarks>
public interface IMatrixKernels
{
    /// <summary>Short name shown to users, e.g. "managed-avx2 (1 thread)".</summary>
    string Name { get; }

    /// <summary>
    /// General matrix multiply: C ← α·op(A)·op(B) + β·C, where op(A) is m×k, op(B) is k×n and C is m×n.
    /// op(X) = Xᵀ when the matching transpose flag is set. <paramref name="lda"/>, <paramref name="ldb"/>
    /// and <paramref name="ldc"/> are the row strides of A, B and C as stored (before transposition).
    /// When β = 0, C is overwritten and its previous contents (even NaN) are ignored.
    /// </summary>
    void Gemm(bool transposeA, bool transposeB, int m, int n, int k,
              float alpha, ReadOnlySpan<float> a, int lda,
              ReadOnlySpan<float> b, int ldb,
              float beta, Span<float> c, int ldc);
}
