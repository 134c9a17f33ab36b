using DistSgd.Numerics.Models;

namespace DistSgd.Host.Export;

/// <summary>The formats `distsgd export` writes.</summary>
public enum ExportFormat
{
    /// <summary>ONNX (<see cref="OnnxExport"/>): ONNX Runtime, ML.NET, Python, browsers.</summary>
    Onnx,
}

/// <summary>
/// `distsgd export`: reads a model file and writes it in another format. Nothing is written unless the whole file is: a
/// model file that cannot be read, or an output path that cannot be written, is refused naming the file, and the output
/// is written through <see cref="AtomicFile"/> (a temporary file renamed over the target).
/// </summary>
public static class ModelExport
{
    /// <summary>The names --format accepts.</summary>
    public static readonly string[] FormatNames = Enum.GetNames<ExportFormat>().Select(n => n.ToLowerInvariant()).ToArray();

    /// <summary>Where the export goes when --out is not given: beside the model file, with the format's extension.</summary>
    public static string DefaultOutput(string modelPath, ExportFormat format) =>
        Path.ChangeExtension(modelPath, "." + format.ToString().ToLowerInvariant());

    /// <summary>Exports <paramref name="modelPath"/> to <paramref name="outPath"/> and prints one line saying what it wrote.</summary>
    public static int Execute(string modelPath, ExportFormat format, string? outPath, TextWriter output)
    {
        string target = outPath ?? DefaultOutput(modelPath, format);
        if (Directory.Exists(target))
            throw new UsageException($"--out: {target} is a folder; expected the path of the {format.ToString().ToUpperInvariant()} file to write");
        if (Path.GetFullPath(target) == Path.GetFullPath(modelPath))
            throw new UsageException($"--out: {target} is the model file itself; expected another path");
        var model = ModelFile.Load(modelPath);
        byte[] bytes = OnnxExport.Serialize(model);
        try
        {
            AtomicFile.Write(target, bytes);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"--out: cannot write {target}: {e.Message}");
        }
        var spec = model.Spec;
        string outputs = spec.ClassCount == 0
            ? $"{OnnxExport.PredictionName} float[batch,1]"
            : $"{OnnxExport.ProbabilitiesName} float[batch,{spec.ClassCount}], {OnnxExport.LabelName} int64[batch]";
        output.WriteLine($"exported {spec} from {modelPath} to {target} (ONNX opset {OnnxExport.Opset}, {bytes.Length:N0} bytes)");
        output.WriteLine($"input: {OnnxExport.FeaturesName} float[batch,{spec.InputCount}], raw; preprocessing in the graph: {OnnxExport.Preprocessing(model)}; outputs: {outputs}");
        return ExitCodes.Ok;
    }
}
