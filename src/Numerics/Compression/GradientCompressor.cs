using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using DistSgd.Numerics.Tensors;

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
/// With momentum correction (Deep Gradient Compression, §3.2; <see cref="ShareEncoding.MomentumCorrection"/>) the node
/// keeps its own velocity u and accumulates that instead of the gradient: u ← m·u + g, a ← r + u, the top k of a are sent
/// as above, and u is cleared where a value was sent (momentum factor masking: a sent coordinate's momentum is not
/// applied again later). Then Σ sent + r = Σ of the velocities u added (each step's m·u + g, u masked the step before);
/// the receivers step without momentum (<see cref="ShareEncoding.ReceiverOptions"/>).
/// A gradient with a NaN or ∞ (any value: <see cref="FiniteValues.All"/>, decision 0128) is not compressed: it is cleared, the residual is left as it was,
/// and <see cref="Compress(Span{float})"/> returns false, so the caller marks its share non-finite (a diverged step is judged the same on
/// every node).
/// </remarks>
public sealed class GradientCompressor
{
    private readonly float[] _residual;
    private readonly float[] _velocity;
    private readonly float _momentum;
    private readonly int[] _indices;
    private readonly TopKSelector? _selector;

    /// <param name="length">Values per gradient (the model's parameter count).</param>
    /// <param name="momentum">The momentum m this sender applies itself (momentum correction; 0: none, the gradient itself
    /// is accumulated). Only a sparse encoding takes one (<see cref="ShareEncoding.SenderMomentum"/>).</param>
    public GradientCompressor(ShareEncoding encoding, int length, double momentum = 0)
    {
        if (!(momentum >= 0 && momentum < 1))
            throw new ArgumentOutOfRangeException(nameof(momentum), momentum, "momentum must be in [0, 1)");
        if (momentum > 0 && !encoding.IsSparse)
            throw new ArgumentException("only a sparse (top-k) encoding corrects momentum at the sender", nameof(momentum));
        Encoding = encoding;
        Length = length;
        KeptCount = encoding.KeptCount(length);
        _residual = encoding.IsSparse ? new float[length] : [];
        _momentum = (float)momentum;
        _velocity = momentum > 0 ? new float[length] : [];
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

    /// <summary>This sender's velocity u, masked where the last step sent (empty without momentum correction).</summary>
    public ReadOnlySpan<float> Velocity => _velocity;

    /// <summary>
    /// gradient ← what the wire delivers (see the remarks); false, with the gradient cleared and nothing else changed,
    /// when it is not finite. An empty gradient (no samples) stays empty.
    /// </summary>
    public bool Compress(Span<float> gradient) => Compress(gradient, null);

    /// <summary>
    /// <see cref="Compress(Span{float})"/>, and with a sparse encoding <paramref name="entries"/> ← the compressed
    /// gradient's entries (its values that are not ±0, as the wire sends them), read from the selection without scanning the
    /// gradient; no entries when it is not finite or empty. <paramref name="entries"/> null: none are kept.
    /// </summary>
    public bool Compress(Span<float> gradient, SparseVector? entries)
    {
        entries?.Clear();
        if (entries is not null && (!Encoding.IsSparse || entries.Length != Length || entries.Capacity < KeptCount))
            throw new ArgumentException($"entries for {entries.Length} values and {entries.Capacity} entries; this compressor ({Encoding}) keeps {KeptCount} of {Length}", nameof(entries));
        if (gradient.IsEmpty)
            return true;
        if (gradient.Length != Length)
            throw new ArgumentException($"gradient has {gradient.Length} values, the compressor {Length}", nameof(gradient));
        if (!FiniteValues.All(gradient))
        {
            gradient.Clear();
            return false;
        }
        if (!Encoding.IsSparse)
        {
            Encoding.Round(gradient);
            return true;
        }
        // a ← r + g (with momentum correction: u ← m·u + g, a ← r + u), kept in r, and g cleared, in the pass that collects
        // the selection's candidates; then send round(a) at the top k, r ← a − sent.
        var pass = new ErrorFeedbackPass(_residual, _velocity, _momentum, gradient, TopKSelector.Vectorized);
        _selector!.Select(ref pass, KeptCount, _indices);
        foreach (int i in _indices)
        {
            float accumulated = _residual[i];
            float sent = RoundOne(accumulated);
            if (sent == 0)
                sent = 0;   // +0: the sparse wire carries no zeros, and receivers see +0 there
            gradient[i] = sent;
            _residual[i] = accumulated - sent;
        }
        if (_velocity.Length > 0)
            foreach (int i in _indices)
                _velocity[i] = 0;   // momentum factor masking
        entries?.Collect(gradient, _indices);
        return true;
    }

    /// <summary>Forgets the residual and the velocity (a node that starts over, e.g. after a resume).</summary>
    public void Reset()
    {
        _residual.AsSpan().Clear();
        _velocity.AsSpan().Clear();
    }

    private float RoundOne(float value) => Encoding.Precision switch
    {
        WirePrecision.Bf16 => HalfFloats.RoundToBf16(value),
        WirePrecision.Fp16 => HalfFloats.RoundToFp16(value, Encoding.Fp16Scale),
        _ => value,
    };

    /// <summary>
    /// The error feedback's one pass over memory: u ← m·u + g (with momentum correction), r ← r + u (or r + g), g ← 0, and
    /// the selection's candidates collected from the new r. Each value goes through the same float operations, unfused
    /// and in the same order, as TensorPrimitives.MultiplyAdd then Add did before (decision 0134), so not a bit changes.
    /// </summary>
    /// <param name="vectorized">Eight values at once (Vector256, <see cref="TopKSelector.Vectorized"/>), else one by one; a test runs both.</param>
    internal ref struct ErrorFeedbackPass(Span<float> residual, Span<float> velocity, float momentum, Span<float> gradient, bool vectorized)
        : ICandidatePass
    {
        private readonly Span<float> _residual = residual, _velocity = velocity, _gradient = gradient;

        public readonly int Length => _residual.Length;

        public readonly ReadOnlySpan<float> Values => _residual;

        public readonly float Peek(int index) =>
            _residual[index] + (_velocity.IsEmpty ? _gradient[index] : _velocity[index] * momentum + _gradient[index]);

        public readonly int Run(uint threshold, Span<int> at, Span<uint> magnitudes)
        {
            ref float r = ref MemoryMarshal.GetReference(_residual);
            ref float u = ref MemoryMarshal.GetReference(_velocity);
            ref float g = ref MemoryMarshal.GetReference(_gradient);
            var bits = MemoryMarshal.Cast<float, uint>((ReadOnlySpan<float>)_residual);
            bool corrected = !_velocity.IsEmpty;
            int n = _residual.Length, i = 0, count = 0;
            if (vectorized)
            {
                var m = Vector256.Create(momentum);
                var limit = Vector256.Create((int)threshold);
                for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count)
                {
                    var added = Vector256.LoadUnsafe(ref g, (nuint)i);
                    if (corrected)
                    {
                        added = Vector256.LoadUnsafe(ref u, (nuint)i) * m + added;
                        added.StoreUnsafe(ref u, (nuint)i);
                    }
                    var a = Vector256.LoadUnsafe(ref r, (nuint)i) + added;
                    a.StoreUnsafe(ref r, (nuint)i);
                    Vector256<float>.Zero.StoreUnsafe(ref g, (nuint)i);
                    if (count >= 0 && !TopKSelector.CollectEight(a.AsUInt32(), limit, bits, i, at, magnitudes, ref count))
                        count = -1;
                }
            }
            for (; i < n; i++)
            {
                float added = corrected ? (_velocity[i] = _velocity[i] * momentum + _gradient[i]) : _gradient[i];
                _residual[i] += added;
                _gradient[i] = 0;
                if (count >= 0 && !TopKSelector.CollectOne(bits, i, threshold, at, magnitudes, ref count))
                    count = -1;
            }
            return count;
        }
    }
}
