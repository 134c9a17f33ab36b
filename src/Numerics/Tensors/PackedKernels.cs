using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;

namespace DistSgd.Numerics.Tensors;

/// <summary>
/// A blocked, packed SIMD GEMM in the GotoBLAS/BLIS style: op(A) and op(B) are copied block by
/// block into micro-panel order (which absorbs any transpose), and a register-blocked micro-kernel
/// computes MR×NR tiles of C from them with FMAs.
/// </summary>
/// <remarks>
/// <para>Loops, outermost first: column panels of C (NC) → k blocks (KC; op(B) panel packed, stays
/// in L2/L3) → row blocks (MC; op(A) block packed, stays in L2) → NR-wide slivers of B (one stays
/// in L1) → MR-high slivers of A → micro-kernel. When op(B) = B and m ≤ MC (the forward pass at
/// batch 64), B is not packed but read in place: each sliver is then used by consecutive tiles
/// only, and packing would be a whole extra pass over the largest operand. A kernel with a
/// <see cref="GemmMicroKernel.RunCopyB"/> variant (AVX2) has the first tile of each sliver store the
/// rows it reads as a packed sliver, which the sliver's other tiles then read from L1: rows ldb
/// apart fall into few L1 sets. The kernels, the packing and this loop are AggressiveOptimization,
/// compiled optimized at their first call: their tier-0 code runs many times slower.</para>
/// <para>Determinism: an element of C is always computed by one thread, summing p in ascending
/// order within each k block, and the k blocks (which depend on k alone) in ascending order, each
/// folded in as C ← round(α·acc) + round(β'·C) with β' = β for the first block and 1 after. Threads
/// split C into disjoint column (or row) ranges and never change that order, so results are
/// bit-identical run after run and for every thread count. They differ from other
/// implementations (e.g. <see cref="NaiveKernels"/>, which sums in double) by rounding only.</para>
/// <para>With threads &gt; 1, C is cut into as many parts as threads (whole tiles, along its larger
/// dimension) and the caller and pooled workers claim parts; a part that a busy worker has not
/// claimed is run by the caller. Threads pay only on otherwise idle cores: with another process on
/// the second core, two threads measured slower than one (bench/README.md).</para>
/// <para>α = 0 or k = 0 gives C ← β·C without reading A or B, as BLAS does.</para>
/// <para>Pack buffers live in [ThreadStatic] storage (allocated on a thread's first call, grown when a
/// larger product needs more; at most (MC + NC)·KC floats, 2.3 MB, per calling thread), so
/// steady-state calls allocate nothing, and one instance may be
/// called from several threads at once. With threads &gt; 1, a concurrent caller that finds the
/// worker pool busy computes its product on its own thread, with the same result.</para>
/// </remarks>
public sealed unsafe class PackedKernels : IMatrixKernels, IDisposable
{
    /// <summary>
    /// Default block sizes, measured on Zen 4 (32 KiB L1d, 1 MiB L2 per core): KC from 256 to 800 and
    /// MC from 64 to 256 are all within noise of each other; a long KC means fewer passes over C.
    /// </summary>
    internal const int DefaultKc = 512, DefaultMc = 128, DefaultNc = 1024;

    /// <summary>
    /// Below this many flops (2·m·n·k) a product runs on the calling thread alone: waking a worker
    /// costs more than it saves.
    /// </summary>
    public const long DefaultParallelMinFlops = 4_000_000;

    private readonly GemmMicroKernel _kernel;
    private readonly int _kc, _mc, _nc;
    private readonly GemmWorkerPool? _pool;
    private readonly ParallelGemm? _job;
    private readonly object _jobGate = new();

    [ThreadStatic] private static float[]? t_packA;
    [ThreadStatic] private static float[]? t_packB;

    /// <summary>Creates a kernel set using the best micro-kernel this CPU supports.</summary>
    /// <param name="threads">Threads per call (the caller plus threads−1 pooled workers); at least 1.</param>
    public PackedKernels(int threads = 1)
        : this(threads, GemmMicroKernel.Best(), DefaultKc, DefaultMc, DefaultNc, DefaultParallelMinFlops)
    {
    }

