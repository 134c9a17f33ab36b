using System.Runtime.Intrinsics.X86;

namespace DistSgd.Numerics.Tensors;

/// <summary>One register-blocked micro-kernel: its tile shape (MR×NR) and entry point.</summary>
internal sealed unsafe class GemmMicroKernel
{
    private GemmMicroKernel(string name, string isa, int mr, int nr,
                            delegate*<float*, float*, int, int, float*, int, float, float, void> run,
                            delegate*<float*, float*, int, int, float*, int, float, float, float*, void> runCopyB = null,
                            int shortRows = 0,
                            delegate*<float*, float*, int, int, float*, int, float, float, void> runShort = null)
    {
        Name = name;
        Isa = isa;
        Mr = mr;
        Nr = nr;
        Run = run;
        RunCopyB = runCopyB;
        ShortRows = shortRows;
        RunShort = runShort;
    }

    /// <summary>e.g. "avx512-12x32".</summary>
    public string Name { get; }

    /// <summary>Instruction set family shown in <see cref="PackedKernels.Name"/>.</summary>
    public string Isa { get; }

    public int Mr { get; }

    public int Nr { get; }

    /// <summary>run(aSliver, b, ldb, kc, c, ldc, α, β): C[0..MR, 0..NR] ← α·Σₚ a·b + β·C (B rows ldb apart).</summary>
    public delegate*<float*, float*, int, int, float*, int, float, float, void> Run { get; }

    /// <summary>
    /// runCopyB(aSliver, b, ldb, kc, c, ldc, α, β, bCopy): <see cref="Run"/> that also stores the B rows
    /// it reads as a packed sliver at bCopy (p·NR + j); null when this kernel has no such variant.
    /// </summary>
    public delegate*<float*, float*, int, int, float*, int, float, float, float*, void> RunCopyB { get; }

    /// <summary>Rows <see cref="RunShort"/> computes (fewer than <see cref="Mr"/>); 0 when there is no such variant.</summary>
    public int ShortRows { get; }

    /// <summary>
    /// runShort(aSliver, b, ldb, kc, c, ldc, α, β): <see cref="Run"/> for the first <see cref="ShortRows"/> rows of an
    /// MR-wide packed sliver only, for a last row tile that short; null when this kernel has none.
    /// </summary>
    public delegate*<float*, float*, int, int, float*, int, float, float, void> RunShort { get; }

    private static bool HasAvx2Fma => Fma.IsSupported && Avx2.IsSupported;

    private static bool HasAvx512 => Avx512F.IsSupported && HasAvx2Fma;

    /// <summary>Every kernel this machine can run, for tuning and tests.</summary>
    public static IReadOnlyList<GemmMicroKernel> Available()
    {
        var list = new List<GemmMicroKernel>();
        if (HasAvx512)
        {
            list.Add(new("avx512-6x32", "avx512", 6, 32, &GemmMicroKernels.Avx512_6x32));
            list.Add(new("avx512-8x32", "avx512", 8, 32, &GemmMicroKernels.Avx512_8x32));
            list.Add(new("avx512-12x32", "avx512", 12, 32, &GemmMicroKernels.Avx512_12x32));
            list.Add(new("avx512-14x32", "avx512", 14, 32, &GemmMicroKernels.Avx512_14x32));
            list.Add(new("avx512-8x16", "avx512", 8, 16, &GemmMicroKernels.Avx512_8x16));
            list.Add(new("avx512-16x16", "avx512", 16, 16, &GemmMicroKernels.Avx512_16x16));
            list.Add(new("avx512-4x32", "avx512", 4, 32, &GemmMicroKernels.Avx512_4x32));
            list.Add(new("avx512-6x16", "avx512", 6, 16, &GemmMicroKernels.Avx512_6x16));
            list.Add(new("avx512-10x16", "avx512", 10, 16, &GemmMicroKernels.Avx512_10x16));
            list.Add(new("avx512-12x16", "avx512", 12, 16, &GemmMicroKernels.Avx512_12x16));
        }
        if (HasAvx2Fma)
        {
            list.Add(new("avx2-6x16", "avx2", 6, 16, &GemmMicroKernels.Avx2_6x16, &GemmMicroKernels.Avx2_6x16CopyB,
                         4, &GemmMicroKernels.Avx2_4of6x16));
            list.Add(new("avx2-4x24", "avx2", 4, 24, &GemmMicroKernels.Avx2_4x24));
            if (HasAvx512)
            {
                // These need more than 16 vector registers: only with the AVX-512 register file.
                list.Add(new("avx2-8x16", "avx2", 8, 16, &GemmMicroKernels.Avx2_8x16));
                list.Add(new("avx2-12x16", "avx2", 12, 16, &GemmMicroKernels.Avx2_12x16));
                list.Add(new("avx2-8x24", "avx2", 8, 24, &GemmMicroKernels.Avx2_8x24));
            }
        }
        list.Add(Scalar);
        return list;
    }

    /// <summary>The portable fallback: 4×8, multiply then add, no intrinsics.</summary>
    public static readonly GemmMicroKernel Scalar = new("scalar-4x8", "scalar", 4, 8, &Scalar4x8);

    private static void Scalar4x8(float* a, float* b, int ldb, int kc, float* c, int ldc, float alpha, float beta) =>
        GemmMicroKernels.Scalar(a, b, ldb, kc, c, ldc, alpha, beta, 4, 8);

    /// <summary>
    /// The fastest kernel this machine supports. On Zen 4 (AVX-512 double-pumped, 32 registers)
    /// 16×16 with 16 Vector512 accumulators measured best for the MLP shapes, 8×16 within noise
    /// (bench/README.md); with AVX2 only (16 registers) the classic 6×16 with 12 accumulators.
    /// </summary>
    public static GemmMicroKernel Best()
    {
        string name = HasAvx512 ? "avx512-16x16" : HasAvx2Fma ? "avx2-6x16" : Scalar.Name;
        return Find(name)!;
    }

    public static GemmMicroKernel? Find(string name) =>
        Available().FirstOrDefault(k => k.Name == name);

    public override string ToString() => Name;
}
