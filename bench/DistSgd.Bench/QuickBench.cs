using System.Diagnostics;
using System.Globalization;
using DistSgd.Numerics.Tensors;

namespace DistSgd.Bench;

/// <summary>
/// `-- quick`: a fast table without BenchmarkDotNet for iterating on kernels.
/// </summary>
/// <remarks>
/// The machines are shared, so timings drift by a factor of two within a minute. To keep the
/// ratios honest, every row interleaves its contestants: 5 rounds, and in each round the FMA peak
/// loop and then every kernel run for about 20 ms each, each round starting one contestant further along. A cell is the median of its 5 samples, and
/// its percentage is relative to the median of the peak samples taken in the same rounds.
/// Options: --kernel NAME[,NAME…]|all, --kc N, --mc N, --nc N, --batch 64,256, --threads N, --mathnet,
/// --compare-pack-b (adds the same kernel with B always packed, packed per sliver, in place without
/// the next sliver's prefetch, and in place as before the first tile's copy), --compare-tiles (adds the same kernel
/// without the narrow-C transpose and the short-row kernel), --compare-kc N[,N…] (the same kernel with other KCs),
/// --reverse (contestants in reverse order), --clock cpu|wall (default: thread CPU
/// time on Linux, see <see cref="ThreadClock"/>).
/// </remarks>
public static class QuickBench
{
    private static int s_rounds = 5;

    /// <summary>With --best a cell is the fastest sample instead of the median: on a loaded machine the fastest is the one least disturbed.</summary>
    private static bool s_best;
    private static double s_sampleSeconds = 0.02;

    private sealed record Contestant(string Label, Action<GemmShape, float[], float[], float[]> Run);

