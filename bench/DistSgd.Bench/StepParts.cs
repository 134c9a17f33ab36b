using System.Diagnostics;
using System.Globalization;
using DistSgd.Numerics.Data;
using DistSgd.Numerics.Models;
using DistSgd.Numerics.Optim;
using DistSgd.Numerics.Tensors;

namespace DistSgd.Bench;

/// <summary>
/// `-- parts`: where one MLP training step's time goes, measured inside real steps: every GEMM call
/// as the model makes it (through a timing decorator around the kernels), the rest of forward and
/// backward (bias, activation, softmax, ∂b, act′), the gather and the optimizer update.
/// </summary>
/// <remarks>
/// Variants (--variants default,no-next-prefetch,general-tiles) step their own model in turns: --rounds R (10) of
/// --steps S (200) steps each, after a warm-up of one second each. A cell is the median (and the
/// fastest) over all recorded steps; wall clock, so on a loaded machine read the fastest too.
/// Options: --batch N (64).
/// </remarks>
public static class StepParts
{
    public static int Run(string[] args)
    {
        int batch = IntOption(args, "--batch", 64);
        int steps = IntOption(args, "--steps", 200);
        int rounds = IntOption(args, "--rounds", 10);
        var variants = (Option(args, "--variants") ?? "default").Split(',').Select(v => new Probe(v, batch)).ToList();
        foreach (var v in variants)
            for (var warm = Stopwatch.StartNew(); warm.Elapsed.TotalSeconds < 1.0;) v.Step(false);
        for (int r = 0; r < rounds; r++)
            foreach (var v in variants)
                for (int s = 0; s < steps; s++) v.Step(true);

        Console.WriteLine($"MLP 784-256-128-10, batch {batch}, micro-kernel {GemmMicroKernel.Best().Name}, 1 thread; {rounds} rounds of {steps} steps " +
                          $"per variant, interleaved; median µs (fastest); load average {File.ReadAllText("/proc/loadavg").Split(' ')[0]}");
        Console.WriteLine($"{"part",-32} " + string.Join(" ", variants.Select(v => $"{v.Name,20}")));
        var rows = variants.Select(v => v.Rows()).ToList();
        for (int i = 0; i < rows[0].Count; i++)
            Console.WriteLine($"{rows[0][i].Name,-32} " + string.Join(" ", rows.Select(r => $"{Median(r[i].Micros),10:F1} ({r[i].Micros.Min(),7:F1})")));
        Console.WriteLine($"{"samples/s at the median step",-32} " + string.Join(" ", rows.Select(r => $"{batch / Median(r[^1].Micros) * 1e6,20:N0}")));
        foreach (var v in variants) v.Dispose();
        return 0;
    }

    /// <summary>One model, optimizer and data set stepping on its own kernels, recording each part's time.</summary>
    private sealed class Probe : IDisposable
    {
        private readonly PackedKernels _packed;
        private readonly TimedKernels _timed;
        private readonly Model _model;
        private readonly SgdOptimizer _optimizer;
        private readonly Dataset _data;
        private readonly int[] _order;
        private readonly float[] _parameters, _gradient, _features, _targets;
        private readonly int _batch;
        private readonly List<double> _gather = [], _compute = [], _update = [];
        private int _next;

        public Probe(string name, int batch)
        {
            Name = name;
            _batch = batch;
            var kernel = GemmMicroKernel.Best();
            _packed = name switch
            {
                "default" => new PackedKernels(1),
                "no-next-prefetch" => new PackedKernels(1, kernel, PackedKernels.DefaultKc, PackedKernels.DefaultMc, PackedKernels.DefaultNc,
                                                        PackedKernels.DefaultParallelMinFlops) { PrefetchNextSliver = false },
                "general-tiles" => new PackedKernels(1, kernel, PackedKernels.DefaultKc, PackedKernels.DefaultMc, PackedKernels.DefaultNc,
                                                     PackedKernels.DefaultParallelMinFlops) { TransposeNarrowC = false, UseShortRowKernel = false },
                _ => throw new ArgumentException($"--variants: no variant '{name}'; try default, no-next-prefetch, general-tiles"),
            };
            var spec = TrainingStep.Mlp;
            _timed = new TimedKernels(_packed);
            _model = new Model(spec, _timed);
            _parameters = new float[_model.ParameterCount];
            _model.Initialize(_parameters, 1);
            _gradient = new float[_model.ParameterCount];
            _optimizer = new SgdOptimizer(new SgdOptions(0.01, momentum: 0.9), _model.ParameterCount);
            (_data, _order) = RandomData(spec, 4096);
            _features = new float[batch * spec.InputCount];
            _targets = new float[batch];
        }

