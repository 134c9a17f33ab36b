using MathNet.Numerics.LinearAlgebra;

namespace DistSgd.Bench;

/// <summary>MathNet.Numerics's managed provider, for contrast: Matrix&lt;float&gt;.Multiply into a preallocated result.</summary>
public static class MathNetGemm
{
    public static (Matrix<float> A, Matrix<float> B, Matrix<float> C) Allocate(GemmShape shape)
    {
        var (a, b, _) = shape.Allocate();
        // MathNet stores column-major, so build element by element from the row-major arrays.
        var ma = Matrix<float>.Build.Dense(shape.M, shape.K, (i, p) => a[i * shape.K + p]);
        var mb = Matrix<float>.Build.Dense(shape.K, shape.N, (p, j) => b[p * shape.N + j]);
        return (ma, mb, Matrix<float>.Build.Dense(shape.M, shape.N));
    }
}