    public static int Run(string[] args)
    {
        string? kernelName = Option(args, "--kernel");
        int kc = IntOption(args, "--kc", PackedKernels.DefaultKc);
        int mc = IntOption(args, "--mc", PackedKernels.DefaultMc);
        int nc = IntOption(args, "--nc", PackedKernels.DefaultNc);
        int threads = IntOption(args, "--threads", Environment.ProcessorCount);
        int[] batches = (Option(args, "--batch") ?? "64,256").Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        bool mathNet = args.Contains("--mathnet");
        s_rounds = IntOption(args, "--rounds", 5);
        s_best = args.Contains("--best");
        s_sampleSeconds = IntOption(args, "--sample-ms", 20) / 1000.0;
        string[]? shapes = Option(args, "--shapes")?.Split(',');
        ThreadClock.CpuTime = (Option(args, "--clock") ?? (ThreadClock.CpuTime ? "cpu" : "wall")) == "cpu";

        var kernels = kernelName switch
        {
            null => [GemmMicroKernel.Best()],
            "all" => GemmMicroKernel.Available().Where(k => k.Isa != "scalar").ToList(),
            _ => kernelName.Split(',').Select(n => GemmMicroKernel.Find(n) ?? throw new ArgumentException(
                $"--kernel: no micro-kernel named '{n}'; try one of {string.Join(", ", GemmMicroKernel.Available())}")).ToList(),
        };

        var disposables = new List<IDisposable>();
        var contestants = new List<Contestant>();
        foreach (var kernel in kernels)
        {
            var one = new PackedKernels(1, kernel, kc, mc, nc, PackedKernels.DefaultParallelMinFlops);
            disposables.Add(one);
            contestants.Add(new($"{kernel.Name} 1T", Gemm(one)));
            if (args.Contains("--compare-pack-b"))
            {
                var packing = new PackedKernels(1, kernel, kc, mc, nc, PackedKernels.DefaultParallelMinFlops) { ReadBInPlace = false };
                disposables.Add(packing);
                contestants.Add(new("always pack B", Gemm(packing)));
                var sliver = new PackedKernels(1, kernel, kc, mc, nc, PackedKernels.DefaultParallelMinFlops) { ReadBInPlace = false, PackBPerSliver = true };
                disposables.Add(sliver);
                contestants.Add(new("pack B per sliver", Gemm(sliver)));
                var noPrefetch = new PackedKernels(1, kernel, kc, mc, nc, PackedKernels.DefaultParallelMinFlops) { PrefetchNextSliver = false };
                disposables.Add(noPrefetch);
                contestants.Add(new("no next prefetch", Gemm(noPrefetch)));
                var inPlace = new PackedKernels(1, kernel, kc, mc, nc, PackedKernels.DefaultParallelMinFlops) { CopyBInFirstTile = false, PrefetchNextSliver = false };
                disposables.Add(inPlace);
                contestants.Add(new("B in place (old)", Gemm(inPlace)));
            }
            if (args.Contains("--compare-tiles"))
            {
                var general = new PackedKernels(1, kernel, kc, mc, nc, PackedKernels.DefaultParallelMinFlops) { TransposeNarrowC = false, UseShortRowKernel = false };
                disposables.Add(general);
                contestants.Add(new("general tiles", Gemm(general)));
            }
            foreach (int otherKc in (Option(args, "--compare-kc") ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse))
            {
                var other = new PackedKernels(1, kernel, otherKc, mc, nc, PackedKernels.DefaultParallelMinFlops);
                disposables.Add(other);
                contestants.Add(new($"KC={otherKc}", Gemm(other)));
            }
            if (threads > 1 && kernels.Count == 1)
            {
                var many = new PackedKernels(threads, kernel, kc, mc, nc, PackedKernels.DefaultParallelMinFlops);
                // Always split, even below the threshold: shows what threads buy on small shapes.
                var forced = new PackedKernels(threads, kernel, kc, mc, nc, parallelMinFlops: 0);
                disposables.Add(many);
                disposables.Add(forced);
                contestants.Add(new($"{threads}T", Gemm(many)));
                contestants.Add(new($"{threads}T split always", Gemm(forced)));
            }
        }

        if (args.Contains("--reverse")) contestants.Reverse();
        Console.WriteLine($"blocking KC={kc} MC={mc} NC={nc}; {Environment.ProcessorCount} logical cores; " +
                          $"cells: {(s_best ? "best" : "median")} GFLOP/s of {s_rounds} interleaved samples ({ThreadClock.Description}) and % of the one-core Vector256 FMA peak measured in the same rounds; " +
                          $"load average {LoadAverage()}");
        PrintPeaks();
        foreach (var kernel in kernels)
            PrintKernelAlone(kernel, Math.Min(kc, 256));
        Console.WriteLine();
        Console.WriteLine($"{"shape",-30} {"MFLOP",7} {"peak",6} | " + string.Join(" | ", contestants.Select(c => $"{c.Label,16}")));

        foreach (int batch in batches)
        {
            var stepSeconds = new double[contestants.Count];
            double stepFlops = 0, stepPeakSeconds = 0;
            foreach (var shape in GemmShape.Mlp(batch))
            {
                if (shapes != null && !shapes.Any(x => shape.Name.StartsWith(x, StringComparison.Ordinal))) continue;
                var (peak, rates) = MeasureRow(shape, contestants);
                if (GemmShape.InTrainingStep(shape))
                {
                    stepFlops += shape.Flops;
                    stepPeakSeconds += shape.Flops / peak;
                    for (int i = 0; i < rates.Length; i++) stepSeconds[i] += shape.Flops / rates[i];
                }
                Console.WriteLine($"{shape.Name,-30} {shape.Flops / 1e6,7:F2} {peak,6:F1} | " + string.Join(" | ", rates.Select(r => Cell(r, peak))));
            }
            double stepPeak = stepFlops / stepPeakSeconds;
            Console.WriteLine($"{"training step, batch " + batch,-30} {stepFlops / 1e6,7:F2} {stepPeak,6:F1} | " +
                              string.Join(" | ", stepSeconds.Select(s => Cell(stepFlops / s, stepPeak))));
        }

        if (!args.Contains("--no-steps"))
            PrintTrainingSteps(threads);

        if (mathNet)
        {
            var shape = GemmShape.Mlp(64)[0];
            var (ma, mb, mc2) = MathNetGemm.Allocate(shape);
            var (peak, rates) = MeasureRow(shape, [new("MathNet managed", (_, _, _, _) => ma.Multiply(mb, mc2))]);
            Console.WriteLine($"{"MathNet " + shape.Name,-30} {shape.Flops / 1e6,7:F2} {peak,6:F1} | {Cell(rates[0], peak)}");
        }
        foreach (var d in disposables) d.Dispose();
        return 0;
    }

