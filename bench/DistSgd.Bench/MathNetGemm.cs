using MathNet.Numerics.LinearAlgebra;

namespace DistSgd.Bench;

/// <summary>MathNet.Numerics's managed provider, for contrast: Matrix&lt;float&gt;.Multiply into a preallocated result.</summary>
public static class MathNetGemm
{
    public static (Matrix<float> A, Matrix<float> B, Matrix<float> C) Allocate(GemmShape shape)
    {
        var (a, b, _) = shape.Allocate();
        // MathNet stores column-major: a row-major m×k array is the column-major k×m matrix Aᵀ,
        // so build from row arrays instead.
        var ma = Matrix<float>.Build.Dense(shape.M, shape.K, (i, p) => a[i * shape.K + p]);
        var mb = Matrix<float>.Build.Dense(shape.K, shape.N, (p, j) => b[p * shape.N + j]);
        return (ma, mb, Matrix<float>.Build.Dense(shape.M, shape.N));
    }

    public static double Measure(GemmShape shape, int samples)
    {
        var (a, b, c) = Allocate(shape);
        return QuickBench.MedianGflops(() => a.Multiply(b, c), shape.Flops);
    }
}
