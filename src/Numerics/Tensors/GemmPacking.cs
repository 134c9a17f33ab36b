using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace DistSgd.Numerics.Tensors;

/// <summary>
/// Copies blocks of op(A) and op(B) into the micro-panel order the micro-kernels read
/// (GotoBLAS/BLIS packing). This is where the transposes are absorbed: after packing, every
/// micro-kernel reads both operands with unit stride whatever the transpose flags were.
/// </summary>
/// <remarks>
/// Packed op(A) block (mc×kc at row i0, column p0): slivers of <c>mr</c> rows, sliver s at
/// <c>dst + s·mr·kc</c>, element (i, p) of the sliver at <c>p·mr + i</c>.
/// Packed op(B) block (kc×nc at row p0, column j0): slivers of <c>nr</c> columns, sliver s at
/// <c>dst + s·nr·kc</c>, element (p, j) at <c>p·nr + j</c>. Rows/columns past the matrix edge are
/// packed as zeros, so the micro-kernel always computes a full tile.
/// A transposing copy (stored rows become packed columns) goes through 8×8 AVX register
/// transposes; a straight copy moves whole vectors.
/// </remarks>
internal static unsafe class GemmPacking
{
    /// <summary>Packs op(A)[i0..i0+mc, p0..p0+kc]; op(A) = A (m×k, stride lda) or Aᵀ (A stored k×m).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackA(bool transposeA, float* a, int lda, int i0, int p0, int mc, int kc, int mr, float* dst)
    {
        for (int s = 0; s * mr < mc; s++)
        {
            int rows = Math.Min(mr, mc - s * mr);
            int i = i0 + s * mr;
            float* sliver = dst + (nint)s * mr * kc;
            if (transposeA)
                // op(A)[i, p] = A[p, i]: each p is a contiguous run of `rows` floats.
                CopyRuns(a + (nint)p0 * lda + i, lda, kc, rows, mr, sliver);
            else
                // op(A)[i, p] = A[i, p]: `rows` stored rows become the sliver's columns.
                TransposeRuns(a + (nint)i * lda + p0, lda, rows, kc, mr, sliver);
        }
    }

    /// <summary>Packs op(B)[p0..p0+kc, j0..j0+nc]; op(B) = B (k×n, stride ldb) or Bᵀ (B stored n×k).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackB(bool transposeB, float* b, int ldb, int p0, int j0, int kc, int nc, int nr, float* dst)
    {
        for (int s = 0; s * nr < nc; s++)
        {
            int cols = Math.Min(nr, nc - s * nr);
            int j = j0 + s * nr;
            float* sliver = dst + (nint)s * nr * kc;
            if (transposeB)
                TransposeRuns(b + (nint)j * ldb + p0, ldb, cols, kc, nr, sliver);
            else
                CopyRuns(b + (nint)p0 * ldb + j, ldb, kc, cols, nr, sliver);
        }
    }

    /// <summary>
    /// dst[p·width + x] = src[p·stride + x] for x &lt; count, 0 for count ≤ x &lt; width; p &lt; runs.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void CopyRuns(float* src, int stride, int runs, int count, int width, float* dst)
    {
        if (count == width && (width & 7) == 0 && Vector256.IsHardwareAccelerated)
        {
            for (int p = 0; p < runs; p++, src += stride, dst += width)
                for (int x = 0; x < width; x += 8)
                    Vector256.Load(src + x).Store(dst + x);
            return;
        }
        if (count == 6 && width == 6 && Vector128.IsHardwareAccelerated)
        {
            // The AVX2 6-row sliver (dW = Xᵀ·dY packs A this way): 4 + 2 floats per p.
            for (int p = 0; p < runs; p++, src += stride, dst += width)
            {
                Vector128.Load(src).Store(dst);
                *(double*)(dst + 4) = *(double*)(src + 4);
            }
            return;
        }
        for (int p = 0; p < runs; p++, src += stride, dst += width)
        {
            int x = 0;
            for (; x < count; x++) dst[x] = src[x];
            for (; x < width; x++) dst[x] = 0f;
        }
    }

