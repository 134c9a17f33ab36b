using DistSgd.Host.Runs;
using DistSgd.Numerics.Data;
using DistSgd.Numerics.Models;
using Microsoft.ML.OnnxRuntime;

namespace DistSgd.Host.Tests.Export;

/// <summary>`distsgd export` end to end: a trained run's model.bin exported, and bad input refused with nothing written.</summary>
public class ExportCommandTests
{
    [Fact]
    public void A_trained_models_export_loads_in_ONNX_Runtime_and_agrees_with_predict_on_the_test_set()
    {
        using var temp = new TempFolder();
        var train = CliRunner.Run("train", "--mode", "sequential", "--dataset", "blobs", "--samples", "400", "--epochs", "2", "--hidden", "8",
                                  "--quiet", "--out", temp["run"]);
        Assert.True(train.ExitCode == 0, train.Error);
        string model = Path.Combine(temp["run"], RunFiles.ModelFileName);

        // Without --out the file goes beside the model.
        var export = CliRunner.Run("export", "--model", model);
        Assert.True(export.ExitCode == 0, export.Error);
        string onnx = Path.Combine(temp["run"], "model.onnx");
        Assert.Contains($"to {onnx} (ONNX opset", export.Output);
        Assert.Contains("preprocessing in the graph: (x − mean) / std of the training set", export.Output);

        // The same test set predict scores, raw, through ONNX Runtime: the same class for every sample.
        var input = ModelOnData.Load(model, new DistSgd.Host.Settings.DataRequest(DataSources.Blobs, null, null, "auto", 0.2, 0, false,
                                                                     LearningTask.Classification, 1, 400));
        var spec = input.Saved.Spec;
        var expected = new float[input.Data.Count * spec.ClassCount];
        new Model(spec, Numerics.Tensors.MatrixKernels.Create(1)).Predict(input.Saved.Parameters, input.Data.Features, input.Data.Count, expected);
        using var session = new InferenceSession(onnx);
        var features = new Microsoft.ML.OnnxRuntime.Tensors.DenseTensor<float>(input.Raw.Features, [input.Raw.Count, spec.InputCount]);
        using var results = session.Run([NamedOnnxValue.CreateFromTensor("features", features)]);
        var probabilities = results.Single(r => r.Name == "probabilities").AsTensor<float>().ToArray();
        Assert.Equal(expected.Length, probabilities.Length);
        Assert.All(Enumerable.Range(0, expected.Length), i => Assert.InRange(probabilities[i], expected[i] - 1e-5f, expected[i] + 1e-5f));
    }

    [Fact]
    public void A_missing_model_file_is_refused_naming_it_and_nothing_is_written()
    {
        using var temp = new TempFolder();
        var outcome = CliRunner.Run("export", "--model", temp["nothing.bin"], "--out", temp["model.onnx"]);
        AssertRefused(outcome, temp["model.onnx"], $"{temp["nothing.bin"]}");
    }

    [Fact]
    public void A_corrupt_model_file_is_refused_and_an_existing_output_is_kept_as_it_was()
    {
        using var temp = new TempFolder();
        string model = SavedModelFile(temp);
        var bytes = File.ReadAllBytes(model);
        bytes[bytes.Length / 2] ^= 0x40;
        File.WriteAllBytes(model, bytes);
        File.WriteAllText(temp["model.onnx"], "an earlier export");

        var outcome = CliRunner.Run("export", "--model", model, "--out", temp["model.onnx"]);
        Assert.Equal(2, outcome.ExitCode);
        Assert.Contains("the checksum does not match: the model file is corrupted or truncated", outcome.Error);
        Assert.Equal("an earlier export", File.ReadAllText(temp["model.onnx"]));
        Assert.Equal([temp["model.bin"], temp["model.onnx"]], Directory.GetFiles(temp.Path).Order());
    }

    [Fact]
    public void A_file_that_is_not_a_model_is_refused()
    {
        using var temp = new TempFolder();
        File.WriteAllText(temp["notes.txt"], "not a model");
        var outcome = CliRunner.Run("export", "--model", temp["notes.txt"], "--out", temp["model.onnx"]);
        AssertRefused(outcome, temp["model.onnx"], "not a DistSgd model file");
    }

    [Fact]
    public void An_unknown_format_is_refused_naming_the_formats()
    {
        using var temp = new TempFolder();
        var outcome = CliRunner.Run("export", "--model", SavedModelFile(temp), "--format", "tflite", "--out", temp["model.tflite"]);
        AssertRefused(outcome, temp["model.tflite"], "--format: expected one of onnx, found 'tflite'");
    }

    [Fact]
    public void An_output_path_that_is_a_folder_is_refused()
    {
        using var temp = new TempFolder();
        Directory.CreateDirectory(temp["folder"]);
        var outcome = CliRunner.Run("export", "--model", SavedModelFile(temp), "--out", temp["folder"]);
        Assert.Equal(2, outcome.ExitCode);
        Assert.Contains($"--out: {temp["folder"]} is a folder", outcome.Error);
        Assert.Empty(Directory.GetFileSystemEntries(temp["folder"]));
    }

    private static string SavedModelFile(TempFolder temp)
    {
        var spec = new ModelSpec(ModelKind.Softmax, 3, 3);
        ModelFile.Save(temp["model.bin"], new SavedModel(spec, new float[spec.ParameterCount], FeatureTransform.Identity));
        return temp["model.bin"];
    }

    private static void AssertRefused(CliRunner.Outcome outcome, string output, string expected)
    {
        Assert.True(outcome.ExitCode == 2, $"exit {outcome.ExitCode}, expected 2; stderr: {outcome.Error}");
        Assert.Contains(expected, outcome.Error);
        Assert.Single(outcome.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.False(File.Exists(output), $"{output} was written for a refused export");
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(output)!, ".*.tmp"));
    }
}
