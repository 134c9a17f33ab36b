using System.Numerics.Tensors;

namespace DistSgd.Numerics.Compression;

/// <summary>
/// A node's sender side of a <see cref="ShareEncoding"/>: turns each gradient it computes, in place, into exactly what
/// the wire delivers to every receiver, and keeps the error feedback of a sparse encoding.
/// </summary>
/// <remarks>
/// Dense 16-bit: g ← round(g). Sparse (top-k with error feedback, as in Deep Gradient Compression): the residual r of what
/// was not sent is added first, a ← r + g; the k largest |aᵢ| are sent, rounded to the wire precision, qᵢ = round(aᵢ);
/// r ← a − q (zero where a value went whole, the rounding error where it went rounded, aᵢ elsewhere). So
/// Σ sent + r = Σ gradients: nothing is lost, only delayed. One selector, index buffer and residual per compressor,
/// nothing allocated per step.
/// A gradient with a NaN or ∞ (or whose sum overflows) is not compressed: it is cleared, the residual is left as it was,
/// and <see cref="Compress"/> returns false, so the caller marks its share non-finite (a diverged step is judged the same on
/// every node).
/// </remarks>
public sealed class GradientCompressor
{
    private readonly float[] _residual;
    private readonly int[] _indices;
    private readonly TopKSelector? _selector;

    /// <param name="length">Values per gradient (the model's parameter count).</param>
    public GradientCompressor(ShareEncoding encoding, int length)
    {
        Encoding = encoding;
        Length = length;
        KeptCount = encoding.KeptCount(length);
        _residual = encoding.IsSparse ? new float[length] : [];
        _indices = encoding.IsSparse ? new int[KeptCount] : [];
        _selector = encoding.IsSparse ? new TopKSelector() : null;
    }

    public ShareEncoding Encoding { get; }

    /// <summary>Values per gradient.</summary>
    public int Length { get; }

    /// <summary>Values a compressed gradient keeps (<see cref="Length"/> when dense).</summary>
    public int KeptCount { get; }

    /// <summary>What was computed and not yet sent (empty when dense).</summary>
    public ReadOnlySpan<float> Residual => _residual;

    /// <summary>
    /// gradient ← what the wire delivers (see the remarks); false, with the gradient cleared and nothing else changed,
    /// when it is not finite. An empty gradient (no samples) stays empty.
    /// </summary>
    public bool Compress(Span<float> gradient)
    {
        if (gradient.IsEmpty)
            return true;
        if (gradient.Length != Length)
            throw new ArgumentException($"gradient has {gradient.Length} values, the compressor {Length}", nameof(gradient));
        if (!float.IsFinite(TensorPrimitives.Sum(gradient)))
        {
            gradient.Clear();
            return false;
        }
        if (!Encoding.IsSparse)
        {
            Encoding.Round(gradient);
            return true;
        }
        // a ← r + g, kept in r; send round(a) at the top k; r ← a − sent.
        TensorPrimitives.Add(_residual, gradient, _residual);
        _selector!.Select(_residual, KeptCount, _indices);
        gradient.Clear();
        foreach (int i in _indices)
        {
            float accumulated = _residual[i];
            float sent = RoundOne(accumulated);
            if (sent == 0)
                sent = 0;   // +0: the sparse wire carries no zeros, and receivers see +0 there
            gradient[i] = sent;
            _residual[i] = accumulated - sent;
        }
        return true;
    }

    /// <summary>Forgets the residual (a node that starts over, e.g. after a resume).</summary>
    public void Reset() => _residual.AsSpan().Clear();

    private float RoundOne(float value) => Encoding.Precision switch
    {
        WirePrecision.Bf16 => HalfFloats.RoundToBf16(value),
        WirePrecision.Fp16 => HalfFloats.RoundToFp16(value, Encoding.Fp16Scale),
        _ => value,
    };
}
