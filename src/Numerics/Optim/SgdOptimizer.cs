using System.Numerics.Tensors;

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
/// State changes only in <see cref="Step"/> and <see cref="AverageAndStep"/>. Element-wise and single-threaded, so
/// bit-identical for identical inputs. Both walk the arrays in blocks of <see cref="BlockLength"/> values and do every
/// operation of a block before the next one (the block's intermediates stay in the L1 cache): one pass over memory
/// instead of one per operation. Each element still goes through the same float operations in the same order as when
/// each operation ran over the whole arrays, so the blocking changes no bit.
/// </remarks>
public sealed class SgdOptimizer
{
    /// <summary>Values per block: 4 KiB of float32, so a block's gradient, scratch and operands fit in L1 together.</summary>
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
        if (gradients.Count != weights.Count)
            throw new ArgumentException($"{gradients.Count} gradients but {weights.Count} weights");
        if (parameters.Length != ParameterCount)
            throw new ArgumentException($"the optimizer holds {ParameterCount} parameters; found θ of {parameters.Length}");
        var velocity = State.Velocity.AsSpan();
        if (!parametersBefore.IsEmpty && parametersBefore.Length != ParameterCount || !velocityBefore.IsEmpty && velocityBefore.Length != velocity.Length)
            throw new ArgumentException($"the copies before the step need {ParameterCount} and {velocity.Length} values; found {parametersBefore.Length} and {velocityBefore.Length}");
        long total = 0;
        for (int i = 0; i < gradients.Count; i++)
        {
            int weight = weights[i];
            if (weight < 0)
                throw new ArgumentOutOfRangeException(nameof(weights), weight, $"share {i} has a negative sample count");
            if (weight > 0 && gradients[i].Length != ParameterCount)
                throw new ArgumentException($"share {i} has {gradients[i].Length} values, expected {ParameterCount}");
            total += weight;
        }
        float rate = (float)CurrentLearningRate;
        float scale = 1f / total;
        Span<float> average = stackalloc float[BlockLength];
        Span<float> scratch = stackalloc float[BlockLength];
        float sum = 0;
        for (int start = 0; start < ParameterCount; start += BlockLength)
        {
            int length = Math.Min(BlockLength, ParameterCount - start);
            var g = average[..length];
            if (total > 0)
            {
                // ḡ ← 0; ḡ ← ḡ + wᵢ·gᵢ in the order given; ḡ ← ḡ · (1/Σ wᵢ)
                g.Clear();
                for (int i = 0; i < gradients.Count; i++)
                    if (weights[i] > 0)
                        TensorPrimitives.MultiplyAdd(gradients[i].Span.Slice(start, length), weights[i], g, g);
                TensorPrimitives.Multiply(g, scale, g);
            }
            sum += StepBlock(parameters, velocity, start, length, total > 0 ? g : default, scratch[..length], rate, parametersBefore, velocityBefore);
        }
        if (total > 0)
            State.Step++;
        return new AveragedStep(total, sum);
    }

    /// <summary>
    /// Applies the update with a step's gradient already averaged elsewhere (an all-reduce of the peers' shares): the same
    /// operations, block by block, as <see cref="AverageAndStep"/> after its average, so an average with the same bits gives
    /// θ and v with the same bits. With <paramref name="samples"/> = 0 nothing is applied and the step is not advanced.
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
        var velocity = State.Velocity.AsSpan();
        if (!parametersBefore.IsEmpty && parametersBefore.Length != ParameterCount || !velocityBefore.IsEmpty && velocityBefore.Length != velocity.Length)
            throw new ArgumentException($"the copies before the step need {ParameterCount} and {velocity.Length} values; found {parametersBefore.Length} and {velocityBefore.Length}");
        float rate = (float)CurrentLearningRate;
        Span<float> scratch = stackalloc float[BlockLength];
        float sum = 0;
        for (int start = 0; start < ParameterCount; start += BlockLength)
        {
            int length = Math.Min(BlockLength, ParameterCount - start);
            sum += StepBlock(parameters, velocity, start, length, samples > 0 ? average.Slice(start, length) : default, scratch[..length], rate,
                             parametersBefore, velocityBefore);
        }
        if (samples > 0)
            State.Step++;
        return new AveragedStep(samples, sum);
    }

    /// <summary>
    /// One block of a fused step: copies θ and v into the copies before the step (when given), applies the update with the
    /// block's averaged gradient <paramref name="g"/> (none when empty) and returns the block's Σθ.
    /// </summary>
    private float StepBlock(Span<float> parameters, Span<float> velocity, int start, int length, ReadOnlySpan<float> g, Span<float> scratch,
                            float rate, Span<float> parametersBefore, Span<float> velocityBefore)
    {
        var theta = parameters.Slice(start, length);
        var v = velocity.IsEmpty ? velocity : velocity.Slice(start, length);
        if (!parametersBefore.IsEmpty)
            theta.CopyTo(parametersBefore.Slice(start, length));
        if (!velocityBefore.IsEmpty)
            v.CopyTo(velocityBefore.Slice(start, length));
        if (!g.IsEmpty)
            UpdateBlock(theta, g, v, scratch, rate);
        return TensorPrimitives.Sum(theta);
    }

    /// <summary>The update of one block: θ, g and v (empty without momentum) are the block's slices; scratch as long as θ.</summary>
    private void UpdateBlock(Span<float> parameters, ReadOnlySpan<float> gradient, Span<float> v, Span<float> scratch, float rate)
    {
        ReadOnlySpan<float> g = gradient;
        if (Options.WeightDecay > 0)
        {
            // g′ = g + λ·θ
            TensorPrimitives.MultiplyAdd(parameters, (float)Options.WeightDecay, gradient, scratch);
            g = scratch;
        }

        if (Options.Momentum > 0)
        {
            float mu = (float)Options.Momentum;
            // v ← μ·v + g′
            TensorPrimitives.MultiplyAdd(v, mu, g, v);
            if (Options.Nesterov)
            {
                // θ ← θ − η·(g′ + μ·v)
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
