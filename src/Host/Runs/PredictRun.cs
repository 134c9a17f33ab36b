using System.Globalization;
using System.Text;
using DistSgd.Host.Settings;
using DistSgd.Numerics.Data;
using DistSgd.Numerics.Models;

namespace DistSgd.Host.Runs;

/// <summary>A saved model and data prepared for it: the model file's own scaling applied, the shapes checked.</summary>
public sealed record ModelOnData(string ModelPath, SavedModel Saved, Dataset Raw, Dataset Data)
{
    /// <summary>
    /// Loads the model file and the data `eval` and `predict` score (<see cref="DataSources.LoadForEvaluation"/>), applies the
    /// preprocessing stored in the model file and checks that the data fits the model.
    /// </summary>
    public static ModelOnData Load(string modelPath, DataRequest request)
    {
        var saved = ModelFile.Load(modelPath);
        var raw = DataSources.LoadForEvaluation(request, saved.Spec.ClassCount > 0 ? saved.Spec.ClassCount : null);
        var data = saved.Transform.Apply(raw);
        if (data.FeatureCount != saved.Spec.InputCount)
            throw new UsageException($"{raw.Name} has {data.FeatureCount} features, the model {saved.Spec} expects {saved.Spec.InputCount}");
        if (data.ClassCount != saved.Spec.ClassCount && !(data.IsClassification && data.ClassCount < saved.Spec.ClassCount))
            throw new UsageException($"{raw.Name} has {data.ClassCount} classes, the model {saved.Spec} predicts {saved.Spec.ClassCount}");
        return new ModelOnData(modelPath, saved, raw, data);
    }
}

/// <summary>
/// `distsgd predict`: the model's predictions for each sample (the class and its probabilities, or the value of a
/// regression), the labels' agreement, and a confusion matrix.
/// </summary>
public static class PredictRun
{
    /// <param name="limit">Samples to list one by one (0 = all); the summary and the matrix cover every sample.</param>
    public static int Execute(ModelOnData input, int limit, TextWriter output)
    {
        var spec = input.Saved.Spec;
        var data = input.Data;
        var model = new Model(spec, KernelChoice.Create(0));
        int columns = spec.ClassCount == 0 ? 1 : spec.ClassCount;
        var outputs = new float[(long)data.Count * columns];
        model.Predict(input.Saved.Parameters, data.Features, data.Count, outputs);
        output.WriteLine($"model: {spec} from {input.ModelPath}");
        output.WriteLine($"data: {input.Raw.Name} ({data.Count} samples)");
        int shown = limit <= 0 ? data.Count : Math.Min(limit, data.Count);
        if (spec.ClassCount == 0)
        {
            output.WriteLine("sample  predicted  target");
            double squared = 0;
            for (int i = 0; i < data.Count; i++)
            {
                double error = outputs[i] - data.Targets[i];
                squared += error * error;
                if (i < shown)
                    output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{i,6}  {outputs[i],9:G5}  {data.Targets[i]:G5}"));
            }
            if (shown < data.Count)
                output.WriteLine($"… {data.Count - shown} more (--limit 0 lists all)");
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"mean squared error {squared / Math.Max(1, data.Count):G6} over {data.Count} samples"));
            return ExitCodes.Ok;
        }

        var predicted = new int[data.Count];
        for (int i = 0; i < data.Count; i++)
            predicted[i] = ArgMax(outputs.AsSpan(i * columns, columns));
        output.WriteLine(ProbabilityHeader(columns));
        for (int i = 0; i < shown; i++)
            output.WriteLine(ProbabilityRow(i, predicted[i], (int)data.Targets[i], outputs.AsSpan(i * columns, columns)));
        if (shown < data.Count)
            output.WriteLine($"… {data.Count - shown} more (--limit 0 lists all)");
        var labels = data.Targets.Select(t => (int)t).ToArray();
        var matrix = ConfusionMatrix(labels, predicted, columns);
        long correct = Enumerable.Range(0, columns).Sum(c => matrix[c, c]);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"accuracy {100.0 * correct / Math.Max(1, data.Count):F2}% ({correct}/{data.Count})"));
        output.Write(FormatConfusionMatrix(matrix));
        return ExitCodes.Ok;
    }

    /// <summary>counts[true label, predicted class].</summary>
    public static long[,] ConfusionMatrix(IReadOnlyList<int> labels, IReadOnlyList<int> predicted, int classes)
    {
        var counts = new long[classes, classes];
        for (int i = 0; i < labels.Count; i++)
            counts[labels[i], predicted[i]]++;
        return counts;
    }

    public static string FormatConfusionMatrix(long[,] counts)
    {
        int classes = counts.GetLength(0);
        int width = Math.Max(5, counts.Cast<long>().Max().ToString(CultureInfo.InvariantCulture).Length + 1);
        var text = new StringBuilder("confusion matrix (rows: label, columns: predicted class)\n");
        text.Append("label".PadLeft(6));
        for (int c = 0; c < classes; c++)
            text.Append(c.ToString(CultureInfo.InvariantCulture).PadLeft(width));
        text.Append("   recall\n");
        for (int r = 0; r < classes; r++)
        {
            text.Append(r.ToString(CultureInfo.InvariantCulture).PadLeft(6));
            long total = 0;
            for (int c = 0; c < classes; c++)
            {
                text.Append(counts[r, c].ToString(CultureInfo.InvariantCulture).PadLeft(width));
                total += counts[r, c];
            }
            text.Append(total > 0 ? string.Create(CultureInfo.InvariantCulture, $"  {100.0 * counts[r, r] / total,6:F1}%") : "       -");
            text.Append('\n');
        }
        return text.ToString();
    }

    private static string ProbabilityHeader(int classes)
    {
        var text = new StringBuilder("sample  label  predicted  ");
        text.Append(classes <= 10 ? string.Concat(Enumerable.Range(0, classes).Select(c => $"p({c})".PadLeft(7))) : "top 5 classes (probability)");
        return text.ToString();
    }

    private static string ProbabilityRow(int index, int predicted, int label, ReadOnlySpan<float> p)
    {
        var text = new StringBuilder(string.Create(CultureInfo.InvariantCulture,
            $"{index,6}  {label,5}  {predicted,5} {(predicted == label ? "ok" : "--")}  "));
        if (p.Length <= 10)
        {
            foreach (float v in p)
                text.Append(v.ToString("F3", CultureInfo.InvariantCulture).PadLeft(7));
        }
        else
        {
            var array = p.ToArray();
            foreach (int c in Enumerable.Range(0, array.Length).OrderByDescending(c => array[c]).Take(5))
                text.Append(string.Create(CultureInfo.InvariantCulture, $"  {c}: {array[c]:F3}"));
        }
        return text.ToString();
    }

    private static int ArgMax(ReadOnlySpan<float> values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++)
            if (values[i] > values[best])
                best = i;
        return best;
    }
}
