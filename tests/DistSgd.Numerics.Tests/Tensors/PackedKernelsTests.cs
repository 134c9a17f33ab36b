using DistSgd.Numerics.Tensors;

namespace DistSgd.Numerics.Tests.Tensors;

public class PackedKernelsTests
{
    /// <summary>
    /// Tolerance: |c − ref| ≤ 1e-4·(1 + |α|·Σₚ|a||b| + |β·c₀|). A float32 sum of k products is off by
    /// at most about k·2⁻²⁴ of Σ|a||b| (k = 785: 5e-5), so 1e-4 passes any correct summation order
    /// and fails a dropped or doubled term.
    /// </summary>
    private const double RelativeTolerance = 1e-4;

    private static readonly (int M, int N, int K)[] Shapes =
    [
        (1, 1, 1), (2, 7, 16), (7, 2, 17), (16, 17, 33), (17, 33, 7), (33, 16, 65),
        (64, 65, 64), (65, 64, 257), (1, 300, 785), (300, 1, 65), (257, 33, 300), (7, 785, 17),
        (13, 47, 785), (96, 64, 9),
        // The MLP's last layer (n = 10 and its transposes), k = 1, and one exact 6×16 tile.
        (64, 10, 128), (128, 10, 64), (64, 128, 10), (13, 10, 1), (6, 16, 1), (12, 32, 24),
    ];

    // Five scalings, so that over 4 transpose combinations × 2 paddings every pairing occurs.
    private static readonly (float Alpha, float Beta)[] Scalings = [(1f, 0f), (0.5f, 1f), (-1.5f, 0.25f), (2f, 0f), (1f, 1f)];

    /// <summary>Kernel configurations under test, by name (see <see cref="Build"/>).</summary>
    public static TheoryData<string> Configurations()
    {
        var data = new TheoryData<string> { "default", "default-2-threads-always-split", "default-3-threads-always-split" };
        foreach (var kernel in GemmMicroKernel.Available())
            data.Add("tiny-blocks:" + kernel.Name);
        return data;
    }

    /// <summary>
    /// "tiny-blocks:NAME" uses KC = 16, MC = 2·MR, NC = 2·NR so that the small test shapes still
    /// cross every block boundary (several k blocks, β folded in once, edge tiles in every loop).
    /// </summary>
    private static PackedKernels Build(string configuration)
    {
        if (configuration == "default") return new PackedKernels(threads: 1);
        if (configuration == "default-2-threads-always-split")
            return new PackedKernels(2, GemmMicroKernel.Best(), PackedKernels.DefaultKc, PackedKernels.DefaultMc, PackedKernels.DefaultNc, parallelMinFlops: 0);
        if (configuration == "default-3-threads-always-split")
            return new PackedKernels(3, GemmMicroKernel.Best(), 16, 1, 1, parallelMinFlops: 0);
        var kernel = GemmMicroKernel.Find(configuration["tiny-blocks:".Length..])!;
        return new PackedKernels(1, kernel, 16, 2 * kernel.Mr, 2 * kernel.Nr, PackedKernels.DefaultParallelMinFlops);
    }

    [Theory]
    [MemberData(nameof(Configurations))]
    public void Matches_the_naive_oracle_for_odd_shapes_all_transposes_and_strides(string configuration)
    {
        using var kernels = Build(configuration);
        int caseIndex = 0;
        foreach (var (m, n, k) in Shapes)
        {
            foreach (bool transposeA in new[] { false, true })
            {
                foreach (bool transposeB in new[] { false, true })
                {
                    var (alpha, beta) = Scalings[caseIndex % Scalings.Length];
                    // Every other case uses row strides wider than the rows.
                    int pad = caseIndex % 2 == 0 ? 0 : 3;
                    AssertMatchesOracle(kernels, transposeA, transposeB, m, n, k, alpha, beta, pad, seed: caseIndex);
                    caseIndex++;
                }
            }
        }
    }

