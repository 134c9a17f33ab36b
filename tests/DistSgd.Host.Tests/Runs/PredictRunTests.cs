using System.Text.RegularExpressions;
using DistSgd.Host.Runs;

namespace DistSgd.Host.Tests.Runs;

public class PredictRunTests
{
    [Fact]
    public void Predict_lists_probabilities_and_its_accuracy_and_matrix_agree_with_eval()
    {
        using var temp = new TempFolder();
        Assert.Equal(0, CliRunner.Run("train", "--mode", "sequential", "--dataset", "blobs", "--samples", "500", "--epochs", "2",
                                      "--hidden", "16", "--out", temp["run"], "--quiet").ExitCode);
        string model = Path.Combine(temp["run"], RunFiles.ModelFileName);
        var predict = CliRunner.Run("predict", "--model", model, "--dataset", "blobs", "--samples", "500", "--limit", "3");
        var eval = CliRunner.Run("eval", "--model", model, "--dataset", "blobs", "--samples", "500");
        Assert.Equal(0, predict.ExitCode);

        var lines = predict.Output.Split('\n');
        var sampleRows = lines.Where(l => Regex.IsMatch(l, @"^\s+\d+\s+\d+\s+\d+ (ok|--)")).ToList();
        Assert.Equal(3, sampleRows.Count);
        foreach (string row in sampleRows)
        {
            var p = row.Split(' ', StringSplitOptions.RemoveEmptyEntries)[4..].Select(double.Parse).ToArray();
            Assert.Equal(4, p.Length);
            Assert.Equal(1.0, p.Sum(), 2);
        }
        string accuracy = Regex.Match(predict.Output, @"accuracy (\d+\.\d\d% \(\d+/100\))").Groups[1].Value;
        Assert.NotEmpty(accuracy);
        Assert.Contains(accuracy, eval.Output);

        // The matrix's rows add up to the 100 test samples, its diagonal to the correct ones.
        int start = Array.FindIndex(lines, l => l.StartsWith("confusion matrix", StringComparison.Ordinal));
        var matrix = lines.Skip(start + 2).Take(4).Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1..5].Select(long.Parse).ToArray()).ToList();
        Assert.Equal(100, matrix.Sum(r => r.Sum()));
        long correct = long.Parse(Regex.Match(accuracy, @"\((\d+)/").Groups[1].Value);
        Assert.Equal(correct, Enumerable.Range(0, 4).Sum(i => matrix[i][i]));
    }

    [Fact]
    public void Confusion_matrix_counts_label_against_prediction()
    {
        var m = PredictRun.ConfusionMatrix([0, 0, 1, 2, 2], [0, 1, 1, 2, 0], 3);
        Assert.Equal(1, m[0, 0]);
        Assert.Equal(1, m[0, 1]);
        Assert.Equal(1, m[1, 1]);
        Assert.Equal(1, m[2, 2]);
        Assert.Equal(1, m[2, 0]);
        Assert.Contains("recall", PredictRun.FormatConfusionMatrix(m));
    }

    [Fact]
    public void Predict_names_a_model_file_that_is_missing()
    {
        var outcome = CliRunner.Run("predict", "--model", "/nonexistent/model.bin", "--dataset", "blobs");
        Assert.Equal(2, outcome.ExitCode);
        Assert.Contains("model.bin", outcome.Error);
    }
}