    internal PackedKernels(int threads, GemmMicroKernel kernel, int kc, int mc, int nc, long parallelMinFlops)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(kc, 8);
        if (kc % 8 != 0) throw new ArgumentException($"KC must be a multiple of 8, got {kc}.", nameof(kc));
        _kernel = kernel;
        _kc = kc;
        _mc = RoundUp(Math.Max(mc, kernel.Mr), kernel.Mr);
        _nc = RoundUp(Math.Max(nc, kernel.Nr), kernel.Nr);
        Threads = threads;
        ParallelMinFlops = parallelMinFlops;
        if (threads > 1)
        {
            _pool = new GemmWorkerPool(threads - 1);
            _job = new ParallelGemm(this, threads);
        }
        Name = $"packed-{kernel.Isa} ({threads} thread{(threads == 1 ? "" : "s")})";
    }

    public string Name { get; }

    public int Threads { get; }

    /// <summary>Products smaller than this (in flops, 2·m·n·k) run on one thread.</summary>
    public long ParallelMinFlops { get; }

    /// <summary>Whether an untransposed B may be read in place instead of packed (see <see cref="Serial"/>); for measuring.</summary>
    internal bool ReadBInPlace { get; init; } = true;

    /// <summary>
    /// With a single row block (m ≤ MC), pack op(B) one NR-wide sliver at a time, just before the
    /// tiles that use it, instead of the whole block up front (see <see cref="Serial"/>); for measuring.
    /// </summary>
    internal bool PackBPerSliver { get; init; }

    /// <summary>
    /// When B is read in place and the kernel has <see cref="GemmMicroKernel.RunCopyB"/>, the first tile of
    /// each sliver packs it as it goes and the other tiles read the packed copy (see <see cref="Serial"/>); for measuring.
    /// </summary>
    internal bool CopyBInFirstTile { get; init; } = true;

    /// <summary>
    /// When B is read in place, the tiles after a sliver's first share out prefetches of the next sliver's
    /// rows (see <see cref="Serial"/>); for measuring.
    /// </summary>
    internal bool PrefetchNextSliver { get; init; } = true;

    /// <summary>
    /// A C narrower than one B sliver and taller than wide is computed transposed (see <see cref="Serial"/>); for measuring.
    /// </summary>
    internal bool TransposeNarrowC { get; init; } = true;

    /// <summary>
    /// A last row tile of <see cref="GemmMicroKernel.ShortRows"/> rows runs the kernel's short variant straight into C
    /// instead of a full tile into the scratch tile; for measuring.
    /// </summary>
    internal bool UseShortRowKernel { get; init; } = true;

    /// <summary>The micro-kernel in use, e.g. "avx512-12x32".</summary>
    public string MicroKernel => _kernel.Name;

    public void Gemm(bool transposeA, bool transposeB, int m, int n, int k,
                     float alpha, ReadOnlySpan<float> a, int lda,
                     ReadOnlySpan<float> b, int ldb,
                     float beta, Span<float> c, int ldc)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(m);
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        ArgumentOutOfRangeException.ThrowIfNegative(k);
        CheckOperand(nameof(a), a.Length, transposeA ? k : m, transposeA ? m : k, lda, nameof(lda));
        CheckOperand(nameof(b), b.Length, transposeB ? n : k, transposeB ? k : n, ldb, nameof(ldb));
        CheckOperand(nameof(c), c.Length, m, n, ldc, nameof(ldc));
        if (m == 0 || n == 0) return;

        fixed (float* pa = a, pb = b, pc = c)
        {
            if (k == 0 || alpha == 0f)
            {
                Scale(m, n, beta, pc, ldc);
                return;
            }
            if (_pool != null && 2L * m * n * k >= ParallelMinFlops && Monitor.TryEnter(_jobGate))
            {
                try
                {
                    _job!.Set(transposeA, transposeB, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc);
                    _pool.Run(_job, Threads);
                }
                finally
                {
                    _job!.Clear();
                    Monitor.Exit(_jobGate);
                }
                return;
            }
            Serial(transposeA, transposeB, m, n, k, alpha, pa, lda, pb, ldb, beta, pc, ldc);
        }
    }

    private static void CheckOperand(string name, int length, int rows, int cols, int ld, string ldName)
    {
        if (rows == 0 || cols == 0) return;
        if (ld < cols)
            throw new ArgumentOutOfRangeException(ldName, ld, $"The row stride must be at least the stored row length {cols}.");
        long needed = (long)(rows - 1) * ld + cols;
        if (length < needed)
            throw new ArgumentException($"Span {name} holds {length} floats; a {rows}×{cols} matrix with row stride {ld} needs {needed}.", name);
    }

    /// <summary>C ← β·C, or C ← 0 when β = 0 (old contents, NaN included, are ignored).</summary>
    private static void Scale(int m, int n, float beta, float* c, int ldc)
    {
        for (int i = 0; i < m; i++)
        {
            var row = new Span<float>(c + (nint)i * ldc, n);
            if (beta == 0f) row.Clear();
            else if (beta != 1f)
                for (int j = 0; j < n; j++) row[j] *= beta;
        }
    }

    /// <summary>The k block length: k split into equal blocks of at most KC, rounded up to 8. Depends on k only.</summary>
    private int KBlock(int k)
    {
        int blocks = (k + _kc - 1) / _kc;
        return RoundUp((k + blocks - 1) / blocks, 8);
    }

    private static int RoundUp(int x, int multiple) => (x + multiple - 1) / multiple * multiple;

    private static float* Buffer(ref float[]? storage, int floats)
    {
        // 16 spare floats to align the start to 64 bytes; the array lives on the pinned heap.
        if (storage == null || storage.Length < floats + 16)
            storage = GC.AllocateUninitializedArray<float>(floats + 16, pinned: true);
        fixed (float* p = storage)
            return (float*)(((nint)p + 63) & ~(nint)63);
    }

    /// <summary>
    /// The whole product on the calling thread. A C narrower than one B sliver (n &lt; NR, the last layer's
    /// n = 10) and taller than wide is computed as Cᵀ = op(B)ᵀ·op(A)ᵀ: its n columns become rows of tiles
    /// and its m rows fill whole slivers, instead of every tile computing NR columns for n. Each element is
    /// still one FMA chain in p order (a·b = b·a exactly) with the same final rounding: the same bits.
    /// </summary>
    private void Serial(bool transposeA, bool transposeB, int m, int n, int k,
                        float alpha, float* a, int lda, float* b, int ldb,
                        float beta, float* c, int ldc)
    {
        if (TransposeNarrowC && n < _kernel.Nr && m > n)
            Blocked(!transposeB, !transposeA, n, m, k, alpha, b, ldb, a, lda, beta, c, ldc, transposedC: true);
        else
            Blocked(transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, transposedC: false);
    }

    /// <summary>
    /// The blocked product; with <paramref name="transposedC"/> the m×n result is stored transposed
    /// (element (i, j) at c[j·ldc + i]), every tile through the scratch tile.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Blocked(bool transposeA, bool transposeB, int m, int n, int k,
                         float alpha, float* a, int lda, float* b, int ldb,
                         float beta, float* c, int ldc, bool transposedC)
    {
        int mr = _kernel.Mr, nr = _kernel.Nr;
        // Where C's element (i, j) lies: c[i·rowStep + j·columnStep].
        nint rowStep = transposedC ? 1 : ldc, columnStep = transposedC ? ldc : 1;
        int kcMax = KBlock(k);
        int mcMax = Math.Min(_mc, RoundUp(m, mr));
        int ncMax = Math.Min(_nc, RoundUp(n, nr));
        // With a single row block (m ≤ MC) each sliver of B is read by consecutive tiles only, once
        // per call, so packing it costs a full extra pass over B for nothing: when op(B) = B, the
        // kernel reads B in place (rows ldb apart) and only a ragged last sliver is packed.
        bool bInPlace = ReadBInPlace && !transposeB && m <= _mc;
        bool perSliver = !bInPlace && PackBPerSliver && m <= _mc;
        float* packA = Buffer(ref t_packA, mcMax * kcMax);
        // In place: a ragged last sliver, then the copy a first tile makes of its sliver (RunCopyB).
        float* packB = Buffer(ref t_packB, (bInPlace ? 2 * nr : perSliver ? nr : ncMax) * kcMax);
        float* copiedB = packB + (nint)nr * kcMax;
        float* edge = stackalloc float[mr * nr];
        var run = _kernel.Run;
        var runCopyB = CopyBInFirstTile ? _kernel.RunCopyB : null;
        var runShort = UseShortRowKernel ? _kernel.RunShort : null;
        int shortRows = _kernel.ShortRows;

        for (int jc = 0; jc < n; jc += _nc)
        {
            int nc = Math.Min(_nc, n - jc);
            int ncFull = bInPlace ? nc / nr * nr : 0;
            for (int pc = 0; pc < k; pc += kcMax)
            {
                int kc = Math.Min(kcMax, k - pc);
                float betaBlock = pc == 0 ? beta : 1f;
                if (ncFull < nc && !perSliver)
                    GemmPacking.PackB(transposeB, b, ldb, pc, jc + ncFull, kc, nc - ncFull, nr, packB);
                for (int ic = 0; ic < m; ic += _mc)
                {
                    int mc = Math.Min(_mc, m - ic);
                    GemmPacking.PackA(transposeA, a, lda, ic, pc, mc, kc, mr, packA);
                    float* cBlock = c + ic * rowStep + jc * columnStep;
                    for (int jr = 0; jr < nc; jr += nr)
                    {
                        int nrHere = Math.Min(nr, nc - jr);
                        if (perSliver)
                            GemmPacking.PackB(transposeB, b, ldb, pc, jc + jr, kc, nrHere, nr, packB);
                        float* bSliver = jr < ncFull ? b + (nint)pc * ldb + jc + jr
                                       : perSliver ? packB : packB + (nint)(jr - ncFull) * kc;
                        int bStride = jr < ncFull ? ldb : nr;
                        // A sliver read in place is packed by its first tile when more tiles follow:
                        // a stride of ldb floats maps B's rows onto a few L1 sets, the packed copy onto all.
                        bool copyB = runCopyB != null && jr < ncFull && mc > mr;
                        // The next in-place sliver's first tile would wait on B's rows from L3 one by one
                        // (rows ldb apart defeat the hardware prefetchers): this sliver's later tiles
                        // prefetch them, rowsPerTile each, so the misses overlap the FMAs.
                        int tiles = (mc + mr - 1) / mr;
                        float* nextSliver = PrefetchNextSliver && jr + nr < ncFull && tiles > 1 ? bSliver + nr : null;
                        int rowsPerTile = tiles > 1 ? (kc + tiles - 2) / (tiles - 1) : 0;
                        for (int ir = 0; ir < mc; ir += mr)
                        {
                            int mrHere = Math.Min(mr, mc - ir);
                            float* aSliver = packA + (nint)ir * kc;
                            float* cTile = cBlock + ir * rowStep + jr * columnStep;
                            // Full tiles (and a short last row tile the kernel has a variant for) go straight to C;
                            // the rest, and every tile of a transposed C, through the scratch tile: α = 1, β = 0
                            // leave the raw sums, then the same final rounding as the kernel's own store.
                            bool direct = !transposedC && nrHere == nr && (mrHere == mr || mrHere == shortRows && runShort != null);
                            float* target = direct ? cTile : edge;
                            int ldTarget = direct ? ldc : nr;
                            float alphaHere = direct ? alpha : 1f, betaHere = direct ? betaBlock : 0f;
                            if (!transposedC)
                                PrefetchTile(cTile, ldc, mrHere, nrHere);
                            if (nextSliver != null && ir > 0)
                                PrefetchRows(nextSliver, ldb, (ir / mr - 1) * rowsPerTile, Math.Min(kc, ir / mr * rowsPerTile), nr);
                            if (copyB)
                            {
                                runCopyB(aSliver, bSliver, bStride, kc, target, ldTarget, alphaHere, betaHere, copiedB);
                                bSliver = copiedB;
                                bStride = nr;
                                copyB = false;
                            }
                            else if (mrHere <= shortRows && runShort != null)
                                runShort(aSliver, bSliver, bStride, kc, target, ldTarget, alphaHere, betaHere);
                            else
                                run(aSliver, bSliver, bStride, kc, target, ldTarget, alphaHere, betaHere);
                            if (!direct)
                                StoreEdge(edge, nr, mrHere, nrHere, cTile, rowStep, columnStep, alpha, betaBlock);
                        }
                    }
                }
            }
        }
    }

    /// <summary>c[i·rowStep + j·columnStep] ← α·e[i·ldEdge + j] + β·c[…] (β = 0: α·e alone), the kernels' final rounding.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void StoreEdge(float* edge, int ldEdge, int rows, int columns, float* c, nint rowStep, nint columnStep,
                                  float alpha, float beta)
    {
        for (int i = 0; i < rows; i++)
        {
            float* cRow = c + i * rowStep;
            float* eRow = edge + i * ldEdge;
            if (beta == 0f)
                for (int j = 0; j < columns; j++) cRow[j * columnStep] = alpha * eRow[j];
            else
                for (int j = 0; j < columns; j++) cRow[j * columnStep] = alpha * eRow[j] + beta * cRow[j * columnStep];
        }
    }

    /// <summary>
    /// Starts fetching a C tile's rows before the micro-kernel runs: it writes them only after its k
    /// loop, and a C not in cache (dW = Xᵀ·dY writes 784×256 floats) would otherwise stall every tile.
    /// Done here, not in the kernels: the prefetches there made the JIT spill the accumulators.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrefetchTile(float* c, int ldc, int rows, int columns)
    {
        for (int i = 0; i < rows; i++, c += ldc)
            PrefetchRow(c, columns);
    }

    /// <summary>
    /// Prefetches rows [first, last) of a sliver read in place (rows ld apart) into L1 (prefetcht1, into L2,
    /// measured the same; bench/README.md).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrefetchRows(float* sliver, int ld, int first, int last, int columns)
    {
        for (int p = first; p < last; p++)
            PrefetchRow(sliver + (nint)p * ld, columns);
    }

    /// <summary>Prefetches the cache lines of one row of <paramref name="columns"/> floats.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrefetchRow(float* row, int columns)
    {
        if (!Sse.IsSupported) return;
        for (int j = 0; j < columns; j += 16)
            Sse.Prefetch0(row + j);
        Sse.Prefetch0(row + columns - 1); // the row's last line, when it does not start on a line boundary
    }

    public void Dispose()
    {
        lock (_jobGate) _pool?.Dispose();
    }

    /// <summary>
    /// One multi-threaded product: C split into <c>parts</c> contiguous ranges of whole tiles along
    /// its larger dimension; part p runs the serial algorithm on its own range.
    /// </summary>
    private sealed class ParallelGemm(PackedKernels owner, int parts) : IPartitionedWork
    {
        private bool _transposeA, _transposeB, _splitColumns;
        private int _m, _n, _k, _lda, _ldb, _ldc, _tiles;
        private float _alpha, _beta;
        private float* _a, _b, _c;

        public void Set(bool transposeA, bool transposeB, int m, int n, int k, float alpha,
                        float* a, int lda, float* b, int ldb, float beta, float* c, int ldc)
        {
            (_transposeA, _transposeB, _m, _n, _k, _alpha, _lda, _ldb, _beta, _ldc) =
                (transposeA, transposeB, m, n, k, alpha, lda, ldb, beta, ldc);
            _a = a;
            _b = b;
            _c = c;
            // Split the larger dimension: each part then re-packs only the smaller operand in full.
            _splitColumns = n >= m;
            _tiles = _splitColumns ? (n + owner._kernel.Nr - 1) / owner._kernel.Nr
                                   : (m + owner._kernel.Mr - 1) / owner._kernel.Mr;
        }

        public void Clear()
        {
            _a = null;
            _b = null;
            _c = null;
        }

        public void Execute(int part)
        {
            int first = (int)((long)_tiles * part / parts), last = (int)((long)_tiles * (part + 1) / parts);
            if (first == last) return;
            if (_splitColumns)
            {
                int nr = owner._kernel.Nr;
                int j0 = first * nr, j1 = Math.Min(_n, last * nr);
                float* b = _transposeB ? _b + (nint)j0 * _ldb : _b + j0;
                owner.Serial(_transposeA, _transposeB, _m, j1 - j0, _k, _alpha, _a, _lda, b, _ldb, _beta, _c + j0, _ldc);
            }
            else
            {
                int mr = owner._kernel.Mr;
                int i0 = first * mr, i1 = Math.Min(_m, last * mr);
                float* a = _transposeA ? _a + i0 : _a + (nint)i0 * _lda;
                owner.Serial(_transposeA, _transposeB, i1 - i0, _n, _k, _alpha, a, _lda, _b, _ldb, _beta, _c + (nint)i0 * _ldc, _ldc);
            }
        }
    }
}
