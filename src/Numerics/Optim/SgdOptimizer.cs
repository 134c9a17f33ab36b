using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using DistSgd.Numerics.Tensors;

namespace DistSgd.Numerics.Optim;

/// <summary>
/// The optimizer's changing state: the number of steps taken and the momentum buffer v (empty when
/// momentum is 0). Saved with checkpoints so a resumed run continues exactly.
/// </summary>
public sealed class SgdState
{
    public SgdState(long step, float[] velocity)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(step);
        Step = step;
        Velocity = velocity ?? throw new ArgumentNullException(nameof(velocity));
    }

    public long Step { get; internal set; }

    public float[] Velocity { get; }

    private const uint Magic = 0x53474453; // "SDGS"

    /// <summary>Writes the state as: magic, step, velocity length, velocity (float32, little-endian).</summary>
    public void Save(Stream stream)
    {
        using var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true);
        writer.Write(Magic);
        writer.Write(Step);
        writer.Write(Velocity.Length);
        writer.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(Velocity.AsSpan()));
    }

    /// <summary>Reads a state written by <see cref="Save"/>; throws InvalidDataException when it is not one.</summary>
    public static SgdState Load(Stream stream)
    {
        using var reader = new BinaryReader(stream, System.Text.Encoding.UTF8, leaveOpen: true);
        try
        {
            uint magic = reader.ReadUInt32();
            if (magic != Magic)
                throw new InvalidDataException($"not an optimizer state: magic 0x{magic:X8}, expected 0x{Magic:X8}");
            long step = reader.ReadInt64();
            int length = reader.ReadInt32();
            if (step < 0 || length < 0)
                throw new InvalidDataException($"optimizer state has step {step} and velocity length {length}; both must be ≥ 0");
            // The length is checked against what is left before anything is allocated: a corrupt length must not cost gigabytes.
            if (stream.CanSeek && length > (stream.Length - stream.Position) / sizeof(float))
                throw new InvalidDataException($"optimizer state has a velocity of {length} values, but only {stream.Length - stream.Position} bytes follow");
            var velocity = new float[length];
            reader.BaseStream.ReadExactly(System.Runtime.InteropServices.MemoryMarshal.AsBytes(velocity.AsSpan()));
            return new SgdState(step, velocity);
        }
        catch (EndOfStreamException e)
        {
            throw new InvalidDataException("optimizer state is truncated", e);
        }
    }
}

/// <summary>What <see cref="SgdOptimizer.AverageAndStep"/> did.</summary>
/// <param name="Samples">Σ wᵢ of the averaged gradients; 0: nothing was applied.</param>
/// <param name="ParameterSum">Σθ after the step, summed block by block: finite exactly when every θᵢ is (barring overflow, which is divergence too).</param>
public readonly record struct AveragedStep(long Samples, float ParameterSum);

/// <summary>
/// Stochastic gradient descent with momentum, Nesterov momentum, L2 weight decay and a learning-rate
/// schedule, in the formulation PyTorch uses:
/// g′ = g + λ·θ;  v ← μ·v + g′;  θ ← θ − η_t·v  (Nesterov: θ ← θ − η_t·(g′ + μ·v));  without momentum θ ← θ − η_t·g′.
/// </summary>
/// <remarks>
/// State changes only in <see cref="Step"/>, <see cref="AverageAndStep"/> and <see cref="StepAveraged"/>. Element-wise and
/// single-threaded, so bit-identical for identical inputs. Each is one pass over memory. The averaged steps go per SIMD
/// vector: θ, v and the shares are loaded once, averaged and updated in registers, and θ and v stored once (with three
/// or more shares the average of a block of <see cref="BlockLength"/> values is summed first, in an L1-sized buffer).
/// <see cref="Step"/> (one gradient, nothing to average) runs its operations block by block, each block in L1. Each
/// element still goes through the same float operations in the same order as when each operation ran over the whole
/// arrays, so neither changes a bit (decisions 0065, 0118).
/// </remarks>
public sealed class SgdOptimizer
{
    /// <summary>Values per block (<see cref="Step"/>, the average of three or more shares): 4 KiB of float32, so a block stays in L1.</summary>
    public const int BlockLength = 1024;