        public string Name { get; }

        public void Step(bool record)
        {
            if (_next + _batch > _order.Length) _next = 0;
            long t0 = Stopwatch.GetTimestamp();
            BatchSampler.GatherBatch(_data, _order.AsSpan(_next, _batch), _features, _targets);
            long t1 = Stopwatch.GetTimestamp();
            _timed.Recording = record;
            _model.LossAndGradient(_parameters, _features, _targets, _batch, _gradient);
            _timed.Recording = false;
            long t2 = Stopwatch.GetTimestamp();
            _optimizer.Step(_parameters, _gradient);
            long t3 = Stopwatch.GetTimestamp();
            _next += _batch;
            if (!record) return;
            _gather.Add(Micros(t1 - t0));
            _compute.Add(Micros(t2 - t1));
            _update.Add(Micros(t3 - t2));
            _timed.EndStep();
        }

        /// <summary>Every part's times, step by step; the last row is the whole step.</summary>
        public List<(string Name, IReadOnlyList<double> Micros)> Rows()
        {
            int steps = _compute.Count;
            var rows = new List<(string Name, IReadOnlyList<double> Micros)>();
            var gemmTotal = new double[steps];
            foreach (var (call, times) in _timed.Calls)
            {
                for (int s = 0; s < steps; s++) gemmTotal[s] += times[s];
                rows.Add(($"GEMM {call}", times));
            }
            rows.Add(("GEMMs together", gemmTotal));
            rows.Add(("fwd+bwd outside the GEMMs", _compute.Select((c, s) => c - gemmTotal[s]).ToList()));
            rows.Add(("gather", _gather));
            rows.Add(("update (SGD, momentum 0.9)", _update));
            rows.Add(("whole step", _gather.Select((g, s) => g + _compute[s] + _update[s]).ToList()));
            return rows;
        }

        public void Dispose() => _packed.Dispose();
    }

    private static void Row(string name, IReadOnlyList<double> micros) =>
        Console.WriteLine($"{name,-36} {Median(micros),10:F1} {micros.Min(),11:F1}");

    private static double Median(IReadOnlyList<double> values)
    {
        var sorted = values.ToArray();
        Array.Sort(sorted);
        return sorted[sorted.Length / 2];
    }

    private static double Micros(long ticks) => ticks * 1e6 / Stopwatch.Frequency;

    private static (Dataset Data, int[] Order) RandomData(ModelSpec spec, int count)
    {
        var random = new Random(2);
        var x = new float[count * spec.InputCount];
        for (int i = 0; i < x.Length; i++) x[i] = (float)random.NextDouble();
        var y = new float[count];
        for (int i = 0; i < count; i++) y[i] = random.Next(spec.ClassCount);
        var order = Enumerable.Range(0, count).OrderBy(_ => random.Next()).ToArray();
        return (new Dataset("bench", x, spec.InputCount, y, spec.ClassCount), order);
    }

    private static string? Option(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    private static int IntOption(string[] args, string name, int fallback) =>
        Option(args, name) is { } s ? int.Parse(s, CultureInfo.InvariantCulture) : fallback;

    /// <summary>Times every Gemm call of a step, keyed by its shape in call order.</summary>
    private sealed class TimedKernels(IMatrixKernels inner) : IMatrixKernels
    {
        private int _call;

        public string Name => inner.Name;

        public bool Recording { get; set; }

        /// <summary>Per call position in a step: its label and its time in each recorded step.</summary>
        public List<(string Call, List<double> Micros)> Calls { get; } = [];

        public void EndStep() => _call = 0;

        public void Gemm(bool transposeA, bool transposeB, int m, int n, int k, float alpha, ReadOnlySpan<float> a, int lda,
                         ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc)
        {
            long t0 = Stopwatch.GetTimestamp();
            inner.Gemm(transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
            long t1 = Stopwatch.GetTimestamp();
            if (!Recording) return;
            if (_call == Calls.Count)
                Calls.Add(($"{m}×{n}×{k}{(transposeA ? " (tA)" : "")}{(transposeB ? " (tB)" : "")}", []));
            Calls[_call++].Micros.Add(Micros(t1 - t0));
        }
    }
}
