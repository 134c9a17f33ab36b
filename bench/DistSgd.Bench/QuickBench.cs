using System.Diagnostics;
using System.Globalization;
using DistSgd.Numerics.Tensors;

namespace DistSgd.Bench;

/// <summary>
/// `-- quick`: a fast table without BenchmarkDotNet for iterating on kernels. Each number is the
/// median of 5 timed samples (~20 ms each) after a warm-up; the FMA peak is measured in the same
/// run, before and after the GEMMs, and the higher median is the reference.
/// Options: --kernel NAME|all, --kc N, --mc N, --nc N, --batch 64,256, --threads N, --mathnet.
/// </summary>
public static class QuickBench
{
    private const int Samples = 5;
    private const double SampleSeconds = 0.02;

    public static int Run(string[] args)
    {
        string? kernelName = Option(args, "--kernel");
        int kc = int.Parse(Option(args, "--kc") ?? PackedKernels.DefaultKc.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
        int mc = int.Parse(Option(args, "--mc") ?? PackedKernels.DefaultMc.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
        int nc = int.Parse(Option(args, "--nc") ?? PackedKernels.DefaultNc.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
        int threads = int.Parse(Option(args, "--threads") ?? Environment.ProcessorCount.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
        int[] batches = (Option(args, "--batch") ?? "64,256").Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        bool mathNet = args.Contains("--mathnet");

        var kernels = kernelName switch
        {
            null => [GemmMicroKernel.Best()],
            "all" => GemmMicroKernel.Available().Where(k => k.Isa != "scalar").ToList(),
            _ => [GemmMicroKernel.Find(kernelName) ?? throw new ArgumentException($"--kernel: no micro-kernel named '{kernelName}'; try one of {string.Join(", ", GemmMicroKernel.Available())}")],
        };

        double peak = MeasurePeak(out double peak512);
        Console.WriteLine($"FMA peak, one core: Vector256 {peak:F1} GFLOP/s, Vector512 {peak512:F1} GFLOP/s (12 accumulators, median of {Samples})");
        Console.WriteLine($"blocking KC={kc} MC={mc} NC={nc}; {Environment.ProcessorCount} logical cores");
        Console.WriteLine();

        var results = new List<(string Kernel, double StepGflops)>();
        foreach (var kernel in kernels)
        {
            using var one = new PackedKernels(1, kernel, kc, mc, nc, PackedKernels.DefaultParallelMinFlops);
            using var many = threads > 1 ? new PackedKernels(threads, kernel, kc, mc, nc, PackedKernels.DefaultParallelMinFlops) : null;
            // The always-split variant shows what threads buy below the default threshold.
            using var forced = threads > 1 ? new PackedKernels(threads, kernel, kc, mc, nc, parallelMinFlops: 0) : null;
            Console.WriteLine($"micro-kernel {kernel.Name}");
            Console.WriteLine($"  {"shape",-30} {"MFLOP",7} | {"1 thread",18} | {threads + " threads",18} | {threads + "T forced",18}");
            foreach (int batch in batches)
            {
                double t1Step = 0, tNStep = 0, flopsStep = 0;
                foreach (var shape in GemmShape.Mlp(batch))
                {
                    double g1 = Measure(one, shape);
                    double gN = many != null ? Measure(many, shape) : double.NaN;
                    double gF = forced != null ? Measure(forced, shape) : double.NaN;
                    if (GemmShape.InTrainingStep(shape))
                    {
                        flopsStep += shape.Flops;
                        t1Step += shape.Flops / g1;
                        tNStep += shape.Flops / gN;
                    }
                    Console.WriteLine($"  {shape.Name,-30} {shape.Flops / 1e6,7:F2} | {Cell(g1, peak)} | {Cell(gN, peak)} | {Cell(gF, peak)}");
                }
                double s1 = flopsStep / t1Step, sN = flopsStep / tNStep;
                Console.WriteLine($"  {"training step (batch " + batch + ")",-30} {flopsStep / 1e6,7:F2} | {Cell(s1, peak)} | {Cell(sN, peak)} |");
                results.Add(($"{kernel.Name} b{batch}", s1));
            }
            Console.WriteLine();
        }

        if (mathNet)
        {
            var shape = GemmShape.Mlp(64)[0];
            double g = MathNetGemm.Measure(shape, Samples);
            Console.WriteLine($"MathNet managed provider, {shape.Name}: {Cell(g, peak)}");
        }

        double peakAfter = MeasurePeak(out _);
        Console.WriteLine($"FMA peak after the GEMMs: {peakAfter:F1} GFLOP/s (percentages use {Math.Max(peak, peakAfter):F1} would lower them by {(1 - peak / Math.Max(peak, peakAfter)) * 100:F0}%)");
        if (kernels.Count > 1)
        {
            Console.WriteLine();
            foreach (var (k, s) in results.OrderByDescending(r => r.StepGflops))
                Console.WriteLine($"  {k,-24} step {s,6:F1} GFLOP/s");
        }
        return 0;
    }

    private static string Cell(double gflops, double peak) =>
        double.IsNaN(gflops) ? new string(' ', 18) : $"{gflops,6:F1} GF/s {gflops / peak * 100,4:F0}% pk";

    private static string? Option(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    private static double MeasurePeak(out double peak512)
    {
        const long iterations = 2_000_000;
        peak512 = MedianGflops(() => FmaPeak.Run512(iterations), FmaPeak.Flops512(iterations));
        return MedianGflops(() => FmaPeak.Run256(iterations), FmaPeak.Flops256(iterations));
    }

    /// <summary>Median GFLOP/s of <see cref="Samples"/> samples, each repeating the call for about 20 ms.</summary>
    internal static double MedianGflops(Action call, double flopsPerCall)
    {
        // Warm up (tiered JIT reaches full optimisation after a few dozen calls) and size a sample.
        var sw = Stopwatch.StartNew();
        int calls = 0;
        while (calls < 50 || sw.Elapsed.TotalSeconds < 0.05) { call(); calls++; }
        int reps = Math.Max(1, (int)(calls * SampleSeconds / sw.Elapsed.TotalSeconds));
        var rates = new double[Samples];
        for (int s = 0; s < Samples; s++)
        {
            long t0 = Stopwatch.GetTimestamp();
            for (int r = 0; r < reps; r++) call();
            double seconds = Stopwatch.GetElapsedTime(t0).TotalSeconds;
            rates[s] = flopsPerCall * reps / seconds / 1e9;
        }
        Array.Sort(rates);
        return rates[Samples / 2];
    }

    private static double Measure(IMatrixKernels kernels, GemmShape shape)
    {
        var (a, b, c) = shape.Allocate();
        return MedianGflops(
            () => kernels.Gemm(shape.TransposeA, shape.TransposeB, shape.M, shape.N, shape.K, 1f, a, shape.Lda, b, shape.Ldb, 0f, c, shape.N),
            shape.Flops);
    }
}