    /// <summary>
    /// dst[p·width + r] = src[r·stride + p] for r &lt; rows, 0 for rows ≤ r &lt; width; p &lt; length.
    /// Eight stored rows at a time are read eight floats wide and transposed in registers.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TransposeRuns(float* src, int stride, int rows, int length, int width, float* dst)
    {
        int p = 0;
        if (Avx.IsSupported)
        {
            for (; p + 8 <= length; p += 8)
            {
                for (int r0 = 0; r0 < width; r0 += 8)
                {
                    int valid = Math.Min(8, rows - r0);      // stored rows present in this group (may be ≤ 0)
                    int lanes = Math.Min(8, width - r0);     // packed lanes this group owns
                    float* s = src + (nint)r0 * stride + p;
                    Vector256<float> v0 = valid > 0 ? Avx.LoadVector256(s) : default;
                    Vector256<float> v1 = valid > 1 ? Avx.LoadVector256(s + stride) : default;
                    Vector256<float> v2 = valid > 2 ? Avx.LoadVector256(s + 2 * (nint)stride) : default;
                    Vector256<float> v3 = valid > 3 ? Avx.LoadVector256(s + 3 * (nint)stride) : default;
                    Vector256<float> v4 = valid > 4 ? Avx.LoadVector256(s + 4 * (nint)stride) : default;
                    Vector256<float> v5 = valid > 5 ? Avx.LoadVector256(s + 5 * (nint)stride) : default;
                    Vector256<float> v6 = valid > 6 ? Avx.LoadVector256(s + 6 * (nint)stride) : default;
                    Vector256<float> v7 = valid > 7 ? Avx.LoadVector256(s + 7 * (nint)stride) : default;
                    Transpose8x8(ref v0, ref v1, ref v2, ref v3, ref v4, ref v5, ref v6, ref v7);
                    float* d = dst + (nint)p * width + r0;
                    StoreLanes(d, v0, lanes);
                    StoreLanes(d + width, v1, lanes);
                    StoreLanes(d + 2 * width, v2, lanes);
                    StoreLanes(d + 3 * width, v3, lanes);
                    StoreLanes(d + 4 * width, v4, lanes);
                    StoreLanes(d + 5 * width, v5, lanes);
                    StoreLanes(d + 6 * width, v6, lanes);
                    StoreLanes(d + 7 * width, v7, lanes);
                }
            }
        }
        for (; p < length; p++)
        {
            float* d = dst + (nint)p * width;
            int r = 0;
            for (; r < rows; r++) d[r] = src[(nint)r * stride + p];
            for (; r < width; r++) d[r] = 0f;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreLanes(float* d, Vector256<float> v, int lanes)
    {
        if (lanes == 8)
        {
            v.Store(d);
            return;
        }
        if (lanes == 6)
        {
            // The AVX2 6-row sliver: 4 + 2 floats, not 6 element extractions.
            v.GetLower().Store(d);
            *(double*)(d + 4) = v.GetUpper().AsDouble().ToScalar();
            return;
        }
        // Only the first `lanes` floats belong to this group; the rest is the next packed row.
        for (int x = 0; x < lanes; x++) d[x] = v.GetElement(x);
    }

    /// <summary>In-register transpose: row r of the input becomes column r of the output.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Transpose8x8(ref Vector256<float> r0, ref Vector256<float> r1, ref Vector256<float> r2, ref Vector256<float> r3,
                                      ref Vector256<float> r4, ref Vector256<float> r5, ref Vector256<float> r6, ref Vector256<float> r7)
    {
        var t0 = Avx.UnpackLow(r0, r1);
        var t1 = Avx.UnpackHigh(r0, r1);
        var t2 = Avx.UnpackLow(r2, r3);
        var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5);
        var t5 = Avx.UnpackHigh(r4, r5);
        var t6 = Avx.UnpackLow(r6, r7);
        var t7 = Avx.UnpackHigh(r6, r7);
        var u0 = Avx.Shuffle(t0, t2, 0x44);
        var u1 = Avx.Shuffle(t0, t2, 0xEE);
        var u2 = Avx.Shuffle(t1, t3, 0x44);
        var u3 = Avx.Shuffle(t1, t3, 0xEE);
        var u4 = Avx.Shuffle(t4, t6, 0x44);
        var u5 = Avx.Shuffle(t4, t6, 0xEE);
        var u6 = Avx.Shuffle(t5, t7, 0x44);
        var u7 = Avx.Shuffle(t5, t7, 0xEE);
        r0 = Avx.Permute2x128(u0, u4, 0x20);
        r1 = Avx.Permute2x128(u1, u5, 0x20);
        r2 = Avx.Permute2x128(u2, u6, 0x20);
        r3 = Avx.Permute2x128(u3, u7, 0x20);
        r4 = Avx.Permute2x128(u0, u4, 0x31);
        r5 = Avx.Permute2x128(u1, u5, 0x31);
        r6 = Avx.Permute2x128(u2, u6, 0x31);
        r7 = Avx.Permute2x128(u3, u7, 0x31);
    }
}