    [Fact]
    public void Beta_zero_overwrites_NaN_in_C_and_leaves_the_stride_gap_alone()
    {
        using var kernels = new PackedKernels(threads: 1);
        const int m = 9, n = 37, k = 20, ldc = n + 5;
        var (a, b) = (Random(m * k, 1), Random(k * n, 2));
        var c = Enumerable.Repeat(float.NaN, m * ldc).ToArray();
        kernels.Gemm(false, false, m, n, k, 1f, a, k, b, n, 0f, c, ldc);
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++) Assert.False(float.IsNaN(c[i * ldc + j]), $"C[{i},{j}] still NaN");
            for (int j = n; j < ldc; j++) Assert.True(float.IsNaN(c[i * ldc + j]), $"gap C[{i},{j}] was written");
        }
    }

    [Fact]
    public void Beta_one_accumulates_onto_C()
    {
        using var kernels = new PackedKernels(threads: 1);
        const int m = 13, n = 35, k = 50;
        var (a, b) = (Random(m * k, 3), Random(k * n, 4));
        var once = new float[m * n];
        kernels.Gemm(false, false, m, n, k, 1f, a, k, b, n, 0f, once, n);
        var twice = (float[])once.Clone();
        kernels.Gemm(false, false, m, n, k, 1f, a, k, b, n, 1f, twice, n);
        for (int i = 0; i < once.Length; i++)
            Assert.Equal(2 * once[i], twice[i], 1e-4f * (1 + Math.Abs(once[i])));
    }

    [Theory]
    [InlineData(0f)]
    [InlineData(1f)]
    [InlineData(-2f)]
    public void K_zero_gives_beta_times_C(float beta)
    {
        using var kernels = new PackedKernels(threads: 1);
        var c = new[] { 1f, float.NaN, 3f, -4f };
        if (beta != 0f) c[1] = 2f;
        var expected = c.Select(x => beta == 0f ? 0f : beta * x).ToArray();
        kernels.Gemm(false, false, 2, 2, 0, 1f, ReadOnlySpan<float>.Empty, 1, ReadOnlySpan<float>.Empty, 2, beta, c, 2);
        Assert.Equal(expected, c);
    }

    [Fact]
    public void Empty_output_touches_nothing()
    {
        using var kernels = new PackedKernels(threads: 1);
        kernels.Gemm(false, false, 0, 5, 3, 1f, ReadOnlySpan<float>.Empty, 3, new float[15], 5, 0f, Span<float>.Empty, 5);
        kernels.Gemm(true, true, 4, 0, 3, 1f, new float[12], 4, ReadOnlySpan<float>.Empty, 3, 0f, Span<float>.Empty, 0);

        // The same with room in c: m = 0 or n = 0 writes nothing there (beta 0 would have zeroed what it touched).
        var c = Enumerable.Repeat(7f, 15).ToArray();
        kernels.Gemm(false, false, 0, 5, 3, 1f, ReadOnlySpan<float>.Empty, 3, new float[15], 5, 0f, c, 5);
        kernels.Gemm(true, true, 3, 0, 3, 1f, new float[9], 3, ReadOnlySpan<float>.Empty, 3, 0f, c, 5);
        Assert.All(c, v => Assert.Equal(7f, v));
    }

    [Fact]
    public void Too_short_operand_is_rejected_with_its_name()
    {
        using var kernels = new PackedKernels(threads: 1);
        var e = Assert.Throws<ArgumentException>(() =>
            kernels.Gemm(false, false, 4, 4, 4, 1f, new float[15], 4, new float[16], 4, 0f, new float[16], 4));
        Assert.Equal("a", e.ParamName);
    }

    [Theory]
    [InlineData(false, false, 64, 256, 784)]  // forward: B read in place, split by columns
    [InlineData(true, false, 784, 256, 64)]   // dW = Xᵀ·dY: split by rows
    [InlineData(false, true, 64, 784, 256)]   // dX = dY·Wᵀ: transposed B packed
    [InlineData(false, false, 200, 70, 600)]  // ragged tiles, two k blocks, m > MC
    [InlineData(true, false, 784, 10, 64)]    // a narrow C, computed transposed, split by rows
    public void Same_inputs_give_bit_identical_results_for_any_thread_count_and_run(bool transposeA, bool transposeB, int m, int n, int k)
    {
        var a = Random(m * k, 5);
        var b = Random(k * n, 6);
        int lda = transposeA ? m : k, ldb = transposeB ? k : n;
        float[] Run(PackedKernels kernels)
        {
            var c = Random(m * n, 7);
            kernels.Gemm(transposeA, transposeB, m, n, k, 0.7f, a, lda, b, ldb, 0.3f, c, n);
            return c;
        }
        PackedKernels Split(int threads) =>
            new(threads, GemmMicroKernel.Best(), PackedKernels.DefaultKc, PackedKernels.DefaultMc, PackedKernels.DefaultNc, parallelMinFlops: 0);

        using var one = new PackedKernels(threads: 1);
        using var two = Split(2);
        using var three = Split(3);
        var reference = Run(one);
        Assert.Equal(reference, Run(one));
        for (int repeat = 0; repeat < 5; repeat++)
            Assert.Equal(reference, Run(two));
        Assert.Equal(reference, Run(three));
    }

    [Fact]
    public void Every_FMA_micro_kernel_gives_the_same_bits()
    {
        // Each element is one FMA chain in p order and the same final rounding, whatever the tile
        // shape or vector width, so AVX2 and AVX-512 machines agree (the scalar fallback does not fuse).
        const int m = 45, n = 70, k = 600;
        var (a, b) = (Random(m * k, 13), Random(k * n, 14));
        float[]? reference = null;
        foreach (var kernel in GemmMicroKernel.Available().Where(x => x.Isa != "scalar"))
        {
            using var kernels = new PackedKernels(1, kernel, PackedKernels.DefaultKc, PackedKernels.DefaultMc,
                                                  PackedKernels.DefaultNc, PackedKernels.DefaultParallelMinFlops);
            var c = new float[m * n];
            kernels.Gemm(false, false, m, n, k, 0.9f, a, k, b, n, 0f, c, n);
            reference ??= c;
            Assert.True(reference.AsSpan().SequenceEqual(c), $"{kernel.Name} differs from the first kernel");
        }
    }

    [Fact]
    public void One_instance_called_from_several_threads_at_once_gives_the_single_threaded_result()
    {
        const int m = 64, n = 256, k = 784;
        var (a, b) = (Random(m * k, 11), Random(k * n, 12));
        var reference = new float[m * n];
        using (var one = new PackedKernels(threads: 1))
            one.Gemm(false, false, m, n, k, 1f, a, k, b, n, 0f, reference, n);

        using var shared = new PackedKernels(threads: 2);
        var results = new float[4][];
        Parallel.For(0, results.Length, new ParallelOptions { MaxDegreeOfParallelism = 4 }, t =>
        {
            var c = new float[m * n];
            for (int repeat = 0; repeat < 3; repeat++)
                shared.Gemm(false, false, m, n, k, 1f, a, k, b, n, 0f, c, n);
            results[t] = c;
        });
        foreach (var c in results) Assert.Equal(reference, c);
    }

    [Fact]
    public void Reading_B_in_place_gives_the_same_bits_as_packing_it()
    {
        const int m = 37, n = 70, k = 300, ldb = n + 2; // a ragged last sliver and an odd stride
        var (a, b) = (Random(m * k, 9), Random(k * ldb, 10));
        using var inPlace = new PackedKernels(threads: 1);
        using var packing = new PackedKernels(1, GemmMicroKernel.Best(), PackedKernels.DefaultKc, PackedKernels.DefaultMc,
                                              PackedKernels.DefaultNc, PackedKernels.DefaultParallelMinFlops) { ReadBInPlace = false };
        var (c1, c2) = (new float[m * n], new float[m * n]);
        inPlace.Gemm(false, false, m, n, k, 1.5f, a, k, b, ldb, 0f, c1, n);
        packing.Gemm(false, false, m, n, k, 1.5f, a, k, b, ldb, 0f, c2, n);
        Assert.Equal(c2, c1);
    }

    /// <summary>Where op(B) = B is read from: how <see cref="PackedKernels"/> may place B, by name.</summary>
    public static TheoryData<string, string> BPlacements()
    {
        var data = new TheoryData<string, string>();
        foreach (var kernel in GemmMicroKernel.Available())
            foreach (var placement in new[] { "in-place-no-copy", "packed-block", "packed-per-sliver" })
                data.Add(kernel.Name, placement);
        return data;
    }

    [Theory]
    [MemberData(nameof(BPlacements))]
    public void Every_placement_of_B_gives_the_bits_of_B_read_in_place_and_copied_by_the_first_tile(string kernelName, string placement)
    {
        // Packing is a copy, so where B is read from must not move a bit: the default (in place, the
        // first tile of a sliver packing it for the others), plain in place, packed up front, packed per sliver.
        var kernel = GemmMicroKernel.Find(kernelName)!;
        PackedKernels Build(string how) => new(1, kernel, PackedKernels.DefaultKc, PackedKernels.DefaultMc,
                                               PackedKernels.DefaultNc, PackedKernels.DefaultParallelMinFlops)
        {
            CopyBInFirstTile = how == "default",
            ReadBInPlace = how is "default" or "in-place-no-copy",
            PackBPerSliver = how == "packed-per-sliver",
        };
        using var reference = Build("default");
        using var other = Build(placement);
        foreach (var (m, n, k, ldb) in new[] { (64, 256, 784, 256), (37, 70, 300, 72), (7, 33, 17, 33), (12, 10, 5, 10), (100, 48, 64, 51) })
        {
            var (a, b) = (Random(m * k, m + n), Random(k * ldb, k));
            var (c1, c2) = (Random(m * n, 1), Random(m * n, 1));
            reference.Gemm(false, false, m, n, k, 1.5f, a, k, b, ldb, 0.5f, c1, n);
            other.Gemm(false, false, m, n, k, 1.5f, a, k, b, ldb, 0.5f, c2, n);
            Assert.True(c1.AsSpan().SequenceEqual(c2), $"{kernelName} {placement}: m={m} n={n} k={k} differs");
        }
    }

    [Theory]
    [InlineData("transpose-narrow-c")]
    [InlineData("short-row-kernel")]
    public void Each_tile_path_gives_the_bits_of_the_general_path(string path)
    {
        // A narrow C computed transposed, and a last row tile of ShortRows rows straight into C, are the same FMA
        // chains as full tiles through the scratch tile: not a bit may move, for every kernel and transpose.
        foreach (var kernel in GemmMicroKernel.Available())
        {
            PackedKernels Build(bool on) => new(1, kernel, PackedKernels.DefaultKc, PackedKernels.DefaultMc,
                                                PackedKernels.DefaultNc, PackedKernels.DefaultParallelMinFlops)
            {
                TransposeNarrowC = path != "transpose-narrow-c" || on,
                UseShortRowKernel = path != "short-row-kernel" || on,
            };
            using var general = Build(false);
            using var special = Build(true);
            // n = 10 (the last layer), n = 1, m ≡ 4 (mod 6) as every MLP m, fewer rows than the short kernel, two k blocks.
            foreach (var (m, n, k) in new[] { (64, 10, 128), (128, 10, 64), (300, 1, 65), (13, 10, 1), (64, 256, 784), (10, 16, 5), (3, 40, 9), (784, 20, 64) })
                foreach (bool transposeA in new[] { false, true })
                    foreach (bool transposeB in new[] { false, true })
                    {
                        int lda = (transposeA ? m : k) + 1, ldb = (transposeB ? k : n) + 2, ldc = n + 3;
                        var a = Random((transposeA ? k : m) * lda, m + k);
                        var b = Random((transposeB ? n : k) * ldb, n + k);
                        var (c1, c2) = (Random(m * ldc, 5), Random(m * ldc, 5));
                        general.Gemm(transposeA, transposeB, m, n, k, 1.5f, a, lda, b, ldb, 0.5f, c1, ldc);
                        special.Gemm(transposeA, transposeB, m, n, k, 1.5f, a, lda, b, ldb, 0.5f, c2, ldc);
                        Assert.True(c1.AsSpan().SequenceEqual(c2), $"{kernel.Name} {path}: m={m} n={n} k={k} tA={transposeA} tB={transposeB} differs");
                    }
        }
    }

    [Fact]
    public void Steady_state_calls_allocate_nothing()
    {
        using var one = new PackedKernels(threads: 1);
        using var two = new PackedKernels(threads: 2);
        const int m = 64, n = 256, k = 784;
        var (a, b) = (Random(m * k, 7), Random(k * n, 8));
        var c = new float[m * n];
        foreach (var kernels in new[] { one, two })
        {
            // The first calls size this thread's pack buffers.
            kernels.Gemm(false, false, m, n, k, 1f, a, k, b, n, 0f, c, n);
            kernels.Gemm(true, false, k, n, m, 1f, a, k, c, n, 0f, b, n);
            kernels.Gemm(false, false, m, 10, k, 1f, a, k, b, 10, 0f, c, 10); // a narrow C: computed transposed
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 3; i++)
            {
                kernels.Gemm(false, false, m, n, k, 1f, a, k, b, n, 0f, c, n);
                kernels.Gemm(true, false, k, n, m, 1f, a, k, c, n, 0f, b, n);
                kernels.Gemm(false, false, m, 10, k, 1f, a, k, b, 10, 0f, c, 10);
            }
            Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        }
    }

    [Fact]
    public void Name_says_packed_and_the_thread_count()
    {
        using var two = new PackedKernels(threads: 2);
        Assert.StartsWith("packed-", two.Name);
        Assert.EndsWith("(2 threads)", two.Name);
        Assert.StartsWith("packed-", MatrixKernels.Default.Name);
    }

    /// <summary>Inputs, the oracle's answer and Σ|a||b| per element for one case; the same for every configuration.</summary>
    private sealed record OracleCase(float[] A, int Lda, float[] B, int Ldb, float[] C0, int Ldc, float[] Expected, double[] Magnitude);

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<int, OracleCase> OracleCases = new();

    private static OracleCase Oracle(bool transposeA, bool transposeB, int m, int n, int k, float alpha, float beta, int pad, int seed)
    {
        int aRows = transposeA ? k : m, aCols = transposeA ? m : k;
        int bRows = transposeB ? n : k, bCols = transposeB ? k : n;
        int lda = aCols + pad, ldb = bCols + pad, ldc = n + pad;
        var a = Random(Math.Max(0, aRows * lda), seed * 3 + 1);
        var b = Random(Math.Max(0, bRows * ldb), seed * 3 + 2);
        var c0 = Random(m * ldc, seed * 3 + 3);
        if (beta == 0f) Array.Fill(c0, float.NaN); // must be ignored
        var expected = (float[])c0.Clone();
        NaiveKernels.Instance.Gemm(transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, beta, expected, ldc);
        var magnitude = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
                for (int p = 0; p < k; p++)
                {
                    float aip = transposeA ? a[p * lda + i] : a[i * lda + p];
                    float bpj = transposeB ? b[j * ldb + p] : b[p * ldb + j];
                    magnitude[i * n + j] += Math.Abs((double)aip * bpj);
                }
        return new OracleCase(a, lda, b, ldb, c0, ldc, expected, magnitude);
    }

    private static void AssertMatchesOracle(IMatrixKernels kernels, bool transposeA, bool transposeB,
                                            int m, int n, int k, float alpha, float beta, int pad, int seed)
    {
        var o = OracleCases.GetOrAdd(seed, _ => Oracle(transposeA, transposeB, m, n, k, alpha, beta, pad, seed));
        int ldc = o.Ldc;
        var actual = (float[])o.C0.Clone();
        kernels.Gemm(transposeA, transposeB, m, n, k, alpha, o.A, o.Lda, o.B, o.Ldb, beta, actual, ldc);

        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double scale = 1 + Math.Abs(alpha) * o.Magnitude[i * n + j] + (beta == 0f ? 0 : Math.Abs(beta * o.C0[i * ldc + j]));
                double error = Math.Abs(actual[i * ldc + j] - (double)o.Expected[i * ldc + j]);
                if (!(error <= RelativeTolerance * scale))
                    Assert.Fail($"{kernels.Name}: op(A)={(transposeA ? "Aᵀ" : "A")} op(B)={(transposeB ? "Bᵀ" : "B")} " +
                                $"m={m} n={n} k={k} α={alpha} β={beta} pad={pad}: C[{i},{j}] = {actual[i * ldc + j]}, expected {o.Expected[i * ldc + j]}");
            }
            for (int j = n; j < ldc; j++)
                Assert.True(o.C0[i * ldc + j].Equals(actual[i * ldc + j]), $"{kernels.Name}: wrote into the stride gap at C[{i},{j}]");
        }
    }

    private static float[] Random(int length, int seed)
    {
        var rng = new Random(seed);
        var x = new float[length];
        for (int i = 0; i < x.Length; i++) x[i] = rng.NextSingle() * 2 - 1;
        return x;
    }
}
