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

/// <summary>
/// Stochastic gradient descent with momentum, Nesterov momentum, L2 weight decay and a learning-rate
/// schedule, in the formulation PyTorch uses:
/// g′ = g + λ·θ;  v ← μ·v + g′;  θ ← θ − η_t·v  (Nesterov: θ ← θ − η_t·(g′ + μ·v));  without momentum θ ← θ − η_t·g′.
/// </summary>
/// <remarks>State changes only in <see cref="Step"/>. Element-wise and single-threaded, so bit-identical for identical inputs.</remarks>
public sealed class SgdOptimizer
{
    private float[] _scratch;

    public SgdOptimizer(SgdOptions options, int parameterCount)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(parameterCount);
        Options = options;
        ParameterCount = parameterCount;
        State = new SgdState(0, options.Momentum > 0 ? new float[parameterCount] : []);
        Schedule = options.Schedule;
        _scratch = options.WeightDecay > 0 || options.Nesterov ? new float[parameterCount] : [];
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

        ReadOnlySpan<float> g = gradient;
        if (Options.WeightDecay > 0)
        {
            // g′ = g + λ·θ
            TensorPrimitives.MultiplyAdd(parameters, (float)Options.WeightDecay, gradient, _scratch);
            g = _scratch;
        }

        if (Options.Momentum > 0)
        {
            var v = State.Velocity.AsSpan();
            float mu = (float)Options.Momentum;
            // v ← μ·v + g′
            TensorPrimitives.MultiplyAdd(v, mu, g, v);
            if (Options.Nesterov)
            {
                // θ ← θ − η·(g′ + μ·v)
                var direction = _scratch.AsSpan();
                TensorPrimitives.MultiplyAdd(v, mu, g, direction);
                TensorPrimitives.MultiplyAdd(direction, -rate, parameters, parameters);
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
        State.Step++;
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
