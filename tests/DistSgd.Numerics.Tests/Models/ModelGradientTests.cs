using DistSgd.Numerics.Models;
using DistSgd.Numerics.Tensors;

namespace DistSgd.Numerics.Tests.Models;

public class ModelGradientTests
{
    public static TheoryData<ModelKind, int, int[], Activation> Architectures => new()
    {
        { ModelKind.Linear, 0, [], Activation.Relu },
        { ModelKind.Softmax, 2, [], Activation.Relu },
        { ModelKind.Softmax, 4, [], Activation.Relu },
        { ModelKind.Mlp, 3, [6, 5], Activation.Relu },
        { ModelKind.Mlp, 3, [6, 5], Activation.Tanh },
        { ModelKind.Mlp, 3, [6], Activation.Sigmoid },
        { ModelKind.Mlp, 2, [4], Activation.Tanh },
    };

    [Theory]
    [MemberData(nameof(Architectures))]
    public void Gradient_matches_central_finite_differences(ModelKind kind, int classes, int[] hidden, Activation activation)
    {
        const int inputs = 5, batch = 7;
        var spec = new ModelSpec(kind, inputs, classes, hidden, activation);
        var model = new Model(spec, NaiveKernels.Instance);
        var theta = new float[model.ParameterCount];
        model.Initialize(theta, seed: 3);
        // Non-zero biases so that every bias path is exercised.
        var random = new Random(11);
        foreach (var layer in model.Layers)
        {
            for (int j = 0; j < layer.FanOut; j++)
                theta[layer.BiasOffset + j] = (float)(random.NextDouble() - 0.5) * 0.2f;
        }
        var x = Enumerable.Range(0, batch * inputs).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        var y = Enumerable.Range(0, batch).Select(_ => classes == 0 ? (float)random.NextDouble() : random.Next(classes)).ToArray();

        var gradient = new float[theta.Length];
        model.LossAndGradient(theta, x, y, batch, gradient);

        // Small enough that no ReLU unit crosses its kink, large enough for float32 loss precision.
        const float h = 1e-3f;
        var scratch = new float[theta.Length];
        double worst = 0;
        for (int p = 0; p < theta.Length; p++)
        {
            float original = theta[p];
            theta[p] = original + h;
            double plus = model.Evaluate(theta, x, y, batch).MeanLoss;
            theta[p] = original - h;
            double minus = model.Evaluate(theta, x, y, batch).MeanLoss;
            theta[p] = original;
            double numeric = (plus - minus) / (2 * h);
            double error = Math.Abs(numeric - gradient[p]) / Math.Max(1e-2, Math.Abs(numeric) + Math.Abs(gradient[p]));
            worst = Math.Max(worst, error);
        }
        Assert.True(worst < 2e-2, $"{spec}: worst relative gradient error {worst:G3}");
    }

    [Fact]
    public void Gradient_overwrites_the_callers_buffer_and_loss_matches_evaluate()
    {
        var spec = new ModelSpec(ModelKind.Mlp, 4, 3, [5], Activation.Relu);
        var model = new Model(spec, NaiveKernels.Instance);
        var theta = new float[model.ParameterCount];
        model.Initialize(theta, seed: 1);
        var x = new float[] { 1, 2, 3, 4, -1, 0, 1, 0.5f };
        var y = new float[] { 2, 0 };
        var first = new float[theta.Length];
        var second = Enumerable.Repeat(float.NaN, theta.Length).ToArray();
        float loss = model.LossAndGradient(theta, x, y, 2, first);
        model.LossAndGradient(theta, x, y, 2, second);
        Assert.Equal(first, second);
        Assert.Equal(model.Evaluate(theta, x, y, 2).MeanLoss, loss, 5);
    }

    [Fact]
    public void Initialisation_is_seeded_and_zeroes_biases()
    {
        var spec = new ModelSpec(ModelKind.Mlp, 784, 10, [256, 128]);
        var model = new Model(spec, NaiveKernels.Instance);
        var a = new float[model.ParameterCount];
        var b = new float[model.ParameterCount];
        var c = new float[model.ParameterCount];
        model.Initialize(a, 42);
        model.Initialize(b, 42);
        model.Initialize(c, 43);
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
        Assert.Equal(784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10, model.ParameterCount);
        foreach (var layer in model.Layers)
            Assert.All(a.AsSpan(layer.BiasOffset, layer.FanOut).ToArray(), v => Assert.Equal(0f, v));
        // He initialisation of the first ReLU layer: std √(2/784) ≈ 0.0505.
        var first = a.AsSpan(0, 784 * 256).ToArray();
        double std = Math.Sqrt(first.Select(v => (double)v * v).Average());
        Assert.InRange(std, 0.049, 0.052);
    }

    [Fact]
    public void Two_classes_use_one_logit_and_predict_complementary_probabilities()
    {
        var spec = new ModelSpec(ModelKind.Softmax, 3, 2);
        Assert.Equal(LossKind.BinaryCrossEntropy, spec.Loss);
        Assert.Equal(1, spec.OutputCount);
        var model = new Model(spec, NaiveKernels.Instance);
        var theta = new float[] { 1, -1, 0.5f, 0.25f };
        var probabilities = new float[2];
        model.Predict(theta, new float[] { 1, 0, 2 }, 1, probabilities);
        // z = 1·1 + 0·(−1) + 2·0.5 + 0.25 = 2.25
        Assert.Equal(1 / (1 + Math.Exp(-2.25)), probabilities[1], 5);
        Assert.Equal(1f, probabilities[0] + probabilities[1], 5);
    }

    [Fact]
    public void A_label_outside_the_classes_is_refused()
    {
        var model = new Model(new ModelSpec(ModelKind.Softmax, 2, 3), NaiveKernels.Instance);
        var theta = new float[model.ParameterCount];
        var error = Assert.Throws<ArgumentOutOfRangeException>(() =>
            model.LossAndGradient(theta, new float[] { 1, 2 }, new float[] { 3 }, 1, new float[theta.Length]));
        Assert.Contains("class index in [0, 3)", error.Message);
    }

    [Theory]
    [InlineData(ModelKind.Mlp, 10, new int[0])]
    [InlineData(ModelKind.Linear, 3, new int[0])]
    [InlineData(ModelKind.Softmax, 1, new int[0])]
    [InlineData(ModelKind.Mlp, 10, new[] { 0 })]
    [InlineData(ModelKind.Softmax, 10, new[] { 5 })]
    public void Invalid_architectures_are_refused(ModelKind kind, int classes, int[] hidden)
    {
        Assert.ThrowsAny<ArgumentException>(() => new ModelSpec(kind, 4, classes, hidden));
    }
}