    /// <summary>
    /// Whole training steps (gather, forward, backward, update), interleaved with the FMA peak like the
    /// GEMM rows: samples/s, useful GFLOP/s (6 × parameters × samples) and its share of the peak, and
    /// the bytes allocated per step in steady state.
    /// </summary>
    private static void PrintTrainingSteps(int threads)
    {
        Console.WriteLine();
        Console.WriteLine($"{"training step (gather+fwd+bwd+update)",-40} {"threads",9} {"samples/s",10} {"GFLOP/s",8} {"% peak",7} {"B/step",7}");
        var cases = new List<(string Name, TrainingStep Step)>();
        foreach (var (name, spec) in new[] { ("mlp 784-256-128-10", TrainingStep.Mlp), ("softmax 784-10", TrainingStep.Softmax) })
            foreach (int batch in new[] { 64, 256 })
                foreach (int t in threads > 1 ? new[] { 1, threads } : new[] { 1 })
                    cases.Add(($"{name}, batch {batch}", new TrainingStep(spec, batch, t)));
        foreach (var (name, step) in cases)
        {
            const long peakIterations = 100_000;
            var calls = new List<Action> { () => FmaPeak.Run256(peakIterations), step.Run };
            var flops = new[] { FmaPeak.Flops256(peakIterations), step.FlopsPerStep };
            // Whole steps call many small generic methods (TensorPrimitives): give tiered JIT time to
            // promote all of them before measuring, or the first case reads tier-0 code.
            for (var warm = Stopwatch.StartNew(); warm.Elapsed.TotalSeconds < 1.0;) step.Run();
            foreach (var call in calls) Warm(call);
            var reps = calls.Select(Reps).ToArray();
            var samples = new double[2, s_rounds];
            for (int r = 0; r < s_rounds; r++)
                for (int i = 0; i < 2; i++)
                    samples[i, r] = Sample(calls[i], flops[i], reps[i]);
            double peak = Median(Enumerable.Range(0, s_rounds).Select(r => samples[0, r]).ToArray());
            double gflops = Median(Enumerable.Range(0, s_rounds).Select(r => samples[1, r]).ToArray());
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 200; i++) step.Run();
            double allocated = (GC.GetAllocatedBytesForCurrentThread() - before) / 200.0;
            double samplesPerSecond = gflops * 1e9 / step.FlopsPerStep * step.Batch;
            var (g, fb, u) = step.Parts();
            Console.WriteLine($"{name,-40} {step.KernelName.Split('(')[1].TrimEnd(')'),9} {samplesPerSecond,10:N0} {gflops,8:F1} {gflops / peak * 100,6:F0}% {allocated,7:F0}" +
                              $"   parts µs: gather {g:F0}, fwd+bwd {fb:F0}, update {u:F0}");
            step.Dispose();
        }
    }

    private static Action<GemmShape, float[], float[], float[]> Gemm(IMatrixKernels kernels) =>
        (s, a, b, c) => kernels.Gemm(s.TransposeA, s.TransposeB, s.M, s.N, s.K, 1f, a, s.Lda, b, s.Ldb, 0f, c, s.N);

    private static void PrintPeaks()
    {
        const long iterations = 200_000;
        var p256 = new double[s_rounds];
        var p512 = new double[s_rounds];
        Warm(() => FmaPeak.Run256(iterations));
        Warm(() => FmaPeak.Run512(iterations));
        int reps256 = Reps(() => FmaPeak.Run256(iterations)), reps512 = Reps(() => FmaPeak.Run512(iterations));
        for (int r = 0; r < s_rounds; r++)
        {
            p256[r] = Sample(() => FmaPeak.Run256(iterations), FmaPeak.Flops256(iterations), reps256);
            p512[r] = Sample(() => FmaPeak.Run512(iterations), FmaPeak.Flops512(iterations), reps512);
        }
        string v512 = System.Runtime.Intrinsics.X86.Avx512F.IsSupported ? $"{Median(p512):F1} GFLOP/s" : "not supported";
        Console.WriteLine($"FMA peak, one core, 12 accumulators: Vector256 {Median(p256):F1} GFLOP/s, Vector512 {v512}");
    }

    /// <summary>
    /// The micro-kernel alone on operands that stay in L1 (one A sliver, one packed B sliver, one C tile,
    /// kc steps): the ceiling a GEMM built on it can reach, interleaved with the FMA peak.
    /// </summary>
    private static unsafe void PrintKernelAlone(GemmMicroKernel kernel, int kc)
    {
        const long peakIterations = 100_000;
        var a = GC.AllocateArray<float>(kernel.Mr * kc + 16, pinned: true);
        var b = GC.AllocateArray<float>(kernel.Nr * kc + 16, pinned: true);
        var c = GC.AllocateArray<float>(kernel.Mr * kernel.Nr + 16, pinned: true);
        a.AsSpan().Fill(0.5f);
        b.AsSpan().Fill(0.25f);
        double flops = 2.0 * kernel.Mr * kernel.Nr * kc * 100;
        void Tiles()
        {
            fixed (float* pa = a, pb = b, pc = c)
                for (int i = 0; i < 100; i++)
                    kernel.Run(pa, pb, kernel.Nr, kc, pc, kernel.Nr, 1f, 0f);
        }
        var calls = new List<Action> { () => FmaPeak.Run256(peakIterations), Tiles };
        var flopsPerCall = new[] { FmaPeak.Flops256(peakIterations), flops };
        foreach (var call in calls) Warm(call);
        var reps = calls.Select(Reps).ToArray();
        var samples = new double[2][];
        for (int i = 0; i < 2; i++) samples[i] = new double[s_rounds];
        for (int r = 0; r < s_rounds; r++)
            for (int i = 0; i < 2; i++)
                samples[i][r] = Sample(calls[i], flopsPerCall[i], reps[i]);
        double peak = Median(samples[0]), rate = Median(samples[1]);
        Console.WriteLine($"micro-kernel {kernel.Name} alone (L1-resident, kc={kc}): {rate:F1} GFLOP/s, {rate / peak * 100:F0}% of {peak:F1}");
    }

    /// <summary>Peak and every contestant, interleaved round by round; medians.</summary>
    private static (double Peak, double[] Rates) MeasureRow(GemmShape shape, IReadOnlyList<Contestant> contestants)
    {
        const long peakIterations = 100_000;
        var (a, b, c) = shape.Allocate();
        var calls = new List<Action> { () => FmaPeak.Run256(peakIterations) };
        calls.AddRange(contestants.Select(k => (Action)(() => k.Run(shape, a, b, c))));
        var flops = new[] { FmaPeak.Flops256(peakIterations) }.Concat(contestants.Select(_ => shape.Flops)).ToArray();
        foreach (var call in calls) Warm(call);
        var reps = calls.Select(Reps).ToArray();
        var samples = new double[calls.Count, s_rounds];
        // Each round starts one place further along: whoever runs right after another GEMM (on the same
        // operands) measured up to 10% faster than whoever runs right after the peak loop.
        for (int r = 0; r < s_rounds; r++)
            for (int x = 0; x < calls.Count; x++)
            {
                int i = (x + r) % calls.Count;
                samples[i, r] = Sample(calls[i], flops[i], reps[i]);
            }
        var medians = Enumerable.Range(0, calls.Count).Select(i => Median(Enumerable.Range(0, s_rounds).Select(r => samples[i, r]).ToArray())).ToArray();
        return (medians[0], medians[1..]);
    }

    /// <summary>Tiered JIT reaches full optimisation after a few dozen calls; run at least 50 ms.</summary>
    private static void Warm(Action call)
    {
        var sw = Stopwatch.StartNew();
        for (int calls = 0; calls < 50 || sw.Elapsed.TotalSeconds < 0.05; calls++) call();
    }

    /// <summary>Repetitions that take about <see cref="s_sampleSeconds"/>.</summary>
    private static int Reps(Action call)
    {
        var sw = Stopwatch.StartNew();
        int calls = 0;
        while (sw.Elapsed.TotalSeconds < 0.005) { call(); calls++; }
        return Math.Max(1, (int)(calls * s_sampleSeconds / sw.Elapsed.TotalSeconds));
    }

    private static double Sample(Action call, double flopsPerCall, int reps)
    {
        double t0 = ThreadClock.Now();
        for (int r = 0; r < reps; r++) call();
        return flopsPerCall * reps / (ThreadClock.Now() - t0) / 1e9;
    }

    private static double Median(double[] values)
    {
        var sorted = (double[])values.Clone();
        Array.Sort(sorted);
        return s_best ? sorted[^1] : sorted[sorted.Length / 2];
    }

    private static string Cell(double gflops, double peak) => $"{gflops,6:F1} {gflops / peak * 100,4:F0}%".PadLeft(16);

    /// <summary>The 1-minute load average (Linux), so a table says how busy the machine was.</summary>
    private static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "n/a";

    private static string? Option(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    private static int IntOption(string[] args, string name, int fallback) =>
        Option(args, name) is { } s ? int.Parse(s, CultureInfo.InvariantCulture) : fallback;
}
