using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Running;
using DistSgd.Numerics.Data;
using DistSgd.Numerics.Models;
using DistSgd.Numerics.Optim;
using DistSgd.Numerics.Tensors;

namespace DistSgd.Bench;

/// <summary>
/// One whole SGD step as the trainers run it: gather the batch's rows, forward, backward, optimizer
/// update (momentum 0.9). Useful flops per sample = 6 × parameters (2 forward, 4 backward), the usual
/// count, so the MLP's step is ≈ 1.41 MFLOP per sample.
/// </summary>
public sealed class TrainingStep : IDisposable
{
    private readonly Model _model;
    private readonly SgdOptimizer _optimizer;
    private readonly Dataset _data;
    private readonly float[] _parameters, _gradient, _features, _targets;
    private readonly int[] _order;
    private readonly PackedKernels _kernels;
    private int _next;

    public TrainingStep(ModelSpec spec, int batch, int threads)
    {
        _kernels = MatrixKernels.Create(threads);
        _model = new Model(spec, _kernels);
        _parameters = new float[_model.ParameterCount];
        _model.Initialize(_parameters, 1);
        _gradient = new float[_model.ParameterCount];
        _optimizer = new SgdOptimizer(new SgdOptions(0.01, momentum: 0.9), _model.ParameterCount);
        var random = new Random(2);
        const int count = 4096;
        var x = new float[count * spec.InputCount];
        for (int i = 0; i < x.Length; i++) x[i] = (float)random.NextDouble();
        var y = new float[count];
        for (int i = 0; i < count; i++) y[i] = random.Next(spec.ClassCount);
        _data = new Dataset("bench", x, spec.InputCount, y, spec.ClassCount);
        _order = Enumerable.Range(0, count).OrderBy(_ => random.Next()).ToArray();
        _features = new float[batch * spec.InputCount];
        _targets = new float[batch];
        Batch = batch;
    }

    public int Batch { get; }

    public double FlopsPerStep => 6.0 * _model.ParameterCount * Batch;

    public string KernelName => _kernels.Name;

    public void Run()
    {
        if (_next + Batch > _order.Length) _next = 0;
        BatchSampler.GatherBatch(_data, _order.AsSpan(_next, Batch), _features, _targets);
        _next += Batch;
        _model.LossAndGradient(_parameters, _features, _targets, Batch, _gradient);
        _optimizer.Step(_parameters, _gradient);
    }

    /// <summary>Median microseconds of each part of a step: gather, forward + backward, optimizer update.</summary>
    public (double Gather, double ForwardBackward, double Update) Parts(int repetitions = 200)
    {
        var gather = new double[repetitions];
        var compute = new double[repetitions];
        var update = new double[repetitions];
        for (int r = 0; r < repetitions; r++)
        {
            long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
            BatchSampler.GatherBatch(_data, _order.AsSpan(0, Batch), _features, _targets);
            long t1 = System.Diagnostics.Stopwatch.GetTimestamp();
            _model.LossAndGradient(_parameters, _features, _targets, Batch, _gradient);
            long t2 = System.Diagnostics.Stopwatch.GetTimestamp();
            _optimizer.Step(_parameters, _gradient);
            long t3 = System.Diagnostics.Stopwatch.GetTimestamp();
            gather[r] = (t1 - t0) * 1e6 / System.Diagnostics.Stopwatch.Frequency;
            compute[r] = (t2 - t1) * 1e6 / System.Diagnostics.Stopwatch.Frequency;
            update[r] = (t3 - t2) * 1e6 / System.Diagnostics.Stopwatch.Frequency;
        }
        static double Median(double[] v) { Array.Sort(v); return v[v.Length / 2]; }
        return (Median(gather), Median(compute), Median(update));
    }

    public void Dispose() => _kernels.Dispose();

    public static ModelSpec Mlp => new(ModelKind.Mlp, 784, 10, [256, 128]);

    public static ModelSpec Softmax => new(ModelKind.Softmax, 784, 10);
}

/// <summary>Whole training steps of the MLP and of softmax regression, one thread and all cores.</summary>
public class TrainingStepBenchmarks : IFlopCounted
{
    private TrainingStep _step = null!;

    [Params("mlp", "softmax")]
    public string Model { get; set; } = "mlp";

    [Params(64, 256)]
    public int Batch { get; set; } = 64;

    [Params(1, 0)]
    public int Threads { get; set; } = 1;

    [GlobalSetup]
    public void Setup() =>
        _step = new TrainingStep(Model == "mlp" ? TrainingStep.Mlp : TrainingStep.Softmax, Batch,
                                 Threads == 0 ? Environment.ProcessorCount : Threads);

    [GlobalCleanup]
    public void Cleanup() => _step.Dispose();

    [Benchmark]
    public void Step() => _step.Run();

    public double FlopsPerOperation(BenchmarkCase benchmarkCase)
    {
        var spec = (string)benchmarkCase.Parameters["Model"] == "mlp" ? TrainingStep.Mlp : TrainingStep.Softmax;
        return 6.0 * spec.ParameterCount * (int)benchmarkCase.Parameters["Batch"];
    }
}
