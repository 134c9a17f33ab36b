using System.Numerics;
using System.Numerics.Tensors;
using DistSgd.Numerics.Tensors;
using MathNet.Numerics.Distributions;

namespace DistSgd.Numerics.Models;

/// <summary>Where one dense layer's weights and biases sit in the flat parameter buffer.</summary>
/// <param name="WeightOffset">Start of W, a FanIn × FanOut row-major matrix.</param>
/// <param name="BiasOffset">Start of b, FanOut values, right after W.</param>
public readonly record struct LayerShape(int FanIn, int FanOut, int WeightOffset, int BiasOffset)
{
    public int WeightCount => FanIn * FanOut;
}

/// <summary>Loss summed over a set of samples and, for classifiers, how many were classified right.</summary>
public readonly record struct Score(double LossSum, long Correct, long Count)
{
    public double MeanLoss => Count == 0 ? double.NaN : LossSum / Count;
    public double Accuracy => Count == 0 ? double.NaN : (double)Correct / Count;

    public static Score operator +(Score a, Score b) => new(a.LossSum + b.LossSum, a.Correct + b.Correct, a.Count + b.Count);
}

/// <summary>
/// A feed-forward network of dense layers computing, for a batch, the loss and its gradient with
/// respect to one flat parameter buffer θ. Linear and softmax regression are the one-layer cases.
/// </summary>
/// <remarks>
/// Layer l computes Zₗ = Aₗ₋₁·Wₗ + bₗ and, for hidden layers, Aₗ = act(Zₗ); A₀ is the batch's
/// features. Backward: ∂Wₗ = Aₗ₋₁ᵀ·∂Zₗ, ∂bₗ = Σ_rows ∂Zₗ, ∂Aₗ₋₁ = ∂Zₗ·Wₗᵀ, ∂Zₗ₋₁ = ∂Aₗ₋₁ ⊙ act′.
/// The instance owns its activation workspace (grown to the largest batch seen, then reused), so a
/// training step allocates nothing; it is not thread-safe: one instance per thread or worker.
/// </remarks>
public sealed class Model
{
    private readonly IMatrixKernels _kernels;
    private readonly LayerShape[] _layers;
    private readonly int _maxWidth;
    private float[][] _activations = [];   // post-activation output of each layer, Batch × FanOut
    private float[] _deltaA = [];          // ∂Z of the layer being back-propagated, Batch × maxWidth
    private float[] _deltaB = [];
    private int _capacity;

