namespace DistSgd.Bench;

/// <summary>
/// One GEMM of the MLP 784-256-128-10 training step, C(m×n) = op(A)·op(B), stored tight and row-major.
/// Forward: H = X·W. Backward: dW = Xᵀ·dY (transposed A), dX = dY·Wᵀ (transposed B, W stored in×out).
/// </summary>
public sealed record GemmShape(string Name, bool TransposeA, bool TransposeB, int M, int N, int K, int Batch)
{
    public double Flops => 2.0 * M * N * K;

    public int Lda => TransposeA ? M : K;
    public int Ldb => TransposeB ? K : N;
    public int ALength => M * K;
    public int BLength => K * N;

    /// <summary>Short enough for BenchmarkDotNet's parameter column (it elides past 20 characters), e.g. "dW1-64 784x256x64" (m×n×k).</summary>
    public override string ToString() => $"{Name[..Name.IndexOf(' ')]}-{Batch} {M}x{N}x{K}";

    /// <summary>Every GEMM of one training step of the MLP at <paramref name="batch"/>, plus dX of layer 1.</summary>
    public static IReadOnlyList<GemmShape> Mlp(int batch) =>
    [
        new($"fwd1 {batch}x784*784x256", false, false, batch, 256, 784, batch),
        new($"fwd2 {batch}x256*256x128", false, false, batch, 128, 256, batch),
        new($"fwd3 {batch}x128*128x10", false, false, batch, 10, 128, batch),
        new($"dW3  128x{batch}*{batch}x10 (tA)", true, false, 128, 10, batch, batch),
        new($"dX3  {batch}x10*10x128 (tB)", false, true, batch, 128, 10, batch),
        new($"dW2  256x{batch}*{batch}x128 (tA)", true, false, 256, 128, batch, batch),
        new($"dX2  {batch}x128*128x256 (tB)", false, true, batch, 256, 128, batch),
        new($"dW1  784x{batch}*{batch}x256 (tA)", true, false, 784, 256, batch, batch),
        // Not needed to train (X is the input) but the shape the issue names: dX = dY·Wᵀ.
        new($"dX1  {batch}x256*256x784 (tB)", false, true, batch, 784, 256, batch),
    ];

    /// <summary>The GEMMs one training step actually runs (all but dX1).</summary>
    public static bool InTrainingStep(GemmShape s) => !s.Name.StartsWith("dX1", StringComparison.Ordinal);

    /// <summary>Operands filled with a fixed pseudo-random pattern in [-1, 1).</summary>
    public (float[] A, float[] B, float[] C) Allocate()
    {
        var rng = new Random(1234);
        float[] a = new float[ALength], b = new float[BLength], c = new float[M * N];
        for (int i = 0; i < a.Length; i++) a[i] = rng.NextSingle() * 2 - 1;
        for (int i = 0; i < b.Length; i++) b[i] = rng.NextSingle() * 2 - 1;
        return (a, b, c);
    }
}
