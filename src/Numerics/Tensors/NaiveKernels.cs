namespace DistSgd.Numerics.Tensors;

/// <summary>
/// The reference implementation: the textbook triple loop, summed in k order in double precision.
/// Slow; kept as the oracle the fast kernels are tested against.
/// </summary>
public sealed class NaiveKernels : IMatrixKernels
{
    public static readonly NaiveKernels Instance = new();

    public string Name => "naive";

    public void Gemm(bool transposeA, bool transposeB, int m, int n, int k,
                     float alpha, ReadOnlySpan<float> a, int lda,
                     ReadOnlySpan<float> b, int ldb,
                     float beta, Span<float> c, int ldc)
    {
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double sum = 0;
                for (int p = 0; p < k; p++)
                {
                    float aip = transposeA ? a[p * lda + i] : a[i * lda + p];
                    float bpj = transposeB ? b[j * ldb + p] : b[p * ldb + j];
                    sum += (double)aip * bpj;
                }
                float prior = beta == 0f ? 0f : beta * c[i * ldc + j];
                c[i * ldc + j] = (float)(alpha * sum) + prior;
            }
        }
    }
}