    public Model(ModelSpec spec, IMatrixKernels kernels)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(kernels);
        Spec = spec;
        _kernels = kernels;
        ParameterCount = spec.ParameterCount;   // checked in 64 bits first: the int offsets in LayersOf cannot overflow
        _layers = LayersOf(spec);
        _maxWidth = spec.LayerSizes().Max();
    }

    /// <summary>
    /// Where each dense layer of <paramref name="spec"/> sits in θ: layer by layer, W (fan-in × fan-out, row-major) then b.
    /// </summary>
    public static LayerShape[] LayersOf(ModelSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        _ = spec.ParameterCount;   // throws when θ would not fit one buffer, before an offset could overflow
        var sizes = spec.LayerSizes();
        var layers = new LayerShape[sizes.Length - 1];
        int offset = 0;
        for (int l = 0; l < layers.Length; l++)
        {
            int weights = sizes[l] * sizes[l + 1];
            layers[l] = new LayerShape(sizes[l], sizes[l + 1], offset, offset + weights);
            offset += weights + sizes[l + 1];
        }
        return layers;
    }

    public ModelSpec Spec { get; }

    public int ParameterCount { get; }

    public IMatrixKernels Kernels => _kernels;

    /// <summary>The dense layers in order, with their place in θ.</summary>
    public IReadOnlyList<LayerShape> Layers => _layers;

    /// <summary>
    /// Fills θ with a seeded random initialisation: biases 0; weights ~ N(0, 2/fanIn) (He) for layers
    /// followed by ReLU, N(0, 2/(fanIn + fanOut)) (Xavier/Glorot) for the others.
    /// </summary>
    public void Initialize(Span<float> parameters, int seed)
    {
        CheckLength(parameters.Length, nameof(parameters));
        parameters.Clear();
        var random = new Random(seed);
        for (int l = 0; l < _layers.Length; l++)
        {
            var layer = _layers[l];
            bool hidden = l < _layers.Length - 1;
            double variance = hidden && Spec.Activation == Activation.Relu
                ? 2.0 / layer.FanIn
                : 2.0 / (layer.FanIn + layer.FanOut);
            var normal = new Normal(0, Math.Sqrt(variance), random);
            var weights = parameters.Slice(layer.WeightOffset, layer.WeightCount);
            for (int i = 0; i < weights.Length; i++)
                weights[i] = (float)normal.Sample();
        }
    }

    /// <summary>
    /// Forward and backward pass over one batch: writes ∂L/∂θ into <paramref name="gradient"/> (every
    /// element overwritten) and returns the mean loss L over the batch.
    /// </summary>
    /// <param name="features">Batch × InputCount features, row-major.</param>
    /// <param name="targets">Batch targets: class indices or regression responses.</param>
    public float LossAndGradient(ReadOnlySpan<float> parameters, ReadOnlySpan<float> features,
                                 ReadOnlySpan<float> targets, int batchSize, Span<float> gradient)
    {
        CheckBatch(parameters, features, targets, batchSize);
        CheckLength(gradient.Length, nameof(gradient));
        Forward(parameters, features, batchSize);

        int outputs = Spec.OutputCount;
        var delta = _deltaA.AsSpan(0, batchSize * outputs);
        double lossSum = OutputLossAndDelta(_activations[^1].AsSpan(0, batchSize * outputs), targets, batchSize, delta, out _);

        float[] current = _deltaA, spare = _deltaB;
        for (int l = _layers.Length - 1; l >= 0; l--)
        {
            var layer = _layers[l];
            ReadOnlySpan<float> input = l == 0 ? features : _activations[l - 1];
            var deltaZ = current.AsSpan(0, batchSize * layer.FanOut);

            // ∂W = Aₗ₋₁ᵀ·∂Z  (FanIn × FanOut)
            _kernels.Gemm(true, false, layer.FanIn, layer.FanOut, batchSize,
                          1f, input, layer.FanIn, deltaZ, layer.FanOut,
                          0f, gradient.Slice(layer.WeightOffset, layer.WeightCount), layer.FanOut);

            // ∂b = Σ over the batch's rows of ∂Z
            var biasGradient = gradient.Slice(layer.BiasOffset, layer.FanOut);
            deltaZ[..layer.FanOut].CopyTo(biasGradient);
            for (int row = 1; row < batchSize; row++)
                TensorPrimitives.Add(biasGradient, deltaZ.Slice(row * layer.FanOut, layer.FanOut), biasGradient);

            if (l == 0)
                break;

            // ∂Aₗ₋₁ = ∂Z·Wᵀ, then ∂Zₗ₋₁ = ∂Aₗ₋₁ ⊙ act′(Aₗ₋₁)
            var deltaPrevious = spare.AsSpan(0, batchSize * layer.FanIn);
            _kernels.Gemm(false, true, batchSize, layer.FanIn, layer.FanOut,
                          1f, deltaZ, layer.FanOut, parameters.Slice(layer.WeightOffset, layer.WeightCount), layer.FanOut,
                          0f, deltaPrevious, layer.FanIn);
            MultiplyByActivationDerivative(deltaPrevious, _activations[l - 1].AsSpan(0, batchSize * layer.FanIn));
            (current, spare) = (spare, current);
        }
        return (float)(lossSum / batchSize);
    }

    /// <summary>Loss sum and correct count over <paramref name="count"/> samples, in chunks of the workspace size.</summary>
    public Score Evaluate(ReadOnlySpan<float> parameters, ReadOnlySpan<float> features, ReadOnlySpan<float> targets,
                          int count, int chunkSize = 256)
    {
        CheckBatch(parameters, features, targets, count);
        var total = default(Score);
        int inputs = Spec.InputCount, outputs = Spec.OutputCount;
        for (int start = 0; start < count; start += chunkSize)
        {
            int rows = Math.Min(chunkSize, count - start);
            Forward(parameters, features.Slice(start * inputs, rows * inputs), rows);
            double loss = OutputLossAndDelta(_activations[^1].AsSpan(0, rows * outputs), targets.Slice(start, rows), rows,
                                             _deltaA.AsSpan(0, rows * outputs), out long correct);
            total += new Score(loss, correct, rows);
        }
        return total;
    }

    /// <summary>
    /// Model outputs for <paramref name="count"/> samples: class probabilities (count × ClassCount) for
    /// classifiers, the predicted response (count × 1) for regression.
    /// </summary>
    public void Predict(ReadOnlySpan<float> parameters, ReadOnlySpan<float> features, int count, Span<float> outputs,
                        int chunkSize = 256)
    {
        CheckLength(parameters.Length, nameof(parameters));
        int inputs = Spec.InputCount, width = Spec.OutputCount;
        int columns = Spec.ClassCount == 0 ? 1 : Spec.ClassCount;
        if (features.Length < (long)count * inputs)
            throw new ArgumentException($"{count} samples need {(long)count * inputs} feature values, found {features.Length}", nameof(features));
        if (outputs.Length < (long)count * columns)
            throw new ArgumentException($"{count} samples need {(long)count * columns} outputs, found {outputs.Length}", nameof(outputs));
        for (int start = 0; start < count; start += chunkSize)
        {
            int rows = Math.Min(chunkSize, count - start);
            Forward(parameters, features.Slice(start * inputs, rows * inputs), rows);
            var logits = _activations[^1].AsSpan(0, rows * width);
            for (int r = 0; r < rows; r++)
            {
                var z = logits.Slice(r * width, width);
                var o = outputs.Slice((start + r) * columns, columns);
                switch (Spec.Loss)
                {
                    case LossKind.MeanSquaredError:
                        o[0] = z[0];
                        break;
                    case LossKind.BinaryCrossEntropy:
                        o[1] = 1f / (1f + MathF.Exp(-z[0]));
                        o[0] = 1f - o[1];
                        break;
                    default:
                        TensorPrimitives.SoftMax(z, o);
                        break;
                }
            }
        }
    }

    private void Forward(ReadOnlySpan<float> parameters, ReadOnlySpan<float> features, int batchSize)
    {
        EnsureCapacity(batchSize);
        ReadOnlySpan<float> input = features;
        for (int l = 0; l < _layers.Length; l++)
        {
            var layer = _layers[l];
            var output = _activations[l].AsSpan(0, batchSize * layer.FanOut);

            // Z = A·W + b
            _kernels.Gemm(false, false, batchSize, layer.FanOut, layer.FanIn,
                          1f, input, layer.FanIn, parameters.Slice(layer.WeightOffset, layer.WeightCount), layer.FanOut,
                          0f, output, layer.FanOut);
            var bias = parameters.Slice(layer.BiasOffset, layer.FanOut);
            for (int row = 0; row < batchSize; row++)
            {
                var z = output.Slice(row * layer.FanOut, layer.FanOut);
                TensorPrimitives.Add(z, bias, z);
            }

            if (l < _layers.Length - 1)
                ApplyActivation(output);
            input = output;
        }
    }

    /// <summary>
    /// Sums the loss over the batch and writes ∂L/∂Z for the mean loss (hence the 1/B) into
    /// <paramref name="delta"/>; counts correct predictions for classifiers.
    /// </summary>
    private double OutputLossAndDelta(ReadOnlySpan<float> logits, ReadOnlySpan<float> targets, int batchSize,
                                      Span<float> delta, out long correct)
    {
        double lossSum = 0;
        correct = 0;
        float inverseBatch = 1f / batchSize;
        switch (Spec.Loss)
        {
            case LossKind.MeanSquaredError:
                for (int i = 0; i < batchSize; i++)
                {
                    float error = logits[i] - targets[i];
                    lossSum += (double)error * error;
                    delta[i] = 2f * error * inverseBatch;    // ∂/∂z (z − y)² = 2(z − y)
                }
                break;

            case LossKind.BinaryCrossEntropy:
                for (int i = 0; i < batchSize; i++)
                {
                    float z = logits[i];
                    float y = ClassIndex(targets[i], i);
                    // −[y·log σ(z) + (1−y)·log(1−σ(z))] = max(z,0) − z·y + log(1 + e^−|z|), stable for any z
                    lossSum += Math.Max(z, 0f) - z * y + Math.Log(1.0 + Math.Exp(-Math.Abs(z)));
                    float p = 1f / (1f + MathF.Exp(-z));
                    delta[i] = (p - y) * inverseBatch;
                    if ((p >= 0.5f ? 1f : 0f) == y)
                        correct++;
                }
                break;

            default:
            {
                int classes = Spec.ClassCount;
                for (int i = 0; i < batchSize; i++)
                {
                    var z = logits.Slice(i * classes, classes);
                    var d = delta.Slice(i * classes, classes);
                    int label = ClassIndex(targets[i], i);
                    // −log softmax(z)[y] = log Σⱼ e^(zⱼ−m) + m − z_y, with m = max z for stability
                    float max = TensorPrimitives.Max(z);
                    TensorPrimitives.Subtract(z, max, d);
                    TensorPrimitives.Exp(d, d);
                    float sum = TensorPrimitives.Sum(d);
                    lossSum += Math.Log(sum) + max - z[label];
                    // ∂/∂z = softmax(z) − onehot(y)
                    TensorPrimitives.Multiply(d, inverseBatch / sum, d);
                    d[label] -= inverseBatch;
                    if (TensorPrimitives.IndexOfMax(z) == label)
                        correct++;
                }
                break;
            }
        }
        return lossSum;
    }

    private int ClassIndex(float target, int row)
    {
        int label = (int)target;
        if (label != target || (uint)label >= (uint)Math.Max(Spec.ClassCount, 2))
            throw new ArgumentOutOfRangeException(nameof(target), target,
                $"sample {row} of the batch has target {target}; expected a class index in [0, {Spec.ClassCount})");
        return label;
    }

    private void ApplyActivation(Span<float> values)
    {
        switch (Spec.Activation)
        {
            case Activation.Relu:
                TensorPrimitives.Max(values, 0f, values);
                break;
            case Activation.Tanh:
                TensorPrimitives.Tanh(values, values);
                break;
            case Activation.Sigmoid:
                TensorPrimitives.Sigmoid(values, values);
                break;
        }
    }

    /// <summary>delta ← delta ⊙ act′, written in terms of the activation's output A.</summary>
    private void MultiplyByActivationDerivative(Span<float> delta, ReadOnlySpan<float> activation)
    {
        switch (Spec.Activation)
        {
            case Activation.Relu:
            {
                // relu′ = 1 where A > 0, else 0
                int i = 0;
                if (Vector.IsHardwareAccelerated)
                {
                    for (; i <= delta.Length - Vector<float>.Count; i += Vector<float>.Count)
                    {
                        var a = new Vector<float>(activation[i..]);
                        var d = new Vector<float>(delta[i..]);
                        Vector.ConditionalSelect(Vector.GreaterThan(a, Vector<float>.Zero), d, Vector<float>.Zero).CopyTo(delta[i..]);
                    }
                }
                for (; i < delta.Length; i++)
                {
                    if (!(activation[i] > 0f))
                        delta[i] = 0f;
                }
                break;
            }
            case Activation.Tanh:
            {
                // tanh′ = 1 − A²
                for (int i = 0; i < delta.Length; i++)
                    delta[i] *= 1f - activation[i] * activation[i];
                break;
            }
            case Activation.Sigmoid:
            {
                // σ′ = A·(1 − A)
                for (int i = 0; i < delta.Length; i++)
                    delta[i] *= activation[i] * (1f - activation[i]);
                break;
            }
        }
    }

    private void EnsureCapacity(int batchSize)
    {
        // No lambda in this method: a captured parameter would allocate its closure on every call.
        if (batchSize > _capacity)
            Grow(batchSize);
    }

    private void Grow(int batchSize)
    {
        _activations = _layers.Select(layer => new float[batchSize * layer.FanOut]).ToArray();
        _deltaA = new float[batchSize * _maxWidth];
        _deltaB = new float[batchSize * _maxWidth];
        _capacity = batchSize;
    }

    private void CheckBatch(ReadOnlySpan<float> parameters, ReadOnlySpan<float> features, ReadOnlySpan<float> targets, int batchSize)
    {
        CheckLength(parameters.Length, nameof(parameters));
        if (batchSize <= 0)
            throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "a batch needs at least one sample");
        if (features.Length < (long)batchSize * Spec.InputCount)
            throw new ArgumentException($"{batchSize} samples need {(long)batchSize * Spec.InputCount} feature values, found {features.Length}", nameof(features));
        if (targets.Length < batchSize)
            throw new ArgumentException($"{batchSize} samples need {batchSize} targets, found {targets.Length}", nameof(targets));
    }

    private void CheckLength(int length, string name)
    {
        if (length != ParameterCount)
            throw new ArgumentException($"{Spec} has {ParameterCount} parameters, the buffer holds {length}", name);
    }
}
