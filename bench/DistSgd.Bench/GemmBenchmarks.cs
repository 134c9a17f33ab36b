using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Running;
using DistSgd.Numerics.Tensors;
using MathNet.Numerics.LinearAlgebra;

namespace DistSgd.Bench;

/// <summary>The reference for every GEMM: one core's Vector256 (and Vector512) FMA peak.</summary>
public class GemmFmaPeak : IFlopCounted
{
    private const int Iterations = 1_000_000;

    [Benchmark(Baseline = true, OperationsPerInvoke = Iterations)]
    public float Vector256Fma() => FmaPeak.Run256(Iterations);

    [Benchmark(OperationsPerInvoke = Iterations)]
    public float Vector512Fma() => FmaPeak.Run512(Iterations);

    public double FlopsPerOperation(BenchmarkCase benchmarkCase) =>
        benchmarkCase.Descriptor.WorkloadMethod.Name == nameof(Vector512Fma) ? FmaPeak.Flops512(1) : FmaPeak.Flops256(1);
}

/// <summary>The MLP's GEMMs (forward and backward, batch 64 and 256) on the packed kernels.</summary>
public class GemmBenchmarks : IFlopCounted
{
    private PackedKernels _one = null!, _all = null!;
    private float[] _a = [], _b = [], _c = [];

    public static IEnumerable<GemmShape> Shapes() => GemmShape.Mlp(64).Concat(GemmShape.Mlp(256));

    [ParamsSource(nameof(Shapes))]
    public GemmShape Shape { get; set; } = GemmShape.Mlp(64)[0];

    [GlobalSetup]
    public void Setup()
    {
        _one = new PackedKernels(threads: 1);
        _all = new PackedKernels(threads: Environment.ProcessorCount);
        (_a, _b, _c) = Shape.Allocate();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _one.Dispose();
        _all.Dispose();
    }

    [Benchmark(Baseline = true)]
    public void Packed1Thread() => Run(_one);

    [Benchmark]
    public void PackedAllCores() => Run(_all);

    private void Run(IMatrixKernels k) =>
        k.Gemm(Shape.TransposeA, Shape.TransposeB, Shape.M, Shape.N, Shape.K, 1f, _a, Shape.Lda, _b, Shape.Ldb, 0f, _c, Shape.N);

    public double FlopsPerOperation(BenchmarkCase benchmarkCase) =>
        ((GemmShape)benchmarkCase.Parameters["Shape"]).Flops;
}

/// <summary>For contrast at one shape (forward layer 1, batch 64): MathNet's managed provider.</summary>
public class GemmMathNetBenchmarks : IFlopCounted
{
    private static readonly GemmShape Shape = GemmShape.Mlp(64)[0];
    private Matrix<float> _a = null!, _b = null!, _c = null!;
    private readonly PackedKernels _packed = new(threads: 1);
    private float[] _fa = [], _fb = [], _fc = [];

    [GlobalSetup]
    public void Setup()
    {
        (_a, _b, _c) = MathNetGemm.Allocate(Shape);
        (_fa, _fb, _fc) = Shape.Allocate();
    }

    [Benchmark(Baseline = true)]
    public void Packed1Thread() =>
        _packed.Gemm(false, false, Shape.M, Shape.N, Shape.K, 1f, _fa, Shape.Lda, _fb, Shape.Ldb, 0f, _fc, Shape.N);

    [Benchmark]
    public void MathNetManaged() => _a.Multiply(_b, _c);

    public double FlopsPerOperation(BenchmarkCase benchmarkCase) => Shape.Flops;
}
