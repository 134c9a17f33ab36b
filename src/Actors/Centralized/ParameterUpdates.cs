using System.Numerics.Tensors;
using DistSgd.Actors.Protocol;
using DistSgd.Numerics.Compression;

namespace DistSgd.Actors.Centralized;

/// <summary>
/// The master's compressed return path (issue 16): instead of θ, a worker that holds θ of the step before gets the
/// step's update Δ in the run's <see cref="ShareEncoding.Dense"/> (16-bit, every value), and the master applies exactly the same decoded update, so
/// that every replica's θ stays bit-identical to the master's.
/// </summary>
/// <remarks>
/// After the optimizer's step θ′: Δ = θ′ − θ, q = compress(Δ) (rounded; a sparse encoding would take top-k with its own
/// error feedback, but the run uses a dense one: top-k of a momentum update cost 6.6 points, decision 0088), and the
/// master sets θ ← θ + q; a worker holding the same θ computes θ + q with the same float operation (<see cref="Apply"/>),
/// checks Σθ against the master's (the frame carries it) and refuses the update if it differs. Only the workers whose
/// gradient of the step before was applied get an update (they certainly hold its θ); every other worker, and any step
/// asked again, gets θ whole. The momentum v keeps the optimizer's own update; θ takes the compressed one, whose error
/// the top-k residual carries to later steps.
/// </remarks>
public sealed class ParameterUpdates
{
    private readonly GradientCompressor _compressor;
    private readonly HashSet<int> _holders = new();

    /// <param name="wire">The run's encoding (not dense float32: that keeps sending θ whole).</param>
    public ParameterUpdates(ShareEncoding wire, int parameterCount)
    {
        if (wire.IsIdentity)
            throw new ArgumentException("dense float32 sends θ whole; an update would only round it", nameof(wire));
        _compressor = new GradientCompressor(wire, parameterCount);
        Before = new float[parameterCount];
        Update = new float[parameterCount];
    }

    /// <summary>θ before each step: the replica copies it there in the update's own pass (<c>Replica.KeepStateBeforeEachStep</c>).</summary>
    public float[] Before { get; }

    /// <summary>The compressed update of the step last applied, q (what an update frame carries).</summary>
    public float[] Update { get; }

    /// <summary>Σθ after the update, as every holder must find it.</summary>
    public float Checksum { get; private set; }

    /// <summary>The step whose θ the update gives (the step after the one applied); −1: none.</summary>
    public long Step { get; private set; } = -1;

    /// <summary>
    /// After the optimizer set θ′ from <see cref="Before"/>: θ ← <see cref="Before"/> + compress(θ′ − <see cref="Before"/>),
    /// and the workers in <paramref name="holders"/> (whose gradient the step applied) may get the update for step
    /// <paramref name="nextStep"/>. False (nothing sent as an update) when θ′ is not finite: the run fails anyway.
    /// </summary>
    public bool Compress(float[] parameters, long nextStep, IReadOnlyList<IGradientContribution> holders)
    {
        _holders.Clear();
        Step = -1;
        TensorPrimitives.Subtract(parameters, Before, Update);
        if (!_compressor.Compress(Update))
            return false;
        TensorPrimitives.Add(Before, Update, parameters);
        Checksum = TensorPrimitives.Sum(parameters);
        Step = nextStep;
        for (int i = 0; i < holders.Count; i++)
            _holders.Add(holders[i].Participant);
        return true;
    }

    /// <summary>Whether <paramref name="worker"/> gets the update rather than θ at <paramref name="step"/>.</summary>
    public bool SendsUpdateTo(int worker, long step) => step == Step && _holders.Contains(worker);

    /// <summary>The step is asked again (a worker may already have applied its update): θ whole to everyone.</summary>
    public void SendWholeFromNowOn()
    {
        _holders.Clear();
        Step = -1;
    }

    /// <summary>
    /// A worker's side: <paramref name="update"/> ← <paramref name="held"/> + <paramref name="update"/> (θ of the new step,
    /// in place); false when its Σ is not the master's <paramref name="checksum"/> (the worker's θ was not the master's).
    /// </summary>
    public static bool Apply(ReadOnlySpan<float> held, Span<float> update, float checksum)
    {
        if (held.Length != update.Length)
            return false;
        TensorPrimitives.Add(held, update, update);
        return TensorPrimitives.Sum(update) == checksum;
    }
}
