using DistSgd.Host.Export;
using DistSgd.Host.Runs;
using DistSgd.Numerics.Data;
using DistSgd.Numerics.Models;
using DistSgd.Numerics.Tensors;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace DistSgd.Host.Tests.Export;

/// <summary>
/// The exported ONNX model, run by ONNX Runtime on raw features, gives what the program's own prediction (the model file's
/// preprocessing, then <see cref="Model.Predict"/>, as `distsgd predict` does) gives, for every model kind.
/// </summary>
public class OnnxExportTests
{
    /// <summary>Largest difference allowed between ONNX Runtime's probabilities (or predictions) and the program's.</summary>
    private const float Tolerance = 1e-5f;

    private const int Samples = 300;

    public static TheoryData<string> Kinds => ["linear", "logistic", "softmax", "mlp-relu", "mlp-tanh", "mlp-sigmoid"];

    [Theory]
    [MemberData(nameof(Kinds))]
    public void ONNX_Runtime_on_raw_pixels_gives_the_programs_predictions(string kind) =>
        AssertSamePredictions(Model(kind, inputs: 12), new FeatureTransform(PixelScaling.MaxPixelValue), pixels: true);

    [Theory]
    [MemberData(nameof(Kinds))]
    public void ONNX_Runtime_on_raw_features_gives_the_programs_predictions_with_standardisation_in_the_graph(string kind)
    {
        var random = new Random(7);
        var mean = Enumerable.Range(0, 9).Select(_ => (float)(random.NextDouble() * 4 - 2)).ToArray();
        var std = Enumerable.Range(0, 9).Select(_ => (float)(0.2 + random.NextDouble() * 3)).ToArray();
        AssertSamePredictions(Model(kind, inputs: 9), new FeatureTransform(1f, new Standardizer(mean, std)), pixels: false);
    }

    [Fact]
    public void Pixel_scaling_and_standardisation_together_are_both_in_the_graph()
    {
        var mean = Enumerable.Repeat(0.4f, 6).ToArray();
        var std = Enumerable.Repeat(0.3f, 6).ToArray();
        var transform = new FeatureTransform(PixelScaling.MaxPixelValue, new Standardizer(mean, std));
        AssertSamePredictions(Model("mlp-relu", inputs: 6), transform, pixels: true);
        var graph = OnnxExport.Build(new SavedModel(Model("mlp-relu", inputs: 6).Spec, Model("mlp-relu", inputs: 6).Parameters, transform)).Graph;
        Assert.Equal(["Div", "Sub", "Div", "Gemm", "Relu", "Gemm", "Relu", "Gemm", "Softmax", "ArgMax"], graph.Node.Select(n => n.OpType));
    }

    [Fact]
    public void The_model_declares_a_recent_opset_and_a_symbolic_batch()
    {
        var onnx = OnnxExport.Build(new SavedModel(Model("softmax", 4).Spec, Model("softmax", 4).Parameters, FeatureTransform.Identity));
        Assert.True(onnx.OpsetImport.Single().Version >= 17);
        Assert.Equal("batch", onnx.Graph.Input.Single().Type.TensorType.Shape.Dim[0].DimParam);
        Assert.Equal([OnnxExport.ProbabilitiesName, OnnxExport.LabelName], onnx.Graph.Output.Select(o => o.Name));
    }

    /// <summary>A model of <paramref name="kind"/> with seeded θ (spread wide enough that the outputs are far from uniform).</summary>
    private static (ModelSpec Spec, float[] Parameters) Model(string kind, int inputs)
    {
        var spec = kind switch
        {
            "linear" => new ModelSpec(ModelKind.Linear, inputs, 0),
            "logistic" => new ModelSpec(ModelKind.Softmax, inputs, 2),
            "softmax" => new ModelSpec(ModelKind.Softmax, inputs, 5),
            _ => new ModelSpec(ModelKind.Mlp, inputs, 4, [16, 8], Enum.Parse<Activation>(kind["mlp-".Length..], ignoreCase: true)),
        };
        var parameters = new float[spec.ParameterCount];
        new Model(spec, MatrixKernels.Create(1)).Initialize(parameters, seed: 3);
        var random = new Random(5);
        for (int i = 0; i < parameters.Length; i++)
            parameters[i] += (float)(random.NextDouble() - 0.5) * 0.2f;
        return (spec, parameters);
    }

    private static void AssertSamePredictions((ModelSpec Spec, float[] Parameters) model, FeatureTransform transform, bool pixels)
    {
        var (spec, parameters) = model;
        var random = new Random(11);
        var raw = new float[Samples * spec.InputCount];
        for (int i = 0; i < raw.Length; i++)
            raw[i] = pixels ? random.Next(0, 256) : (float)(random.NextDouble() * 10 - 5);
        var targets = new float[Samples];
        var data = new Dataset("test", raw, spec.InputCount, targets, spec.ClassCount);

        // The program's own predictions: the model file's preprocessing, then the model.
        int columns = spec.ClassCount == 0 ? 1 : spec.ClassCount;
        var expected = new float[Samples * columns];
        new Model(spec, MatrixKernels.Create(1)).Predict(parameters, transform.Apply(data).Features, Samples, expected);

        using var temp = new TempFolder();
        string modelPath = temp["model.bin"], onnxPath = temp["model.onnx"];
        ModelFile.Save(modelPath, new SavedModel(spec, parameters, transform));
        var export = CliRunner.Run("export", "--model", modelPath, "--format", "onnx", "--out", onnxPath);
        Assert.True(export.ExitCode == 0, export.Error);

        using var session = new InferenceSession(onnxPath);
        var input = new DenseTensor<float>(raw, [Samples, spec.InputCount]);
        using var results = session.Run([NamedOnnxValue.CreateFromTensor(OnnxExport.FeaturesName, input)]);
        if (spec.ClassCount == 0)
        {
            var prediction = results.Single(r => r.Name == OnnxExport.PredictionName).AsTensor<float>();
            Assert.Equal([Samples, 1], prediction.Dimensions.ToArray());
            AssertClose(expected, prediction.ToArray(), Tolerance * MathF.Max(1f, expected.Max(MathF.Abs)));
            return;
        }
        var probabilities = results.Single(r => r.Name == OnnxExport.ProbabilitiesName).AsTensor<float>();
        var labels = results.Single(r => r.Name == OnnxExport.LabelName).AsTensor<long>().ToArray();
        Assert.Equal([Samples, spec.ClassCount], probabilities.Dimensions.ToArray());
        AssertClose(expected, probabilities.ToArray(), Tolerance);
        for (int s = 0; s < Samples; s++)
        {
            var row = expected.AsSpan(s * columns, columns).ToArray();
            int best = 0;
            for (int c = 1; c < columns; c++)
                best = row[c] > row[best] ? c : best;
            // A near tie may fall either way within the tolerance; every other sample's label must agree.
            bool clear = Enumerable.Range(0, columns).All(c => c == best || row[best] - row[c] > 2 * Tolerance);
            Assert.True(!clear || best == (int)labels[s], $"sample {s}: the program predicts class {best}, ONNX Runtime {labels[s]}");
        }
        // The outputs are not trivially uniform: the comparison above means something.
        Assert.True(expected.Max() > 1.2f / spec.ClassCount, $"the largest probability is only {expected.Max()}");
    }

    private static void AssertClose(float[] expected, float[] actual, float tolerance)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(MathF.Abs(expected[i] - actual[i]) <= tolerance, $"output {i}: the program gives {expected[i]:G9}, ONNX Runtime {actual[i]:G9}");
    }
}
