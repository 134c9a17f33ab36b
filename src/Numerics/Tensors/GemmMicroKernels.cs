using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace DistSgd.Numerics.Tensors;

/// <summary>
/// Register-blocked micro-kernels for <see cref="PackedKernels"/>: C[0..MR, 0..NR] ← α·Σₚ a[p]·b[p] + β·C,
/// where a is an MR-wide sliver of packed op(A) (a[p·MR + i], zero-padded to full width) and b holds
/// NR columns of op(B) with rows ldb apart: a packed sliver (ldb = NR) or, when op(B) = B is used
/// in place, B itself.
/// </summary>
/// <remarks>
/// Written out one local per accumulator: the JIT keeps separate locals in registers, not arrays.
/// Every kernel sums p in ascending order with one FMA per step and finishes with
/// round(α·acc) + round(β·c) (no fused final step), the same arithmetic as the scalar edge path in
/// <see cref="PackedKernels"/>, so an element's value does not depend on which tile computed it.
/// The callers check <see cref="Fma.IsSupported"/> / <see cref="Avx512F.IsSupported"/> first.
/// </remarks>
internal static unsafe class GemmMicroKernels
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Fma(Vector256<float> a, Vector256<float> b, Vector256<float> c) =>
        System.Runtime.Intrinsics.X86.Fma.MultiplyAdd(a, b, c);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Fma512(Vector512<float> a, Vector512<float> b, Vector512<float> c) =>
        Avx512F.FusedMultiplyAdd(a, b, c);

    /// <summary>c ← αacc + β·c, with αacc already rounded: round(round(α·acc) + round(β·c)).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Update(float* c, Vector256<float> alphaAcc, Vector256<float> beta) =>
        (alphaAcc + beta * Vector256.Load(c)).Store(c);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Update(float* c, Vector512<float> alphaAcc, Vector512<float> beta) =>
        (alphaAcc + beta * Vector512.Load(c)).Store(c);

    /// <summary>Portable fallback for any MR×NR, plain multiply-then-add (no FMA hardware assumed).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Scalar(float* a, float* b, int ldb, int kc, float* c, int ldc, float alpha, float beta, int mr, int nr)
    {
        Span<float> acc = stackalloc float[mr * nr];
        acc.Clear();
        for (int p = 0; p < kc; p++)
        {
            for (int i = 0; i < mr; i++)
            {
                float ai = a[i];
                for (int j = 0; j < nr; j++)
                    acc[i * nr + j] += ai * b[j];
            }
            a += mr;
            b += ldb;
        }
        for (int i = 0; i < mr; i++)
            for (int j = 0; j < nr; j++)
                c[i * ldc + j] = beta == 0f ? alpha * acc[i * nr + j] : alpha * acc[i * nr + j] + beta * c[i * ldc + j];
    }

    /// <summary>4×32 tile with 8 Vector512 accumulators: per p, 2 loads of B, 4 broadcasts of packed A, 8 FMAs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Avx512_4x32(float* a, float* b, int ldb, int kc, float* c, int ldc, float alpha, float beta)
    {
        Vector512<float> c00 = default; Vector512<float> c01 = default;
        Vector512<float> c10 = default; Vector512<float> c11 = default;
        Vector512<float> c20 = default; Vector512<float> c21 = default;
        Vector512<float> c30 = default; Vector512<float> c31 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector512<float> b0 = Vector512.Load(b + 0);
            Vector512<float> b1 = Vector512.Load(b + 16);
            Vector512<float> a0 = Vector512.Create(a[0]);
            c00 = Fma512(a0, b0, c00); c01 = Fma512(a0, b1, c01);
            Vector512<float> a1 = Vector512.Create(a[1]);
            c10 = Fma512(a1, b0, c10); c11 = Fma512(a1, b1, c11);
            Vector512<float> a2 = Vector512.Create(a[2]);
            c20 = Fma512(a2, b0, c20); c21 = Fma512(a2, b1, c21);
            Vector512<float> a3 = Vector512.Create(a[3]);
            c30 = Fma512(a3, b0, c30); c31 = Fma512(a3, b1, c31);
            a += 4;
            b += ldb;
        }
        if (beta == 0f)
        {
            var va = Vector512.Create(alpha);
            (va * c00).Store(c + 0 * ldc + 0); (va * c01).Store(c + 0 * ldc + 16);
            (va * c10).Store(c + 1 * ldc + 0); (va * c11).Store(c + 1 * ldc + 16);
            (va * c20).Store(c + 2 * ldc + 0); (va * c21).Store(c + 2 * ldc + 16);
            (va * c30).Store(c + 3 * ldc + 0); (va * c31).Store(c + 3 * ldc + 16);
        }
        else
        {
            var va = Vector512.Create(alpha);
            var vb = Vector512.Create(beta);
            Update(c + 0 * ldc + 0, va * c00, vb);
            Update(c + 0 * ldc + 16, va * c01, vb);
            Update(c + 1 * ldc + 0, va * c10, vb);
            Update(c + 1 * ldc + 16, va * c11, vb);
            Update(c + 2 * ldc + 0, va * c20, vb);
            Update(c + 2 * ldc + 16, va * c21, vb);
            Update(c + 3 * ldc + 0, va * c30, vb);
            Update(c + 3 * ldc + 16, va * c31, vb);
        }
    }

    /// <summary>6×16 tile with 6 Vector512 accumulators: per p, 1 loads of B, 6 broadcasts of packed A, 6 FMAs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Avx512_6x16(float* a, float* b, int ldb, int kc, float* c, int ldc, float alpha, float beta)
    {
        Vector512<float> c00 = default;
        Vector512<float> c10 = default;
        Vector512<float> c20 = default;
        Vector512<float> c30 = default;
        Vector512<float> c40 = default;
        Vector512<float> c50 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector512<float> b0 = Vector512.Load(b + 0);
            Vector512<float> a0 = Vector512.Create(a[0]);
            c00 = Fma512(a0, b0, c00);
            Vector512<float> a1 = Vector512.Create(a[1]);
            c10 = Fma512(a1, b0, c10);
            Vector512<float> a2 = Vector512.Create(a[2]);
            c20 = Fma512(a2, b0, c20);
            Vector512<float> a3 = Vector512.Create(a[3]);
            c30 = Fma512(a3, b0, c30);
            Vector512<float> a4 = Vector512.Create(a[4]);
            c40 = Fma512(a4, b0, c40);
            Vector512<float> a5 = Vector512.Create(a[5]);
            c50 = Fma512(a5, b0, c50);
            a += 6;
            b += ldb;
        }
        if (beta == 0f)
        {
            var va = Vector512.Create(alpha);
            (va * c00).Store(c + 0 * ldc + 0);
            (va * c10).Store(c + 1 * ldc + 0);
            (va * c20).Store(c + 2 * ldc + 0);
            (va * c30).Store(c + 3 * ldc + 0);
            (va * c40).Store(c + 4 * ldc + 0);
            (va * c50).Store(c + 5 * ldc + 0);
        }
        else
        {
            var va = Vector512.Create(alpha);
            var vb = Vector512.Create(beta);
            Update(c + 0 * ldc + 0, va * c00, vb);
            Update(c + 1 * ldc + 0, va * c10, vb);
            Update(c + 2 * ldc + 0, va * c20, vb);
            Update(c + 3 * ldc + 0, va * c30, vb);
            Update(c + 4 * ldc + 0, va * c40, vb);
            Update(c + 5 * ldc + 0, va * c50, vb);
        }
    }

    /// <summary>10×16 tile with 10 Vector512 accumulators: per p, 1 loads of B, 10 broadcasts of packed A, 10 FMAs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Avx512_10x16(float* a, float* b, int ldb, int kc, float* c, int ldc, float alpha, float beta)
    {
        Vector512<float> c00 = default;
        Vector512<float> c10 = default;
        Vector512<float> c20 = default;
        Vector512<float> c30 = default;
        Vector512<float> c40 = default;
        Vector512<float> c50 = default;
        Vector512<float> c60 = default;
        Vector512<float> c70 = default;
        Vector512<float> c80 = default;
        Vector512<float> c90 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector512<float> b0 = Vector512.Load(b + 0);
            Vector512<float> a0 = Vector512.Create(a[0]);
            c00 = Fma512(a0, b0, c00);
            Vector512<float> a1 = Vector512.Create(a[1]);
            c10 = Fma512(a1, b0, c10);
            Vector512<float> a2 = Vector512.Create(a[2]);
            c20 = Fma512(a2, b0, c20);
            Vector512<float> a3 = Vector512.Create(a[3]);
            c30 = Fma512(a3, b0, c30);
            Vector512<float> a4 = Vector512.Create(a[4]);
            c40 = Fma512(a4, b0, c40);
            Vector512<float> a5 = Vector512.Create(a[5]);
            c50 = Fma512(a5, b0, c50);
            Vector512<float> a6 = Vector512.Create(a[6]);
            c60 = Fma512(a6, b0, c60);
            Vector512<float> a7 = Vector512.Create(a[7]);
            c70 = Fma512(a7, b0, c70);
            Vector512<float> a8 = Vector512.Create(a[8]);
            c80 = Fma512(a8, b0, c80);
            Vector512<float> a9 = Vector512.Create(a[9]);
            c90 = Fma512(a9, b0, c90);
            a += 10;
            b += ldb;
        }
        if (beta == 0f)
        {
            var va = Vector512.Create(alpha);
            (va * c00).Store(c + 0 * ldc + 0);
            (va * c10).Store(c + 1 * ldc + 0);
            (va * c20).Store(c + 2 * ldc + 0);
            (va * c30).Store(c + 3 * ldc + 0);
            (va * c40).Store(c + 4 * ldc + 0);
            (va * c50).Store(c + 5 * ldc + 0);
            (va * c60).Store(c + 6 * ldc + 0);
            (va * c70).Store(c + 7 * ldc + 0);
            (va * c80).Store(c + 8 * ldc + 0);
            (va * c90).Store(c + 9 * ldc + 0);
        }
        else
        {
            var va = Vector512.Create(alpha);
            var vb = Vector512.Create(beta);
            Update(c + 0 * ldc + 0, va * c00, vb);
            Update(c + 1 * ldc + 0, va * c10, vb);
            Update(c + 2 * ldc + 0, va * c20, vb);
            Update(c + 3 * ldc + 0, va * c30, vb);
            Update(c + 4 * ldc + 0, va * c40, vb);
            Update(c + 5 * ldc + 0, va * c50, vb);
            Update(c + 6 * ldc + 0, va * c60, vb);
            Update(c + 7 * ldc + 0, va * c70, vb);
            Update(c + 8 * ldc + 0, va * c80, vb);
            Update(c + 9 * ldc + 0, va * c90, vb);
        }
    }

    /// <summary>12×16 tile with 12 Vector512 accumulators: per p, 1 loads of B, 12 broadcasts of packed A, 12 FMAs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Avx512_12x16(float* a, float* b, int ldb, int kc, float* c, int ldc, float alpha, float beta)
    {
        Vector512<float> c00 = default;
        Vector512<float> c10 = default;
        Vector512<float> c20 = default;
        Vector512<float> c30 = default;
        Vector512<float> c40 = default;
        Vector512<float> c50 = default;
        Vector512<float> c60 = default;
        Vector512<float> c70 = default;
        Vector512<float> c80 = default;
        Vector512<float> c90 = default;
        Vector512<float> c100 = default;
        Vector512<float> c110 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector512<float> b0 = Vector512.Load(b + 0);
            Vector512<float> a0 = Vector512.Create(a[0]);
            c00 = Fma512(a0, b0, c00);
            Vector512<float> a1 = Vector512.Create(a[1]);
            c10 = Fma512(a1, b0, c10);
            Vector512<float> a2 = Vector512.Create(a[2]);
            c20 = Fma512(a2, b0, c20);
            Vector512<float> a3 = Vector512.Create(a[3]);
            c30 = Fma512(a3, b0, c30);
            Vector512<float> a4 = Vector512.Create(a[4]);
            c40 = Fma512(a4, b0, c40);
            Vector512<float> a5 = Vector512.Create(a[5]);
            c50 = Fma512(a5, b0, c50);
            Vector512<float> a6 = Vector512.Create(a[6]);
            c60 = Fma512(a6, b0, c60);
            Vector512<float> a7 = Vector512.Create(a[7]);
            c70 = Fma512(a7, b0, c70);
            Vector512<float> a8 = Vector512.Create(a[8]);
            c80 = Fma512(a8, b0, c80);
            Vector512<float> a9 = Vector512.Create(a[9]);
            c90 = Fma512(a9, b0, c90);
            Vector512<float> a10 = Vector512.Create(a[10]);
            c100 = Fma512(a10, b0, c100);
            Vector512<float> a11 = Vector512.Create(a[11]);
            c110 = Fma512(a11, b0, c110);
            a += 12;
            b += ldb;
        }
        if (beta == 0f)
        {
            var va = Vector512.Create(alpha);
            (va * c00).Store(c + 0 * ldc + 0);
            (va * c10).Store(c + 1 * ldc + 0);
            (va * c20).Store(c + 2 * ldc + 0);
            (va * c30).Store(c + 3 * ldc + 0);
            (va * c40).Store(c + 4 * ldc + 0);
            (va * c50).Store(c + 5 * ldc + 0);
            (va * c60).Store(c + 6 * ldc + 0);
            (va * c70).Store(c + 7 * ldc + 0);
            (va * c80).Store(c + 8 * ldc + 0);
            (va * c90).Store(c + 9 * ldc + 0);
            (va * c100).Store(c + 10 * ldc + 0);
            (va * c110).Store(c + 11 * ldc + 0);
        }
        else
        {
            var va = Vector512.Create(alpha);
            var vb = Vector512.Create(beta);
            Update(c + 0 * ldc + 0, va * c00, vb);
            Update(c + 1 * ldc + 0, va * c10, vb);
            Update(c + 2 * ldc + 0, va * c20, vb);
            Update(c + 3 * ldc + 0, va * c30, vb);
            Update(c + 4 * ldc + 0, va * c40, vb);
            Update(c + 5 * ldc + 0, va * c50, vb);
            Update(c + 6 * ldc + 0, va * c60, vb);
            Update(c + 7 * ldc + 0, va * c70, vb);
            Update(c + 8 * ldc + 0, va * c80, vb);
            Update(c + 9 * ldc + 0, va * c90, vb);
            Update(c + 10 * ldc + 0, va * c100, vb);
            Update(c + 11 * ldc + 0, va * c110, vb);
        }
    }

    /// <summary>6×16 tile with 12 Vector256 accumulators: per p, 2 loads of B, 6 broadcasts of packed A, 12 FMAs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Avx2_6x16(float* a, float* b, int ldb, int kc, float* c, int ldc, float alpha, float beta) =>
        Avx2_6x16Core(a, b, ldb, kc, c, ldc, alpha, beta, null, copyB: false, rows: 6);

    /// <summary>
    /// The first 4 rows of a 6-row packed sliver (a[p·6 + i], i &lt; 4) × 16 columns, 8 Vector256 accumulators:
    /// the last tile of <see cref="Avx2_6x16"/> when m ≡ 4 (mod 6), as for every m of the MLP (64, 128, 256,
    /// 784), written straight to C instead of computing 6 rows into a scratch tile. Each element is the same
    /// FMA chain as in the 6-row kernel, so the bits are the same.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Avx2_4of6x16(float* a, float* b, int ldb, int kc, float* c, int ldc, float alpha, float beta) =>
        Avx2_6x16Core(a, b, ldb, kc, c, ldc, alpha, beta, null, copyB: false, rows: 4);

    /// <summary>
    /// <see cref="Avx2_6x16"/> that also stores the B rows it reads as a packed sliver (bCopy[p·16 + j]),
    /// so the tiles after it read B contiguously from L1: the first tile of a sliver read in place packs
    /// it while the FMAs run, and nobody makes a separate pass over B.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Avx2_6x16CopyB(float* a, float* b, int ldb, int kc, float* c, int ldc, float alpha, float beta, float* bCopy) =>
        Avx2_6x16Core(a, b, ldb, kc, c, ldc, alpha, beta, bCopy, copyB: true, rows: 6);

    /// <remarks><paramref name="rows"/> (6 or 4) is a constant at each call: the JIT drops the unused rows' accumulators.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Avx2_6x16Core(float* a, float* b, int ldb, int kc, float* c, int ldc, float alpha, float beta, float* bCopy, bool copyB, int rows)
    {
        Vector256<float> c00 = default; Vector256<float> c01 = default;
        Vector256<float> c10 = default; Vector256<float> c11 = default;
        Vector256<float> c20 = default; Vector256<float> c21 = default;
        Vector256<float> c30 = default; Vector256<float> c31 = default;
        Vector256<float> c40 = default; Vector256<float> c41 = default;
        Vector256<float> c50 = default; Vector256<float> c51 = default;
        nint stride = ldb;
        for (int p = 0; p < kc; p++)
        {
            Vector256<float> b0 = Vector256.Load(b + 0);
            Vector256<float> b1 = Vector256.Load(b + 8);
            if (copyB)
            {
                b0.Store(bCopy);
                b1.Store(bCopy + 8);
                bCopy += 16;
            }
            Vector256<float> a0 = Vector256.Create(a[0]);
            c00 = Fma(a0, b0, c00); c01 = Fma(a0, b1, c01);
            Vector256<float> a1 = Vector256.Create(a[1]);
            c10 = Fma(a1, b0, c10); c11 = Fma(a1, b1, c11);
            Vector256<float> a2 = Vector256.Create(a[2]);
            c20 = Fma(a2, b0, c20); c21 = Fma(a2, b1, c21);
            Vector256<float> a3 = Vector256.Create(a[3]);
            c30 = Fma(a3, b0, c30); c31 = Fma(a3, b1, c31);
            if (rows == 6)
            {
                Vector256<float> a4 = Vector256.Create(a[4]);
                c40 = Fma(a4, b0, c40); c41 = Fma(a4, b1, c41);
                Vector256<float> a5 = Vector256.Create(a[5]);
                c50 = Fma(a5, b0, c50); c51 = Fma(a5, b1, c51);
            }
            a += 6;
            b += stride;
        }
        if (beta == 0f)
        {
            var va = Vector256.Create(alpha);
            (va * c00).Store(c + 0 * ldc + 0); (va * c01).Store(c + 0 * ldc + 8);
            (va * c10).Store(c + 1 * ldc + 0); (va * c11).Store(c + 1 * ldc + 8);
            (va * c20).Store(c + 2 * ldc + 0); (va * c21).Store(c + 2 * ldc + 8);
            (va * c30).Store(c + 3 * ldc + 0); (va * c31).Store(c + 3 * ldc + 8);
            if (rows == 6)
            {
                (va * c40).Store(c + 4 * ldc + 0); (va * c41).Store(c + 4 * ldc + 8);
                (va * c50).Store(c + 5 * ldc + 0); (va * c51).Store(c + 5 * ldc + 8);
            }
        }
        else
        {
            var va = Vector256.Create(alpha);
            var vb = Vector256.Create(beta);
            Update(c + 0 * ldc + 0, va * c00, vb);
            Update(c + 0 * ldc + 8, va * c01, vb);
            Update(c + 1 * ldc + 0, va * c10, vb);
            Update(c + 1 * ldc + 8, va * c11, vb);
            Update(c + 2 * ldc + 0, va * c20, vb);
            Update(c + 2 * ldc + 8, va * c21, vb);
            Update(c + 3 * ldc + 0, va * c30, vb);
            Update(c + 3 * ldc + 8, va * c31, vb);
            if (rows == 6)
            {
                Update(c + 4 * ldc + 0, va * c40, vb);
                Update(c + 4 * ldc + 8, va * c41, vb);
                Update(c + 5 * ldc + 0, va * c50, vb);
                Update(c + 5 * ldc + 8, va * c51, vb);
            }
        }
    }

    /// <summary>8×16 tile with 16 Vector256 accumulators: per p, 2 loads of B, 8 broadcasts of packed A, 16 FMAs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Avx2_8x16(float* a, float* b, int ldb, int kc, float* c, int ldc, float alpha, float beta)
    {
        Vector256<float> c00 = default; Vector256<float> c01 = default;
        Vector256<float> c10 = default; Vector256<float> c11 = default;
        Vector256<float> c20 = default; Vector256<float> c21 = default;
        Vector256<float> c30 = default; Vector256<float> c31 = default;
        Vector256<float> c40 = default; Vector256<float> c41 = default;
        Vector256<float> c50 = default; Vector256<float> c51 = default;
        Vector256<float> c60 = default; Vector256<float> c61 = default;
        Vector256<float> c70 = default; Vector256<float> c71 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector256<float> b0 = Vector256.Load(b + 0);
            Vector256<float> b1 = Vector256.Load(b + 8);
            Vector256<float> a0 = Vector256.Create(a[0]);
            c00 = Fma(a0, b0, c00); c01 = Fma(a0, b1, c01);
            Vector256<float> a1 = Vector256.Create(a[1]);
            c10 = Fma(a1, b0, c10); c11 = Fma(a1, b1, c11);
            Vector256<float> a2 = Vector256.Create(a[2]);
            c20 = Fma(a2, b0, c20); c21 = Fma(a2, b1, c21);
            Vector256<float> a3 = Vector256.Create(a[3]);
            c30 = Fma(a3, b0, c30); c31 = Fma(a3, b1, c31);
            Vector256<float> a4 = Vector256.Create(a[4]);
            c40 = Fma(a4, b0, c40); c41 = Fma(a4, b1, c41);
            Vector256<float> a5 = Vector256.Create(a[5]);
            c50 = Fma(a5, b0, c50); c51 = Fma(a5, b1, c51);
            Vector256<float> a6 = Vector256.Create(a[6]);
            c60 = Fma(a6, b0, c60); c61 = Fma(a6, b1, c61);
            Vector256<float> a7 = Vector256.Create(a[7]);
            c70 = Fma(a7, b0, c70); c71 = Fma(a7, b1, c71);
            a += 8;
            b += ldb;
        }
        if (beta == 0f)
        {
            var va = Vector256.Create(alpha);
            (va * c00).Store(c + 0 * ldc + 0); (va * c01).Store(c + 0 * ldc + 8);
            (va * c10).Store(c + 1 * ldc + 0); (va * c11).Store(c + 1 * ldc + 8);
            (va * c20).Store(c + 2 * ldc + 0); (va * c21).Store(c + 2 * ldc + 8);
            (va * c30).Store(c + 3 * ldc + 0); (va * c31).Store(c + 3 * ldc + 8);
            (va * c40).Store(c + 4 * ldc + 0); (va * c41).Store(c + 4 * ldc + 8);
            (va * c50).Store(c + 5 * ldc + 0); (va * c51).Store(c + 5 * ldc + 8);
            (va * c60).Store(c + 6 * ldc + 0); (va * c61).Store(c + 6 * ldc + 8);
            (va * c70).Store(c + 7 * ldc + 0); (va * c71).Store(c + 7 * ldc + 8);
        }
        else
        {
            var va = Vector256.Create(alpha);
            var vb = Vector256.Create(beta);
            Update(c + 0 * ldc + 0, va * c00, vb);
            Update(c + 0 * ldc + 8, va * c01, vb);
            Update(c + 1 * ldc + 0, va * c10, vb);
            Update(c + 1 * ldc + 8, va * c11, vb);
            Update(c + 2 * ldc + 0, va * c20, vb);
            Update(c + 2 * ldc + 8, va * c21, vb);
            Update(c + 3 * ldc + 0, va * c30, vb);
            Update(c + 3 * ldc + 8, va * c31, vb);
            Update(c + 4 * ldc + 0, va * c40, vb);
            Update(c + 4 * ldc + 8, va * c41, vb);
            Update(c + 5 * ldc + 0, va * c50, vb);
            Update(c + 5 * ldc + 8, va * c51, vb);
            Update(c + 6 * ldc + 0, va * c60, vb);
            Update(c + 6 * ldc + 8, va * c61, vb);
            Update(c + 7 * ldc + 0, va * c70, vb);
            Update(c + 7 * ldc + 8, va * c71, vb);
        }
    }

    /// <summary>12×16 tile with 24 Vector256 accumulators: per p, 2 loads of B, 12 broadcasts of packed A, 24 FMAs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Avx2_12x16(float* a, float* b, int ldb, int kc, float* c, int ldc, float alpha, float beta)
    {
        Vector256<float> c00 = default; Vector256<float> c01 = default;
        Vector256<float> c10 = default; Vector256<float> c11 = default;
        Vector256<float> c20 = default; Vector256<float> c21 = default;
        Vector256<float> c30 = default; Vector256<float> c31 = default;
        Vector256<float> c40 = default; Vector256<float> c41 = default;
        Vector256<float> c50 = default; Vector256<float> c51 = default;
        Vector256<float> c60 = default; Vector256<float> c61 = default;
        Vector256<float> c70 = default; Vector256<float> c71 = default;
        Vector256<float> c80 = default; Vector256<float> c81 = default;
        Vector256<float> c90 = default; Vector256<float> c91 = default;
        Vector256<float> c100 = default; Vector256<float> c101 = default;
        Vector256<float> c110 = default; Vector256<float> c111 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector256<float> b0 = Vector256.Load(b + 0);
            Vector256<float> b1 = Vector256.Load(b + 8);
            Vector256<float> a0 = Vector256.Create(a[0]);
            c00 = Fma(a0, b0, c00); c01 = Fma(a0, b1, c01);
            Vector256<float> a1 = Vector256.Create(a[1]);
            c10 = Fma(a1, b0, c10); c11 = Fma(a1, b1, c11);
            Vector256<float> a2 = Vector256.Create(a[2]);
            c20 = Fma(a2, b0, c20); c21 = Fma(a2, b1, c21);
            Vector256<float> a3 = Vector256.Create(a[3]);
            c30 = Fma(a3, b0, c30); c31 = Fma(a3, b1, c31);
            Vector256<float> a4 = Vector256.Create(a[4]);
            c40 = Fma(a4, b0, c40); c41 = Fma(a4, b1, c41);
            Vector256<float> a5 = Vector256.Create(a[5]);
            c50 = Fma(a5, b0, c50); c51 = Fma(a5, b1, c51);
            Vector256<float> a6 = Vector256.Create(a[6]);
            c60 = Fma(a6, b0, c60); c61 = Fma(a6, b1, c61);
            Vector256<float> a7 = Vector256.Create(a[7]);
            c70 = Fma(a7, b0, c70); c71 = Fma(a7, b1, c71);
            Vector256<float> a8 = Vector256.Create(a[8]);
            c80 = Fma(a8, b0, c80); c81 = Fma(a8, b1, c81);
            Vector256<float> a9 = Vector256.Create(a[9]);
            c90 = Fma(a9, b0, c90); c91 = Fma(a9, b1, c91);
            Vector256<float> a10 = Vector256.Create(a[10]);
            c100 = Fma(a10, b0, c100); c101 = Fma(a10, b1, c101);
            Vector256<float> a11 = Vector256.Create(a[11]);
            c110 = Fma(a11, b0, c110); c111 = Fma(a11, b1, c111);
            a += 12;
            b += ldb;
        }
        if (beta == 0f)
        {
            var va = Vector256.Create(alpha);
            (va * c00).Store(c + 0 * ldc + 0); (va * c01).Store(c + 0 * ldc + 8);
            (va * c10).Store(c + 1 * ldc + 0); (va * c11).Store(c + 1 * ldc + 8);
            (va * c20).Store(c + 2 * ldc + 0); (va * c21).Store(c + 2 * ldc + 8);
            (va * c30).Store(c + 3 * ldc + 0); (va * c31).Store(c + 3 * ldc + 8);
            (va * c40).Store(c + 4 * ldc + 0); (va * c41).Store(c + 4 * ldc + 8);
            (va * c50).Store(c + 5 * ldc + 0); (va * c51).Store(c + 5 * ldc + 8);
            (va * c60).Store(c + 6 * ldc + 0); (va * c61).Store(c + 6 * ldc + 8);
            (va * c70).Store(c + 7 * ldc + 0); (va * c71).Store(c + 7 * ldc + 8);
            (va * c80).Store(c + 8 * ldc + 0); (va * c81).Store(c + 8 * ldc + 8);
            (va * c90).Store(c + 9 * ldc + 0); (va * c91).Store(c + 9 * ldc + 8);
            (va * c100).Store(c + 10 * ldc + 0); (va * c101).Store(c + 10 * ldc + 8);
            (va * c110).Store(c + 11 * ldc + 0); (va * c111).Store(c + 11 * ldc + 8);
        }
        else
        {
            var va = Vector256.Create(alpha);
            var vb = Vector256.Create(beta);
            Update(c + 0 * ldc + 0, va * c00, vb);
            Update(c + 0 * ldc + 8, va * c01, vb);
            Update(c + 1 * ldc + 0, va * c10, vb);
            Update(c + 1 * ldc + 8, va * c11, vb);
            Update(c + 2 * ldc + 0, va * c20, vb);
            Update(c + 2 * ldc + 8, va * c21, vb);
            Update(c + 3 * ldc + 0, va * c30, vb);
            Update(c + 3 * ldc + 8, va * c31, vb);
            Update(c + 4 * ldc + 0, va * c40, vb);
            Update(c + 4 * ldc + 8, va * c41, vb);
            Update(c + 5 * ldc + 0, va * c50, vb);
            Update(c + 5 * ldc + 8, va * c51, vb);
            Update(c + 6 * ldc + 0, va * c60, vb);
            Update(c + 6 * ldc + 8, va * c61, vb);
            Update(c + 7 * ldc + 0, va * c70, vb);
            Update(c + 7 * ldc + 8, va * c71, vb);
            Update(c + 8 * ldc + 0, va * c80, vb);
            Update(c + 8 * ldc + 8, va * c81, vb);
            Update(c + 9 * ldc + 0, va * c90, vb);
            Update(c + 9 * ldc + 8, va * c91, vb);
            Update(c + 10 * ldc + 0, va * c100, vb);
            Update(c + 10 * ldc + 8, va * c101, vb);
            Update(c + 11 * ldc + 0, va * c110, vb);
            Update(c + 11 * ldc + 8, va * c111, vb);
        }
    }

    /// <summary>4×24 tile with 12 Vector256 accumulators: per p, 3 loads of B, 4 broadcasts of packed A, 12 FMAs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Avx2_4x24(float* a, float* b, int ldb, int kc, float* c, int ldc, float alpha, float beta)
    {
        Vector256<float> c00 = default; Vector256<float> c01 = default; Vector256<float> c02 = default;
        Vector256<float> c10 = default; Vector256<float> c11 = default; Vector256<float> c12 = default;
        Vector256<float> c20 = default; Vector256<float> c21 = default; Vector256<float> c22 = default;
        Vector256<float> c30 = default; Vector256<float> c31 = default; Vector256<float> c32 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector256<float> b0 = Vector256.Load(b + 0);
            Vector256<float> b1 = Vector256.Load(b + 8);
            Vector256<float> b2 = Vector256.Load(b + 16);
            Vector256<float> a0 = Vector256.Create(a[0]);
            c00 = Fma(a0, b0, c00); c01 = Fma(a0, b1, c01); c02 = Fma(a0, b2, c02);
            Vector256<float> a1 = Vector256.Create(a[1]);
            c10 = Fma(a1, b0, c10); c11 = Fma(a1, b1, c11); c12 = Fma(a1, b2, c12);
            Vector256<float> a2 = Vector256.Create(a[2]);
            c20 = Fma(a2, b0, c20); c21 = Fma(a2, b1, c21); c22 = Fma(a2, b2, c22);
            Vector256<float> a3 = Vector256.Create(a[3]);
            c30 = Fma(a3, b0, c30); c31 = Fma(a3, b1, c31); c32 = Fma(a3, b2, c32);
            a += 4;
            b += ldb;
        }
        if (beta == 0f)
        {
            var va = Vector256.Create(alpha);
            (va * c00).Store(c + 0 * ldc + 0); (va * c01).Store(c + 0 * ldc + 8); (va * c02).Store(c + 0 * ldc + 16);
            (va * c10).Store(c + 1 * ldc + 0); (va * c11).Store(c + 1 * ldc + 8); (va * c12).Store(c + 1 * ldc + 16);
            (va * c20).Store(c + 2 * ldc + 0); (va * c21).Store(c + 2 * ldc + 8); (va * c22).Store(c + 2 * ldc + 16);
            (va * c30).Store(c + 3 * ldc + 0); (va * c31).Store(c + 3 * ldc + 8); (va * c32).Store(c + 3 * ldc + 16);
        }
        else
        {
            var va = Vector256.Create(alpha);
            var vb = Vector256.Create(beta);
            Update(c + 0 * ldc + 0, va * c00, vb);
            Update(c + 0 * ldc + 8, va * c01, vb);
            Update(c + 0 * ldc + 16, va * c02, vb);
            Update(c + 1 * ldc + 0, va * c10, vb);
            Update(c + 1 * ldc + 8, va * c11, vb);
            Update(c + 1 * ldc + 16, va * c12, vb);
            Update(c + 2 * ldc + 0, va * c20, vb);
            Update(c + 2 * ldc + 8, va * c21, vb);
            Update(c + 2 * ldc + 16, va * c22, vb);
            Update(c + 3 * ldc + 0, va * c30, vb);
            Update(c + 3 * ldc + 8, va * c31, vb);
            Update(c + 3 * ldc + 16, va * c32, vb);
        }
    }

    /// <summary>8×24 tile with 24 Vector256 accumulators: per p, 3 loads of B, 8 broadcasts of packed A, 24 FMAs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Avx2_8x24(float* a, float* b, int ldb, int kc, float* c, int ldc, float alpha, float beta)
    {
        Vector256<float> c00 = default; Vector256<float> c01 = default; Vector256<float> c02 = default;
        Vector256<float> c10 = default; Vector256<float> c11 = default; Vector256<float> c12 = default;
        Vector256<float> c20 = default; Vector256<float> c21 = default; Vector256<float> c22 = default;
        Vector256<float> c30 = default; Vector256<float> c31 = default; Vector256<float> c32 = default;
        Vector256<float> c40 = default; Vector256<float> c41 = default; Vector256<float> c42 = default;
        Vector256<float> c50 = default; Vector256<float> c51 = default; Vector256<float> c52 = default;
        Vector256<float> c60 = default; Vector256<float> c61 = default; Vector256<float> c62 = default;
        Vector256<float> c70 = default; Vector256<float> c71 = default; Vector256<float> c72 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector256<float> b0 = Vector256.Load(b + 0);
            Vector256<float> b1 = Vector256.Load(b + 8);
            Vector256<float> b2 = Vector256.Load(b + 16);
            Vector256<float> a0 = Vector256.Create(a[0]);
            c00 = Fma(a0, b0, c00); c01 = Fma(a0, b1, c01); c02 = Fma(a0, b2, c02);
            Vector256<float> a1 = Vector256.Create(a[1]);
            c10 = Fma(a1, b0, c10); c11 = Fma(a1, b1, c11); c12 = Fma(a1, b2, c12);
            Vector256<float> a2 = Vector256.Create(a[2]);
            c20 = Fma(a2, b0, c20); c21 = Fma(a2, b1, c21); c22 = Fma(a2, b2, c22);
            Vector256<float> a3 = Vector256.Create(a[3]);
            c30 = Fma(a3, b0, c30); c31 = Fma(a3, b1, c31); c32 = Fma(a3, b2, c32);
            Vector256<float> a4 = Vector256.Create(a[4]);
            c40 = Fma(a4, b0, c40); c41 = Fma(a4, b1, c41); c42 = Fma(a4, b2, c42);
            Vector256<float> a5 = Vector256.Create(a[5]);
            c50 = Fma(a5, b0, c50); c51 = Fma(a5, b1, c51); c52 = Fma(a5, b2, c52);
            Vector256<float> a6 = Vector256.Create(a[6]);
            c60 = Fma(a6, b0, c60); c61 = Fma(a6, b1, c61); c62 = Fma(a6, b2, c62);
            Vector256<float> a7 = Vector256.Create(a[7]);
            c70 = Fma(a7, b0, c70); c71 = Fma(a7, b1, c71); c72 = Fma(a7, b2, c72);
            a += 8;
            b += ldb;
        }
        if (beta == 0f)
        {
            var va = Vector256.Create(alpha);
            (va * c00).Store(c + 0 * ldc + 0); (va * c01).Store(c + 0 * ldc + 8); (va * c02).Store(c + 0 * ldc + 16);
            (va * c10).Store(c + 1 * ldc + 0); (va * c11).Store(c + 1 * ldc + 8); (va * c12).Store(c + 1 * ldc + 16);
            (va * c20).Store(c + 2 * ldc + 0); (va * c21).Store(c + 2 * ldc + 8); (va * c22).Store(c + 2 * ldc + 16);
            (va * c30).Store(c + 3 * ldc + 0); (va * c31).Store(c + 3 * ldc + 8); (va * c32).Store(c + 3 * ldc + 16);
            (va * c40).Store(c + 4 * ldc + 0); (va * c41).Store(c + 4 * ldc + 8); (va * c42).Store(c + 4 * ldc + 16);
            (va * c50).Store(c + 5 * ldc + 0); (va * c51).Store(c + 5 * ldc + 8); (va * c52).Store(c + 5 * ldc + 16);
            (va * c60).Store(c + 6 * ldc + 0); (va * c61).Store(c + 6 * ldc + 8); (va * c62).Store(c + 6 * ldc + 16);
            (va * c70).Store(c + 7 * ldc + 0); (va * c71).Store(c + 7 * ldc + 8); (va * c72).Store(c + 7 * ldc + 16);
        }
        else
        {
            var va = Vector256.Create(alpha);
            var vb = Vector256.Create(beta);
            Update(c + 0 * ldc + 0, va * c00, vb);
            Update(c + 0 * ldc + 8, va * c01, vb);
            Update(c + 0 * ldc + 16, va * c02, vb);
            Update(c + 1 * ldc + 0, va * c10, vb);
            Update(c + 1 * ldc + 8, va * c11, vb);
            Update(c + 1 * ldc + 16, va * c12, vb);
            Update(c + 2 * ldc + 0, va * c20, vb);
            Update(c + 2 * ldc + 8, va * c21, vb);
            Update(c + 2 * ldc + 16, va * c22, vb);
            Update(c + 3 * ldc + 0, va * c30, vb);
            Update(c + 3 * ldc + 8, va * c31, vb);
            Update(c + 3 * ldc + 16, va * c32, vb);
            Update(c + 4 * ldc + 0, va * c40, vb);
            Update(c + 4 * ldc + 8, va * c41, vb);
            Update(c + 4 * ldc + 16, va * c42, vb);
            Update(c + 5 * ldc + 0, va * c50, vb);
            Update(c + 5 * ldc + 8, va * c51, vb);
            Update(c + 5 * ldc + 16, va * c52, vb);
            Update(c + 6 * ldc + 0, va * c60, vb);
            Update(c + 6 * ldc + 8, va * c61, vb);
            Update(c + 6 * ldc + 16, va * c62, vb);
            Update(c + 7 * ldc + 0, va * c70, vb);
            Update(c + 7 * ldc + 8, va * c71, vb);
            Update(c + 7 * ldc + 16, va * c72, vb);
        }
    }

    /// <summary>6×32 tile with 12 Vector512 accumulators: per p, 2 loads of B, 6 broadcasts of packed A, 12 FMAs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Avx512_6x32(float* a, float* b, int ldb, int kc, float* c, int ldc, float alpha, float beta)
    {
        Vector512<float> c00 = default; Vector512<float> c01 = default;
        Vector512<float> c10 = default; Vector512<float> c11 = default;
        Vector512<float> c20 = default; Vector512<float> c21 = default;
        Vector512<float> c30 = default; Vector512<float> c31 = default;
        Vector512<float> c40 = default; Vector512<float> c41 = default;
        Vector512<float> c50 = default; Vector512<float> c51 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector512<float> b0 = Vector512.Load(b + 0);
            Vector512<float> b1 = Vector512.Load(b + 16);
            Vector512<float> a0 = Vector512.Create(a[0]);
            c00 = Fma512(a0, b0, c00); c01 = Fma512(a0, b1, c01);
            Vector512<float> a1 = Vector512.Create(a[1]);
            c10 = Fma512(a1, b0, c10); c11 = Fma512(a1, b1, c11);
            Vector512<float> a2 = Vector512.Create(a[2]);
            c20 = Fma512(a2, b0, c20); c21 = Fma512(a2, b1, c21);
            Vector512<float> a3 = Vector512.Create(a[3]);
            c30 = Fma512(a3, b0, c30); c31 = Fma512(a3, b1, c31);
            Vector512<float> a4 = Vector512.Create(a[4]);
            c40 = Fma512(a4, b0, c40); c41 = Fma512(a4, b1, c41);
            Vector512<float> a5 = Vector512.Create(a[5]);
            c50 = Fma512(a5, b0, c50); c51 = Fma512(a5, b1, c51);
            a += 6;
            b += ldb;
        }
        if (beta == 0f)
        {
            var va = Vector512.Create(alpha);
            (va * c00).Store(c + 0 * ldc + 0); (va * c01).Store(c + 0 * ldc + 16);
            (va * c10).Store(c + 1 * ldc + 0); (va * c11).Store(c + 1 * ldc + 16);
            (va * c20).Store(c + 2 * ldc + 0); (va * c21).Store(c + 2 * ldc + 16);
            (va * c30).Store(c + 3 * ldc + 0); (va * c31).Store(c + 3 * ldc + 16);
            (va * c40).Store(c + 4 * ldc + 0); (va * c41).Store(c + 4 * ldc + 16);
            (va * c50).Store(c + 5 * ldc + 0); (va * c51).Store(c + 5 * ldc + 16);
        }
        else
        {
            var va = Vector512.Create(alpha);
            var vb = Vector512.Create(beta);
            Update(c + 0 * ldc + 0, va * c00, vb);
            Update(c + 0 * ldc + 16, va * c01, vb);
            Update(c + 1 * ldc + 0, va * c10, vb);
            Update(c + 1 * ldc + 16, va * c11, vb);
            Update(c + 2 * ldc + 0, va * c20, vb);
            Update(c + 2 * ldc + 16, va * c21, vb);
            Update(c + 3 * ldc + 0, va * c30, vb);
            Update(c + 3 * ldc + 16, va * c31, vb);
            Update(c + 4 * ldc + 0, va * c40, vb);
            Update(c + 4 * ldc + 16, va * c41, vb);
            Update(c + 5 * ldc + 0, va * c50, vb);
            Update(c + 5 * ldc + 16, va * c51, vb);
        }
    }

    /// <summary>8×32 tile with 16 Vector512 accumulators: per p, 2 loads of B, 8 broadcasts of packed A, 16 FMAs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Avx512_8x32(float* a, float* b, int ldb, int kc, float* c, int ldc, float alpha, float beta)
    {
        Vector512<float> c00 = default; Vector512<float> c01 = default;
        Vector512<float> c10 = default; Vector512<float> c11 = default;
        Vector512<float> c20 = default; Vector512<float> c21 = default;
        Vector512<float> c30 = default; Vector512<float> c31 = default;
        Vector512<float> c40 = default; Vector512<float> c41 = default;
        Vector512<float> c50 = default; Vector512<float> c51 = default;
        Vector512<float> c60 = default; Vector512<float> c61 = default;
        Vector512<float> c70 = default; Vector512<float> c71 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector512<float> b0 = Vector512.Load(b + 0);
            Vector512<float> b1 = Vector512.Load(b + 16);
            Vector512<float> a0 = Vector512.Create(a[0]);
            c00 = Fma512(a0, b0, c00); c01 = Fma512(a0, b1, c01);
            Vector512<float> a1 = Vector512.Create(a[1]);
            c10 = Fma512(a1, b0, c10); c11 = Fma512(a1, b1, c11);
            Vector512<float> a2 = Vector512.Create(a[2]);
            c20 = Fma512(a2, b0, c20); c21 = Fma512(a2, b1, c21);
            Vector512<float> a3 = Vector512.Create(a[3]);
            c30 = Fma512(a3, b0, c30); c31 = Fma512(a3, b1, c31);
            Vector512<float> a4 = Vector512.Create(a[4]);
            c40 = Fma512(a4, b0, c40); c41 = Fma512(a4, b1, c41);
            Vector512<float> a5 = Vector512.Create(a[5]);
            c50 = Fma512(a5, b0, c50); c51 = Fma512(a5, b1, c51);
            Vector512<float> a6 = Vector512.Create(a[6]);
            c60 = Fma512(a6, b0, c60); c61 = Fma512(a6, b1, c61);
            Vector512<float> a7 = Vector512.Create(a[7]);
            c70 = Fma512(a7, b0, c70); c71 = Fma512(a7, b1, c71);
            a += 8;
            b += ldb;
        }
        if (beta == 0f)
        {
            var va = Vector512.Create(alpha);
            (va * c00).Store(c + 0 * ldc + 0); (va * c01).Store(c + 0 * ldc + 16);
            (va * c10).Store(c + 1 * ldc + 0); (va * c11).Store(c + 1 * ldc + 16);
            (va * c20).Store(c + 2 * ldc + 0); (va * c21).Store(c + 2 * ldc + 16);
            (va * c30).Store(c + 3 * ldc + 0); (va * c31).Store(c + 3 * ldc + 16);
            (va * c40).Store(c + 4 * ldc + 0); (va * c41).Store(c + 4 * ldc + 16);
            (va * c50).Store(c + 5 * ldc + 0); (va * c51).Store(c + 5 * ldc + 16);
            (va * c60).Store(c + 6 * ldc + 0); (va * c61).Store(c + 6 * ldc + 16);
            (va * c70).Store(c + 7 * ldc + 0); (va * c71).Store(c + 7 * ldc + 16);
        }
        else
        {
            var va = Vector512.Create(alpha);
            var vb = Vector512.Create(beta);
            Update(c + 0 * ldc + 0, va * c00, vb);
            Update(c + 0 * ldc + 16, va * c01, vb);
            Update(c + 1 * ldc + 0, va * c10, vb);
            Update(c + 1 * ldc + 16, va * c11, vb);
            Update(c + 2 * ldc + 0, va * c20, vb);
            Update(c + 2 * ldc + 16, va * c21, vb);
            Update(c + 3 * ldc + 0, va * c30, vb);
            Update(c + 3 * ldc + 16, va * c31, vb);
            Update(c + 4 * ldc + 0, va * c40, vb);
            Update(c + 4 * ldc + 16, va * c41, vb);
            Update(c + 5 * ldc + 0, va * c50, vb);
            Update(c + 5 * ldc + 16, va * c51, vb);
            Update(c + 6 * ldc + 0, va * c60, vb);
            Update(c + 6 * ldc + 16, va * c61, vb);
            Update(c + 7 * ldc + 0, va * c70, vb);
            Update(c + 7 * ldc + 16, va * c71, vb);
        }
    }

    /// <summary>12×32 tile with 24 Vector512 accumulators: per p, 2 loads of B, 12 broadcasts of packed A, 24 FMAs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Avx512_12x32(float* a, float* b, int ldb, int kc, float* c, int ldc, float alpha, float beta)
    {
        Vector512<float> c00 = default; Vector512<float> c01 = default;
        Vector512<float> c10 = default; Vector512<float> c11 = default;
        Vector512<float> c20 = default; Vector512<float> c21 = default;
        Vector512<float> c30 = default; Vector512<float> c31 = default;
        Vector512<float> c40 = default; Vector512<float> c41 = default;
        Vector512<float> c50 = default; Vector512<float> c51 = default;
        Vector512<float> c60 = default; Vector512<float> c61 = default;
        Vector512<float> c70 = default; Vector512<float> c71 = default;
        Vector512<float> c80 = default; Vector512<float> c81 = default;
        Vector512<float> c90 = default; Vector512<float> c91 = default;
        Vector512<float> c100 = default; Vector512<float> c101 = default;
        Vector512<float> c110 = default; Vector512<float> c111 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector512<float> b0 = Vector512.Load(b + 0);
            Vector512<float> b1 = Vector512.Load(b + 16);
            Vector512<float> a0 = Vector512.Create(a[0]);
            c00 = Fma512(a0, b0, c00); c01 = Fma512(a0, b1, c01);
            Vector512<float> a1 = Vector512.Create(a[1]);
            c10 = Fma512(a1, b0, c10); c11 = Fma512(a1, b1, c11);
            Vector512<float> a2 = Vector512.Create(a[2]);
            c20 = Fma512(a2, b0, c20); c21 = Fma512(a2, b1, c21);
            Vector512<float> a3 = Vector512.Create(a[3]);
            c30 = Fma512(a3, b0, c30); c31 = Fma512(a3, b1, c31);
            Vector512<float> a4 = Vector512.Create(a[4]);
            c40 = Fma512(a4, b0, c40); c41 = Fma512(a4, b1, c41);
            Vector512<float> a5 = Vector512.Create(a[5]);
            c50 = Fma512(a5, b0, c50); c51 = Fma512(a5, b1, c51);
            Vector512<float> a6 = Vector512.Create(a[6]);
            c60 = Fma512(a6, b0, c60); c61 = Fma512(a6, b1, c61);
            Vector512<float> a7 = Vector512.Create(a[7]);
            c70 = Fma512(a7, b0, c70); c71 = Fma512(a7, b1, c71);
            Vector512<float> a8 = Vector512.Create(a[8]);
            c80 = Fma512(a8, b0, c80); c81 = Fma512(a8, b1, c81);
            Vector512<float> a9 = Vector512.Create(a[9]);
            c90 = Fma512(a9, b0, c90); c91 = Fma512(a9, b1, c91);
            Vector512<float> a10 = Vector512.Create(a[10]);
            c100 = Fma512(a10, b0, c100); c101 = Fma512(a10, b1, c101);
            Vector512<float> a11 = Vector512.Create(a[11]);
            c110 = Fma512(a11, b0, c110); c111 = Fma512(a11, b1, c111);
            a += 12;
            b += ldb;
        }
        if (beta == 0f)
        {
            var va = Vector512.Create(alpha);
            (va * c00).Store(c + 0 * ldc + 0); (va * c01).Store(c + 0 * ldc + 16);
            (va * c10).Store(c + 1 * ldc + 0); (va * c11).Store(c + 1 * ldc + 16);
            (va * c20).Store(c + 2 * ldc + 0); (va * c21).Store(c + 2 * ldc + 16);
            (va * c30).Store(c + 3 * ldc + 0); (va * c31).Store(c + 3 * ldc + 16);
            (va * c40).Store(c + 4 * ldc + 0); (va * c41).Store(c + 4 * ldc + 16);
            (va * c50).Store(c + 5 * ldc + 0); (va * c51).Store(c + 5 * ldc + 16);
            (va * c60).Store(c + 6 * ldc + 0); (va * c61).Store(c + 6 * ldc + 16);
            (va * c70).Store(c + 7 * ldc + 0); (va * c71).Store(c + 7 * ldc + 16);
            (va * c80).Store(c + 8 * ldc + 0); (va * c81).Store(c + 8 * ldc + 16);
            (va * c90).Store(c + 9 * ldc + 0); (va * c91).Store(c + 9 * ldc + 16);
            (va * c100).Store(c + 10 * ldc + 0); (va * c101).Store(c + 10 * ldc + 16);
            (va * c110).Store(c + 11 * ldc + 0); (va * c111).Store(c + 11 * ldc + 16);
        }
        else
        {
            var va = Vector512.Create(alpha);
            var vb = Vector512.Create(beta);
            Update(c + 0 * ldc + 0, va * c00, vb);
            Update(c + 0 * ldc + 16, va * c01, vb);
            Update(c + 1 * ldc + 0, va * c10, vb);
            Update(c + 1 * ldc + 16, va * c11, vb);
            Update(c + 2 * ldc + 0, va * c20, vb);
            Update(c + 2 * ldc + 16, va * c21, vb);
            Update(c + 3 * ldc + 0, va * c30, vb);
            Update(c + 3 * ldc + 16, va * c31, vb);
            Update(c + 4 * ldc + 0, va * c40, vb);
            Update(c + 4 * ldc + 16, va * c41, vb);
            Update(c + 5 * ldc + 0, va * c50, vb);
            Update(c + 5 * ldc + 16, va * c51, vb);
            Update(c + 6 * ldc + 0, va * c60, vb);
            Update(c + 6 * ldc + 16, va * c61, vb);
            Update(c + 7 * ldc + 0, va * c70, vb);
            Update(c + 7 * ldc + 16, va * c71, vb);
            Update(c + 8 * ldc + 0, va * c80, vb);
            Update(c + 8 * ldc + 16, va * c81, vb);
            Update(c + 9 * ldc + 0, va * c90, vb);
            Update(c + 9 * ldc + 16, va * c91, vb);
            Update(c + 10 * ldc + 0, va * c100, vb);
            Update(c + 10 * ldc + 16, va * c101, vb);
            Update(c + 11 * ldc + 0, va * c110, vb);
            Update(c + 11 * ldc + 16, va * c111, vb);
        }
    }

    /// <summary>14×32 tile with 28 Vector512 accumulators: per p, 2 loads of B, 14 broadcasts of packed A, 28 FMAs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Avx512_14x32(float* a, float* b, int ldb, int kc, float* c, int ldc, float alpha, float beta)
    {
        Vector512<float> c00 = default; Vector512<float> c01 = default;
        Vector512<float> c10 = default; Vector512<float> c11 = default;
        Vector512<float> c20 = default; Vector512<float> c21 = default;
        Vector512<float> c30 = default; Vector512<float> c31 = default;
        Vector512<float> c40 = default; Vector512<float> c41 = default;
        Vector512<float> c50 = default; Vector512<float> c51 = default;
        Vector512<float> c60 = default; Vector512<float> c61 = default;
        Vector512<float> c70 = default; Vector512<float> c71 = default;
        Vector512<float> c80 = default; Vector512<float> c81 = default;
        Vector512<float> c90 = default; Vector512<float> c91 = default;
        Vector512<float> c100 = default; Vector512<float> c101 = default;
        Vector512<float> c110 = default; Vector512<float> c111 = default;
        Vector512<float> c120 = default; Vector512<float> c121 = default;
        Vector512<float> c130 = default; Vector512<float> c131 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector512<float> b0 = Vector512.Load(b + 0);
            Vector512<float> b1 = Vector512.Load(b + 16);
            Vector512<float> a0 = Vector512.Create(a[0]);
            c00 = Fma512(a0, b0, c00); c01 = Fma512(a0, b1, c01);
            Vector512<float> a1 = Vector512.Create(a[1]);
            c10 = Fma512(a1, b0, c10); c11 = Fma512(a1, b1, c11);
            Vector512<float> a2 = Vector512.Create(a[2]);
            c20 = Fma512(a2, b0, c20); c21 = Fma512(a2, b1, c21);
            Vector512<float> a3 = Vector512.Create(a[3]);
            c30 = Fma512(a3, b0, c30); c31 = Fma512(a3, b1, c31);
            Vector512<float> a4 = Vector512.Create(a[4]);
            c40 = Fma512(a4, b0, c40); c41 = Fma512(a4, b1, c41);
            Vector512<float> a5 = Vector512.Create(a[5]);
            c50 = Fma512(a5, b0, c50); c51 = Fma512(a5, b1, c51);
            Vector512<float> a6 = Vector512.Create(a[6]);
            c60 = Fma512(a6, b0, c60); c61 = Fma512(a6, b1, c61);
            Vector512<float> a7 = Vector512.Create(a[7]);
            c70 = Fma512(a7, b0, c70); c71 = Fma512(a7, b1, c71);
            Vector512<float> a8 = Vector512.Create(a[8]);
            c80 = Fma512(a8, b0, c80); c81 = Fma512(a8, b1, c81);
            Vector512<float> a9 = Vector512.Create(a[9]);
            c90 = Fma512(a9, b0, c90); c91 = Fma512(a9, b1, c91);
            Vector512<float> a10 = Vector512.Create(a[10]);
            c100 = Fma512(a10, b0, c100); c101 = Fma512(a10, b1, c101);
            Vector512<float> a11 = Vector512.Create(a[11]);
            c110 = Fma512(a11, b0, c110); c111 = Fma512(a11, b1, c111);
            Vector512<float> a12 = Vector512.Create(a[12]);
            c120 = Fma512(a12, b0, c120); c121 = Fma512(a12, b1, c121);
            Vector512<float> a13 = Vector512.Create(a[13]);
            c130 = Fma512(a13, b0, c130); c131 = Fma512(a13, b1, c131);
            a += 14;
            b += ldb;
        }
        if (beta == 0f)
        {
            var va = Vector512.Create(alpha);
            (va * c00).Store(c + 0 * ldc + 0); (va * c01).Store(c + 0 * ldc + 16);
            (va * c10).Store(c + 1 * ldc + 0); (va * c11).Store(c + 1 * ldc + 16);
            (va * c20).Store(c + 2 * ldc + 0); (va * c21).Store(c + 2 * ldc + 16);
            (va * c30).Store(c + 3 * ldc + 0); (va * c31).Store(c + 3 * ldc + 16);
            (va * c40).Store(c + 4 * ldc + 0); (va * c41).Store(c + 4 * ldc + 16);
            (va * c50).Store(c + 5 * ldc + 0); (va * c51).Store(c + 5 * ldc + 16);
            (va * c60).Store(c + 6 * ldc + 0); (va * c61).Store(c + 6 * ldc + 16);
            (va * c70).Store(c + 7 * ldc + 0); (va * c71).Store(c + 7 * ldc + 16);
            (va * c80).Store(c + 8 * ldc + 0); (va * c81).Store(c + 8 * ldc + 16);
            (va * c90).Store(c + 9 * ldc + 0); (va * c91).Store(c + 9 * ldc + 16);
            (va * c100).Store(c + 10 * ldc + 0); (va * c101).Store(c + 10 * ldc + 16);
            (va * c110).Store(c + 11 * ldc + 0); (va * c111).Store(c + 11 * ldc + 16);
            (va * c120).Store(c + 12 * ldc + 0); (va * c121).Store(c + 12 * ldc + 16);
            (va * c130).Store(c + 13 * ldc + 0); (va * c131).Store(c + 13 * ldc + 16);
        }
        else
        {
            var va = Vector512.Create(alpha);
            var vb = Vector512.Create(beta);
            Update(c + 0 * ldc + 0, va * c00, vb);
            Update(c + 0 * ldc + 16, va * c01, vb);
            Update(c + 1 * ldc + 0, va * c10, vb);
            Update(c + 1 * ldc + 16, va * c11, vb);
            Update(c + 2 * ldc + 0, va * c20, vb);
            Update(c + 2 * ldc + 16, va * c21, vb);
            Update(c + 3 * ldc + 0, va * c30, vb);
            Update(c + 3 * ldc + 16, va * c31, vb);
            Update(c + 4 * ldc + 0, va * c40, vb);
            Update(c + 4 * ldc + 16, va * c41, vb);
            Update(c + 5 * ldc + 0, va * c50, vb);
            Update(c + 5 * ldc + 16, va * c51, vb);
            Update(c + 6 * ldc + 0, va * c60, vb);
            Update(c + 6 * ldc + 16, va * c61, vb);
            Update(c + 7 * ldc + 0, va * c70, vb);
            Update(c + 7 * ldc + 16, va * c71, vb);
            Update(c + 8 * ldc + 0, va * c80, vb);
            Update(c + 8 * ldc + 16, va * c81, vb);
            Update(c + 9 * ldc + 0, va * c90, vb);
            Update(c + 9 * ldc + 16, va * c91, vb);
            Update(c + 10 * ldc + 0, va * c100, vb);
            Update(c + 10 * ldc + 16, va * c101, vb);
            Update(c + 11 * ldc + 0, va * c110, vb);
            Update(c + 11 * ldc + 16, va * c111, vb);
            Update(c + 12 * ldc + 0, va * c120, vb);
            Update(c + 12 * ldc + 16, va * c121, vb);
            Update(c + 13 * ldc + 0, va * c130, vb);
            Update(c + 13 * ldc + 16, va * c131, vb);
        }
    }

    /// <summary>8×16 tile with 8 Vector512 accumulators: per p, 1 loads of B, 8 broadcasts of packed A, 8 FMAs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Avx512_8x16(float* a, float* b, int ldb, int kc, float* c, int ldc, float alpha, float beta)
    {
        Vector512<float> c00 = default;
        Vector512<float> c10 = default;
        Vector512<float> c20 = default;
        Vector512<float> c30 = default;
        Vector512<float> c40 = default;
        Vector512<float> c50 = default;
        Vector512<float> c60 = default;
        Vector512<float> c70 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector512<float> b0 = Vector512.Load(b + 0);
            Vector512<float> a0 = Vector512.Create(a[0]);
            c00 = Fma512(a0, b0, c00);
            Vector512<float> a1 = Vector512.Create(a[1]);
            c10 = Fma512(a1, b0, c10);
            Vector512<float> a2 = Vector512.Create(a[2]);
            c20 = Fma512(a2, b0, c20);
            Vector512<float> a3 = Vector512.Create(a[3]);
            c30 = Fma512(a3, b0, c30);
            Vector512<float> a4 = Vector512.Create(a[4]);
            c40 = Fma512(a4, b0, c40);
            Vector512<float> a5 = Vector512.Create(a[5]);
            c50 = Fma512(a5, b0, c50);
            Vector512<float> a6 = Vector512.Create(a[6]);
            c60 = Fma512(a6, b0, c60);
            Vector512<float> a7 = Vector512.Create(a[7]);
            c70 = Fma512(a7, b0, c70);
            a += 8;
            b += ldb;
        }
        if (beta == 0f)
        {
            var va = Vector512.Create(alpha);
            (va * c00).Store(c + 0 * ldc + 0);
            (va * c10).Store(c + 1 * ldc + 0);
            (va * c20).Store(c + 2 * ldc + 0);
            (va * c30).Store(c + 3 * ldc + 0);
            (va * c40).Store(c + 4 * ldc + 0);
            (va * c50).Store(c + 5 * ldc + 0);
            (va * c60).Store(c + 6 * ldc + 0);
            (va * c70).Store(c + 7 * ldc + 0);
        }
        else
        {
            var va = Vector512.Create(alpha);
            var vb = Vector512.Create(beta);
            Update(c + 0 * ldc + 0, va * c00, vb);
            Update(c + 1 * ldc + 0, va * c10, vb);
            Update(c + 2 * ldc + 0, va * c20, vb);
            Update(c + 3 * ldc + 0, va * c30, vb);
            Update(c + 4 * ldc + 0, va * c40, vb);
            Update(c + 5 * ldc + 0, va * c50, vb);
            Update(c + 6 * ldc + 0, va * c60, vb);
            Update(c + 7 * ldc + 0, va * c70, vb);
        }
    }

    /// <summary>16×16 tile with 16 Vector512 accumulators: per p, 1 loads of B, 16 broadcasts of packed A, 16 FMAs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Avx512_16x16(float* a, float* b, int ldb, int kc, float* c, int ldc, float alpha, float beta)
    {
        Vector512<float> c00 = default;
        Vector512<float> c10 = default;
        Vector512<float> c20 = default;
        Vector512<float> c30 = default;
        Vector512<float> c40 = default;
        Vector512<float> c50 = default;
        Vector512<float> c60 = default;
        Vector512<float> c70 = default;
        Vector512<float> c80 = default;
        Vector512<float> c90 = default;
        Vector512<float> c100 = default;
        Vector512<float> c110 = default;
        Vector512<float> c120 = default;
        Vector512<float> c130 = default;
        Vector512<float> c140 = default;
        Vector512<float> c150 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector512<float> b0 = Vector512.Load(b + 0);
            Vector512<float> a0 = Vector512.Create(a[0]);
            c00 = Fma512(a0, b0, c00);
            Vector512<float> a1 = Vector512.Create(a[1]);
            c10 = Fma512(a1, b0, c10);
            Vector512<float> a2 = Vector512.Create(a[2]);
            c20 = Fma512(a2, b0, c20);
            Vector512<float> a3 = Vector512.Create(a[3]);
            c30 = Fma512(a3, b0, c30);
            Vector512<float> a4 = Vector512.Create(a[4]);
            c40 = Fma512(a4, b0, c40);
            Vector512<float> a5 = Vector512.Create(a[5]);
            c50 = Fma512(a5, b0, c50);
            Vector512<float> a6 = Vector512.Create(a[6]);
            c60 = Fma512(a6, b0, c60);
            Vector512<float> a7 = Vector512.Create(a[7]);
            c70 = Fma512(a7, b0, c70);
            Vector512<float> a8 = Vector512.Create(a[8]);
            c80 = Fma512(a8, b0, c80);
            Vector512<float> a9 = Vector512.Create(a[9]);
            c90 = Fma512(a9, b0, c90);
            Vector512<float> a10 = Vector512.Create(a[10]);
            c100 = Fma512(a10, b0, c100);
            Vector512<float> a11 = Vector512.Create(a[11]);
            c110 = Fma512(a11, b0, c110);
            Vector512<float> a12 = Vector512.Create(a[12]);
            c120 = Fma512(a12, b0, c120);
            Vector512<float> a13 = Vector512.Create(a[13]);
            c130 = Fma512(a13, b0, c130);
            Vector512<float> a14 = Vector512.Create(a[14]);
            c140 = Fma512(a14, b0, c140);
            Vector512<float> a15 = Vector512.Create(a[15]);
            c150 = Fma512(a15, b0, c150);
            a += 16;
            b += ldb;
        }
        if (beta == 0f)
        {
            var va = Vector512.Create(alpha);
            (va * c00).Store(c + 0 * ldc + 0);
            (va * c10).Store(c + 1 * ldc + 0);
            (va * c20).Store(c + 2 * ldc + 0);
            (va * c30).Store(c + 3 * ldc + 0);
            (va * c40).Store(c + 4 * ldc + 0);
            (va * c50).Store(c + 5 * ldc + 0);
            (va * c60).Store(c + 6 * ldc + 0);
            (va * c70).Store(c + 7 * ldc + 0);
            (va * c80).Store(c + 8 * ldc + 0);
            (va * c90).Store(c + 9 * ldc + 0);
            (va * c100).Store(c + 10 * ldc + 0);
            (va * c110).Store(c + 11 * ldc + 0);
            (va * c120).Store(c + 12 * ldc + 0);
            (va * c130).Store(c + 13 * ldc + 0);
            (va * c140).Store(c + 14 * ldc + 0);
            (va * c150).Store(c + 15 * ldc + 0);
        }
        else
        {
            var va = Vector512.Create(alpha);
            var vb = Vector512.Create(beta);
            Update(c + 0 * ldc + 0, va * c00, vb);
            Update(c + 1 * ldc + 0, va * c10, vb);
            Update(c + 2 * ldc + 0, va * c20, vb);
            Update(c + 3 * ldc + 0, va * c30, vb);
            Update(c + 4 * ldc + 0, va * c40, vb);
            Update(c + 5 * ldc + 0, va * c50, vb);
            Update(c + 6 * ldc + 0, va * c60, vb);
            Update(c + 7 * ldc + 0, va * c70, vb);
            Update(c + 8 * ldc + 0, va * c80, vb);
            Update(c + 9 * ldc + 0, va * c90, vb);
            Update(c + 10 * ldc + 0, va * c100, vb);
            Update(c + 11 * ldc + 0, va * c110, vb);
            Update(c + 12 * ldc + 0, va * c120, vb);
            Update(c + 13 * ldc + 0, va * c130, vb);
            Update(c + 14 * ldc + 0, va * c140, vb);
            Update(c + 15 * ldc + 0, va * c150, vb);
        }
    }

}