    public SgdOptimizer(SgdOptions options, int parameterCount)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(parameterCount);
        Options = options;
        ParameterCount = parameterCount;
        State = new SgdState(0, options.Momentum > 0 ? new float[parameterCount] : []);
        Schedule = options.Schedule;
    }

    public SgdOptions Options { get; }

    public int ParameterCount { get; }

    public SgdState State { get; private set; }

    /// <summary>
    /// The learning-rate schedule in effect: the options' schedule, re-planned by <see cref="Replan"/> when the run's
    /// length changed under it. Part of the state a checkpoint saves (as its <see cref="LearningRateSchedule.Replans"/>).
    /// </summary>
    public LearningRateSchedule Schedule { get; private set; }

    /// <summary>The learning rate the next step will use.</summary>
    public double CurrentLearningRate => Schedule.RateAt(State.Step, Options.LearningRate);

    /// <summary>
    /// The run now has <paramref name="remainingSteps"/> steps left from the next one (<see cref="SgdState.Step"/>):
    /// re-plans the schedule so that it ends after them (<see cref="LearningRateSchedule.Replan"/>). Returns true when
    /// the schedule changed, false when it already ended there or has no planned length.
    /// </summary>
    public bool Replan(long remainingSteps)
    {
        var replanned = Schedule.Replan(State.Step, remainingSteps);
        if (ReferenceEquals(replanned, Schedule))
            return false;
        Schedule = replanned;
        return true;
    }

    /// <summary>Puts a saved run's re-plans back (a resumed run): the options' schedule with <paramref name="replans"/> applied in order.</summary>
    public void RestoreReplans(IReadOnlyList<ScheduleReplan> replans) => Schedule = Options.Schedule.WithReplans(replans);

    /// <summary>Applies one update to θ in place with the gradient g and advances the step.</summary>
    public void Step(Span<float> parameters, ReadOnlySpan<float> gradient)
    {
        if (parameters.Length != ParameterCount || gradient.Length != ParameterCount)
            throw new ArgumentException($"the optimizer holds {ParameterCount} parameters; found θ of {parameters.Length} and a gradient of {gradient.Length}");
        // A single gradient needs no average: the update's two operations run block by block, each over a block in L1
        // (measured faster alone than the register pass, which pays for what the averaged steps need: 0.06–0.08 against
        // 0.09–0.19 ms for 235,146 values).
        float rate = (float)CurrentLearningRate;
        Span<float> scratch = stackalloc float[BlockLength];
        var velocity = State.Velocity.AsSpan();
        for (int start = 0; start < ParameterCount; start += BlockLength)
        {
            int length = Math.Min(BlockLength, ParameterCount - start);
            UpdateBlock(parameters.Slice(start, length), gradient.Slice(start, length),
                        velocity.IsEmpty ? velocity : velocity.Slice(start, length), scratch[..length], rate);
        }
        State.Step++;
    }

    /// <summary>The update of one block by <see cref="Step"/>: θ, g and v (empty without momentum) are the block's slices; scratch as long as θ.</summary>
    private void UpdateBlock(Span<float> parameters, ReadOnlySpan<float> gradient, Span<float> v, Span<float> scratch, float rate)
    {
        ReadOnlySpan<float> g = gradient;
        if (Options.WeightDecay > 0)
        {
            // g′ = θ·λ + g
            TensorPrimitives.MultiplyAdd(parameters, (float)Options.WeightDecay, gradient, scratch);
            g = scratch;
        }
        if (Options.Momentum > 0)
        {
            float mu = (float)Options.Momentum;
            // v ← v·μ + g′
            TensorPrimitives.MultiplyAdd(v, mu, g, v);
            if (Options.Nesterov)
            {
                // θ ← (v·μ + g′)·(−η) + θ
                TensorPrimitives.MultiplyAdd(v, mu, g, scratch);
                TensorPrimitives.MultiplyAdd(scratch, -rate, parameters, parameters);
            }
            else
            {
                TensorPrimitives.MultiplyAdd(v, -rate, parameters, parameters);
            }
        }
        else
        {
            TensorPrimitives.MultiplyAdd(g, -rate, parameters, parameters);
        }
    }

    /// <summary>
    /// Averages the gradients of a step and applies the update, in one pass over memory: ḡ = Σ wᵢ·gᵢ / Σ wᵢ summed in
    /// the order given (with exactly the operations of <see cref="Training.GradientAggregation.WeightedAverage"/>), then
    /// <see cref="Step"/> with ḡ. A gradient of weight 0 is skipped and may be empty. With Σ wᵢ = 0 nothing is applied
    /// and the step is not advanced.
    /// </summary>
    /// <param name="parametersBefore">When not empty, receives θ as it was before the update (ParameterCount values).</param>
    /// <param name="velocityBefore">When not empty, receives v as it was before the update (the velocity's length).</param>
    public AveragedStep AverageAndStep(Span<float> parameters, IReadOnlyList<ReadOnlyMemory<float>> gradients, IReadOnlyList<int> weights,
                                       Span<float> parametersBefore = default, Span<float> velocityBefore = default)
    {
        CheckAverageArguments("gradients", gradients.Count, weights.Count, parameters, parametersBefore, velocityBefore);
        long total = 0;
        int weighted = 0, first = -1, second = -1;
        for (int i = 0; i < gradients.Count; i++)
        {
            int weight = Weight(weights, i);
            if (weight == 0)
                continue;
            if (gradients[i].Length != ParameterCount)
                throw new ArgumentException($"share {i} has {gradients[i].Length} values, expected {ParameterCount}");
            total += weight;
            (first, second) = weighted switch { 0 => (i, second), 1 => (first, i), _ => (first, second) };
            weighted++;
        }
        float scale = 1f / total;
        float sum = weighted switch
        {
            0 => Pass(new Averaged(default), apply: false, parameters, 0, ParameterCount, parametersBefore, velocityBefore),
            // One or two shares (the common cases: 1–2 workers or peers) are averaged in registers.
            1 => Pass(new OneShare(gradients[first].Span, weights[first], scale), apply: true, parameters, 0, ParameterCount,
                      parametersBefore, velocityBefore),
            2 => Pass(new TwoShares(gradients[first].Span, weights[first], gradients[second].Span, weights[second], scale), apply: true,
                      parameters, 0, ParameterCount, parametersBefore, velocityBefore),
            _ => AverageInBlocksAndStep(parameters, gradients, weights, scale, parametersBefore, velocityBefore),
        };
        if (total > 0)
            State.Step++;
        return new AveragedStep(total, sum);
    }

    /// <summary>
    /// Three or more shares: block by block, ḡ of the block in an L1-sized buffer (ḡ ← 0; ḡ ← wᵢ·gᵢ + ḡ in the order given;
    /// ḡ ← ḡ · (1/Σ wᵢ)), then the block's fused update. Returns Σθ.
    /// </summary>
    private float AverageInBlocksAndStep(Span<float> parameters, IReadOnlyList<ReadOnlyMemory<float>> gradients, IReadOnlyList<int> weights,
                                         float scale, Span<float> parametersBefore, Span<float> velocityBefore)
    {
        Span<float> average = stackalloc float[BlockLength];
        float sum = 0;
        for (int start = 0; start < ParameterCount; start += BlockLength)
        {
            int length = Math.Min(BlockLength, ParameterCount - start);
            var g = average[..length];
            g.Clear();
            for (int i = 0; i < gradients.Count; i++)
                if (weights[i] > 0)
                    TensorPrimitives.MultiplyAdd(gradients[i].Span.Slice(start, length), weights[i], g, g);
            TensorPrimitives.Multiply(g, scale, g);
            sum += Pass(new Averaged(g), apply: true, parameters, start, length, parametersBefore, velocityBefore);
        }
        return sum;
    }

    /// <summary>
    /// <see cref="AverageAndStep"/> over sparse shares given by their entries (<see cref="SparseVector"/>; every other value
    /// of a share is +0), with the same bits (decision 0141): ḡ ← +0; for each share in the order given, ḡᵢ ← v·w + ḡᵢ at
    /// each of its entries (i, v) only; then the update with ḡ · (1/Σ w) read in the step's one pass. The dense average adds
    /// w·(+0) = +0 at every other value, and x + (+0) = x for every x that a sum starting at +0 can reach (it is never −0),
    /// so skipping them changes nothing. Work per share: its entries, not its length. A share of weight 0 is skipped and
    /// may be null; every other must be for <see cref="ParameterCount"/> values. With Σ w = 0 nothing is applied and the
    /// step is not advanced.
    /// </summary>
    /// <remarks>ḡ is this optimizer's own buffer (made on the first call), left all +0 again at each entry after the step.</remarks>
    /// <param name="parametersBefore">When not empty, receives θ as it was before the update (ParameterCount values).</param>
    /// <param name="velocityBefore">When not empty, receives v as it was before the update (the velocity's length).</param>
    public AveragedStep AverageEntriesAndStep(Span<float> parameters, IReadOnlyList<SparseVector?> shares, IReadOnlyList<int> weights,
                                              Span<float> parametersBefore = default, Span<float> velocityBefore = default)
    {
        CheckAverageArguments("shares", shares.Count, weights.Count, parameters, parametersBefore, velocityBefore);
        long total = 0;
        for (int i = 0; i < shares.Count; i++)
        {
            int weight = Weight(weights, i);
            if (weight == 0)
                continue;
            if (shares[i] is not { } entries || entries.Length != ParameterCount)
                throw new ArgumentException($"share {i} has {(shares[i] is { } e ? $"entries of {e.Length} values" : "no entries")}, expected entries of {ParameterCount}");
            total += weight;
        }
        if (total == 0)
        {
            float unchanged = Pass(new Averaged(default), apply: false, parameters, 0, ParameterCount, parametersBefore, velocityBefore);
            return new AveragedStep(0, unchanged);
        }
        var sum = _entrySum ??= new float[ParameterCount];
        for (int i = 0; i < shares.Count; i++)
            if (weights[i] > 0)
                AddEntries(shares[i]!, weights[i], sum);
        float scale = 1f / total;
        float parameterSum = Pass(new Scaled(sum, scale), apply: true, parameters, 0, ParameterCount, parametersBefore, velocityBefore);
        for (int i = 0; i < shares.Count; i++)
            if (weights[i] > 0)
                shares[i]!.ClearIn(sum);
        State.Step++;
        return new AveragedStep(total, parameterSum);
    }

    /// <summary>What both averages check first: a weight per share (<paramref name="what"/> names them), θ of the optimizer's length, the copies' lengths.</summary>
    private void CheckAverageArguments(string what, int count, int weightCount, Span<float> parameters, Span<float> parametersBefore,
                                       Span<float> velocityBefore)
    {
        if (count != weightCount)
            throw new ArgumentException($"{count} {what} but {weightCount} weights");
        if (parameters.Length != ParameterCount)
            throw new ArgumentException($"the optimizer holds {ParameterCount} parameters; found θ of {parameters.Length}");
        CheckCopies(parametersBefore, velocityBefore);
    }

    /// <summary>Share <paramref name="i"/>'s weight, its sample count: refused when negative.</summary>
    private static int Weight(IReadOnlyList<int> weights, int i) =>
        weights[i] >= 0 ? weights[i] : throw new ArgumentOutOfRangeException(nameof(weights), weights[i], $"share {i} has a negative sample count");

    /// <summary>ḡ for <see cref="AverageEntriesAndStep"/>: all +0 between calls.</summary>
    private float[]? _entrySum;

    /// <summary>sum[i] ← v·w + sum[i] at each entry (i, v): the dense average's operations (TensorPrimitives.MultiplyAdd, unfused), at the entries only.</summary>
    private static void AddEntries(SparseVector entries, float weight, float[] sum)
    {
        var indices = entries.Indices;
        var values = entries.Values;
        ref float first = ref MemoryMarshal.GetArrayDataReference(sum);
        for (int e = 0; e < indices.Length; e++)
        {
            // The indices are checked below the length where the entries were filled (SparseVector), and the length is ParameterCount.
            ref float at = ref Unsafe.Add(ref first, indices[e]);
            at = values[e] * weight + at;
        }
    }

    /// <summary>
    /// Applies the update with a step's gradient already averaged elsewhere (an all-reduce of the peers' shares): the same
    /// operations as <see cref="AverageAndStep"/> after its average, so an average with the same bits gives θ and v with the
    /// same bits. With <paramref name="samples"/> = 0 nothing is applied and the step is not advanced.
    /// </summary>
    /// <param name="average">ḡ = Σ wᵢ·gᵢ / Σ wᵢ (ParameterCount values).</param>
    /// <param name="samples">Σ wᵢ behind <paramref name="average"/>.</param>
    /// <param name="parametersBefore">When not empty, receives θ as it was before the update (ParameterCount values).</param>
    /// <param name="velocityBefore">When not empty, receives v as it was before the update (the velocity's length).</param>
    public AveragedStep StepAveraged(Span<float> parameters, ReadOnlySpan<float> average, long samples,
                                     Span<float> parametersBefore = default, Span<float> velocityBefore = default)
    {
        if (parameters.Length != ParameterCount || average.Length != ParameterCount)
            throw new ArgumentException($"the optimizer holds {ParameterCount} parameters; found θ of {parameters.Length} and an average of {average.Length}");
        ArgumentOutOfRangeException.ThrowIfNegative(samples);
        CheckCopies(parametersBefore, velocityBefore);
        float sum = Pass(new Averaged(average), apply: samples > 0, parameters, 0, ParameterCount, parametersBefore, velocityBefore);
        if (samples > 0)
            State.Step++;
        return new AveragedStep(samples, sum);
    }

    private void CheckCopies(Span<float> parametersBefore, Span<float> velocityBefore)
    {
        int velocity = State.Velocity.Length;
        if (!parametersBefore.IsEmpty && parametersBefore.Length != ParameterCount || !velocityBefore.IsEmpty && velocityBefore.Length != velocity)
            throw new ArgumentException($"the copies before the step need {ParameterCount} and {velocity} values; found {parametersBefore.Length} and {velocityBefore.Length}");
    }

    /// <summary>
    /// The fused pass over θ[start, start + length): per SIMD vector, θ and v are loaded once, copied into the copies
    /// before the step (when given), ḡ is read from <paramref name="average"/>, the update applied (when
    /// <paramref name="apply"/>) and θ and v stored once. Returns Σθ after the step (summed lane by lane: only its
    /// finiteness is used). Each element goes through the same float operations, in the same order, as when each
    /// operation ran over the whole arrays (<see cref="Training.GradientAggregation.WeightedAverage"/>, then
    /// g′ = θ·λ + g; v ← v·μ + g′; θ ← v·(−η) + θ): no bit moves.
    /// </summary>
    private float Pass<TAverage>(scoped TAverage average, bool apply, Span<float> parameters, int start, int length,
                                 Span<float> parametersBefore, Span<float> velocityBefore)
        where TAverage : IAverage, allows ref struct
    {
        var update = new Rule(Options, (float)CurrentLearningRate);
        var theta = parameters.Slice(start, length);
        var velocity = State.Velocity.Length == 0 ? Span<float>.Empty : State.Velocity.AsSpan(start, length);
        var thetaBefore = parametersBefore.IsEmpty ? parametersBefore : parametersBefore.Slice(start, length);
        var velocityCopy = velocityBefore.IsEmpty ? velocityBefore : velocityBefore.Slice(start, length);
        ref float t = ref MemoryMarshal.GetReference(theta);
        ref float v = ref MemoryMarshal.GetReference(velocity);
        var sum = Vector<float>.Zero;
        int width = Vector<float>.Count, i = 0;
        for (; i <= length - width; i += width)
        {
            var thetaNow = Vector.LoadUnsafe(ref t, (nuint)i);
            var velocityNow = velocity.IsEmpty ? default : Vector.LoadUnsafe(ref v, (nuint)i);
            if (!thetaBefore.IsEmpty)
                thetaNow.StoreUnsafe(ref MemoryMarshal.GetReference(thetaBefore), (nuint)i);
            if (!velocityCopy.IsEmpty)
                velocityNow.StoreUnsafe(ref MemoryMarshal.GetReference(velocityCopy), (nuint)i);
            if (apply)
            {
                thetaNow = update.Apply(thetaNow, ref velocityNow, average.Load(i));
                thetaNow.StoreUnsafe(ref t, (nuint)i);
                if (!velocity.IsEmpty)
                    velocityNow.StoreUnsafe(ref v, (nuint)i);
            }
            sum += thetaNow;
        }
        float total = Vector.Sum(sum);
        if (i < length)
            total += Tail(average, update, apply, i, theta, velocity, thetaBefore, velocityCopy);
        return total;
    }

    /// <summary>The last values of a pass, fewer than a vector: the same vector arithmetic on zero-padded copies.</summary>
    private static float Tail<TAverage>(scoped TAverage average, Rule update, bool apply, int i, Span<float> theta, Span<float> velocity,
                                        Span<float> thetaBefore, Span<float> velocityBefore)
        where TAverage : IAverage, allows ref struct
    {
        int count = theta.Length - i;
        var thetaNow = Padded(theta[i..]);
        var velocityNow = Padded(velocity.IsEmpty ? velocity : velocity[i..]);
        if (!thetaBefore.IsEmpty)
            theta[i..].CopyTo(thetaBefore[i..]);
        if (!velocityBefore.IsEmpty)
            velocity[i..].CopyTo(velocityBefore[i..]);
        Span<float> lanes = stackalloc float[Vector<float>.Count];
        if (apply)
        {
            thetaNow = update.Apply(thetaNow, ref velocityNow, average.LoadTail(i, count));
            if (!velocity.IsEmpty)
            {
                velocityNow.CopyTo(lanes);
                lanes[..count].CopyTo(velocity[i..]);
            }
            thetaNow.CopyTo(lanes);
            lanes[..count].CopyTo(theta[i..]);
        }
        float sum = 0;
        for (int k = 0; k < count; k++)
            sum += theta[i + k];
        return sum;
    }

    /// <summary>Up to one vector of <paramref name="values"/>, padded with zeros.</summary>
    private static Vector<float> Padded(ReadOnlySpan<float> values)
    {
        Span<float> lanes = stackalloc float[Vector<float>.Count];
        lanes.Clear();
        values[..Math.Min(values.Length, lanes.Length)].CopyTo(lanes);
        return new Vector<float>(lanes);
    }

    /// <summary>The update of one vector of values, the options read once per pass.</summary>
    private readonly struct Rule(SgdOptions options, float rate)
    {
        private readonly Vector<float> _decay = new((float)options.WeightDecay);
        private readonly Vector<float> _momentum = new((float)options.Momentum);
        private readonly Vector<float> _step = new(-rate);
        private readonly bool _hasDecay = options.WeightDecay > 0, _hasMomentum = options.Momentum > 0, _nesterov = options.Nesterov;

        /// <summary>
        /// g′ = θ·λ + g (weight decay); v ← v·μ + g′; θ ← v·(−η) + θ (Nesterov: θ ← (v·μ + g′)·(−η) + θ); without momentum
        /// θ ← g′·(−η) + θ. Returns θ; v is updated in place. Each product is rounded before its sum (no fused multiply-add),
        /// as <see cref="TensorPrimitives.MultiplyAdd(ReadOnlySpan{float}, float, ReadOnlySpan{float}, Span{float})"/> does.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector<float> Apply(Vector<float> theta, ref Vector<float> velocity, Vector<float> g)
        {
            if (_hasDecay)
                g = theta * _decay + g;
            if (!_hasMomentum)
                return g * _step + theta;
            velocity = velocity * _momentum + g;
            return (_nesterov ? velocity * _momentum + g : velocity) * _step + theta;
        }
    }

    /// <summary>Where a fused pass reads ḡ from, one vector at a time (and the last, shorter part padded with zeros).</summary>
    private interface IAverage
    {
        Vector<float> Load(int i);

        Vector<float> LoadTail(int i, int count);
    }

    /// <summary>ḡ as given, its first value the pass's first.</summary>
    private readonly ref struct Averaged(ReadOnlySpan<float> average) : IAverage
    {
        private readonly ReadOnlySpan<float> _average = average;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector<float> Load(int i) => Vector.LoadUnsafe(ref MemoryMarshal.GetReference(_average), (nuint)i);

        public Vector<float> LoadTail(int i, int count) => Padded(_average.Slice(i, count));
    }

    /// <summary>ḡ = s · (1/Σ w), s summed already (<see cref="AverageEntriesAndStep"/>), its first value the pass's first.</summary>
    private readonly ref struct Scaled(ReadOnlySpan<float> sum, float scale) : IAverage
    {
        private readonly ReadOnlySpan<float> _sum = sum;
        private readonly Vector<float> _scale = new(scale);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector<float> Load(int i) => Vector.LoadUnsafe(ref MemoryMarshal.GetReference(_sum), (nuint)i) * _scale;

        public Vector<float> LoadTail(int i, int count) => Padded(_sum.Slice(i, count)) * _scale;
    }

    /// <summary>ḡ = (w·g + 0) · (1/w) of one share, as the average of one share computes it.</summary>
    private readonly ref struct OneShare(ReadOnlySpan<float> share, float weight, float scale) : IAverage
    {
        private readonly ReadOnlySpan<float> _share = share;
        private readonly Vector<float> _weight = new(weight), _scale = new(scale);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector<float> Load(int i) => Average(Vector.LoadUnsafe(ref MemoryMarshal.GetReference(_share), (nuint)i));

        public Vector<float> LoadTail(int i, int count) => Average(Padded(_share.Slice(i, count)));

        private Vector<float> Average(Vector<float> g) => (g * _weight + Vector<float>.Zero) * _scale;
    }

    /// <summary>ḡ = (w₂·g₂ + (w₁·g₁ + 0)) · (1/(w₁ + w₂)) of two shares, in their order.</summary>
    private readonly ref struct TwoShares(ReadOnlySpan<float> first, float firstWeight, ReadOnlySpan<float> second, float secondWeight, float scale)
        : IAverage
    {
        private readonly ReadOnlySpan<float> _first = first, _second = second;
        private readonly Vector<float> _firstWeight = new(firstWeight), _secondWeight = new(secondWeight), _scale = new(scale);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector<float> Load(int i) => Average(Vector.LoadUnsafe(ref MemoryMarshal.GetReference(_first), (nuint)i),
                                                    Vector.LoadUnsafe(ref MemoryMarshal.GetReference(_second), (nuint)i));

        public Vector<float> LoadTail(int i, int count) => Average(Padded(_first.Slice(i, count)), Padded(_second.Slice(i, count)));

        private Vector<float> Average(Vector<float> a, Vector<float> b) => (b * _secondWeight + (a * _firstWeight + Vector<float>.Zero)) * _scale;
    }

    /// <summary>Replaces the state with a saved one (for a resumed run or a new master); the <see cref="Schedule"/> stays.</summary>
    public void Restore(SgdState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        int expected = Options.Momentum > 0 ? ParameterCount : 0;
        if (state.Velocity.Length != expected)
            throw new ArgumentException($"the saved state has a velocity of {state.Velocity.Length} values, this optimizer needs {expected}", nameof(state));
        State = new SgdState(state.Step, (float[])state.Velocity.Clone());
    }
}
