namespace DistSgd.Numerics.Models;

/// <summary>The model families the trainer knows.</summary>
public enum ModelKind
{
    /// <summary>Linear regression: one affine layer, mean squared error.</summary>
    Linear,

    /// <summary>Softmax regression: one affine layer, cross-entropy (logistic regression for 2 classes).</summary>
    Softmax,

    /// <summary>Multi-layer perceptron: affine layers with a nonlinearity between them, cross-entropy.</summary>
    Mlp,
}

/// <summary>The nonlinearity applied after every hidden layer of an MLP.</summary>
public enum Activation
{
    Relu,
    Tanh,
    Sigmoid,
}

/// <summary>What a model computes at its output and which loss it minimises.</summary>
public enum LossKind
{
    /// <summary>L = (1/B)·Σᵢ (zᵢ − yᵢ)²: regression with one output.</summary>
    MeanSquaredError,

    /// <summary>L = (1/B)·Σᵢ −log softmax(zᵢ)[yᵢ]: K ≥ 3 classes, K logits.</summary>
    SoftmaxCrossEntropy,

    /// <summary>L = (1/B)·Σᵢ −[yᵢ·log σ(zᵢ) + (1−yᵢ)·log(1−σ(zᵢ))]: 2 classes, one logit.</summary>
    BinaryCrossEntropy,
}

/// <summary>
/// A model's architecture: everything needed to rebuild it except its parameters. Immutable and
/// value-equal (the hidden sizes are compared by contents).
/// </summary>
public sealed record ModelSpec
{
    public ModelSpec(ModelKind kind, int inputCount, int classCount, IReadOnlyList<int>? hiddenSizes = null,
                     Activation activation = Activation.Relu)
    {
        var hidden = (hiddenSizes ?? []).ToArray();
        if (inputCount <= 0)
            throw new ArgumentOutOfRangeException(nameof(inputCount), inputCount, "a model needs at least one input feature");
        if (kind == ModelKind.Linear && classCount != 0)
            throw new ArgumentException($"linear regression needs a regression target (class count 0), found {classCount} classes", nameof(classCount));
        if (kind != ModelKind.Linear && classCount < 2)
            throw new ArgumentException($"a {kind} model needs at least 2 classes, found {classCount}", nameof(classCount));
        if (kind != ModelKind.Mlp && hidden.Length > 0)
            throw new ArgumentException($"a {kind} model has no hidden layers, found {hidden.Length}", nameof(hiddenSizes));
        if (kind == ModelKind.Mlp && hidden.Length == 0)
            throw new ArgumentException("an MLP needs at least one hidden layer (e.g. 256,128)", nameof(hiddenSizes));
        foreach (int size in hidden)
        {
            if (size <= 0)
                throw new ArgumentOutOfRangeException(nameof(hiddenSizes), size, "every hidden layer needs at least one unit");
        }

        Kind = kind;
        InputCount = inputCount;
        ClassCount = classCount;
        HiddenSizes = hidden;
        Activation = activation;
    }

    public ModelKind Kind { get; }

    /// <summary>Number of input features.</summary>
    public int InputCount { get; }

    /// <summary>Number of classes; 0 for regression.</summary>
    public int ClassCount { get; }

    public IReadOnlyList<int> HiddenSizes { get; }

    public Activation Activation { get; }

    public LossKind Loss => ClassCount switch
    {
        0 => LossKind.MeanSquaredError,
        2 => LossKind.BinaryCrossEntropy,
        _ => LossKind.SoftmaxCrossEntropy,
    };

    /// <summary>Width of the last layer: 1 for regression and for 2 classes (one logit), else K.</summary>
    public int OutputCount => ClassCount > 2 ? ClassCount : 1;

    /// <summary>Layer widths from input to output, e.g. [784, 256, 128, 10].</summary>
    public int[] LayerSizes() => [InputCount, .. HiddenSizes, OutputCount];

    /// <summary>Σ over layers of (fan-in + 1)·fan-out in 64-bit arithmetic: may exceed what one buffer holds.</summary>
    public long ParameterCountUnbounded
    {
        get
        {
            var sizes = LayerSizes();
            long count = 0;
            for (int l = 1; l < sizes.Length; l++)
                count += (long)(sizes[l - 1] + 1) * sizes[l];
            return count;
        }
    }

    /// <summary>Σ over layers of (fan-in + 1)·fan-out: weights and biases.</summary>
    /// <exception cref="ArgumentException">The count exceeds <see cref="Array.MaxLength"/>.</exception>
    public int ParameterCount
    {
        get
        {
            long count = ParameterCountUnbounded;
            if (count > Array.MaxLength)
                throw new ArgumentException($"the model has {count} parameters, more than one buffer can hold ({Array.MaxLength})");
            return (int)count;
        }
    }

    /// <summary>A short human description, e.g. "mlp 784-256-128-10 relu".</summary>
    public override string ToString() => Kind switch
    {
        ModelKind.Mlp => $"mlp {string.Join('-', LayerSizes())} {Activation.ToString().ToLowerInvariant()}",
        _ => $"{Kind.ToString().ToLowerInvariant()} {InputCount}-{OutputCount}",
    };

    public bool Equals(ModelSpec? other) =>
        other is not null && Kind == other.Kind && InputCount == other.InputCount && ClassCount == other.ClassCount
        && Activation == other.Activation && HiddenSizes.SequenceEqual(other.HiddenSizes);

    public override int GetHashCode()
    {
        var hash = new HashCode();
        hash.Add(Kind);
        hash.Add(InputCount);
        hash.Add(ClassCount);
        hash.Add(Activation);
        foreach (int size in HiddenSizes)
            hash.Add(size);
        return hash.ToHashCode();
    }
}
