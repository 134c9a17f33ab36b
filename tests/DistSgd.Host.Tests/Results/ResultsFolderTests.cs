using System.Buffers.Binary;
using System.Globalization;
using System.Text.Json;
using DistSgd.Host.Results;
using DistSgd.Host.Runs;

namespace DistSgd.Host.Tests.Results;

public class ResultsFolderTests
{
    /// <summary>Width and height from a PNG's signature and IHDR chunk; throws when the bytes are not a PNG.</summary>
    internal static (int Width, int Height) PngSize(string path)
    {
        var bytes = File.ReadAllBytes(path);
        byte[] signature = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];
        Assert.True(bytes.Length > 24 && bytes.AsSpan(0, 8).SequenceEqual(signature), $"{path} is not a PNG");
        Assert.Equal("IHDR", System.Text.Encoding.ASCII.GetString(bytes, 12, 4));
        Assert.Equal([0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82], bytes[^8..]);   // IEND and its CRC: written whole
        return (BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(16)), BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(20)));
    }

    /// <summary>No escape sequences, cursor moves or other control characters: only text, tabs and line ends.</summary>
    internal static void AssertNoControlCodes(string text)
    {
        var bad = text.Where(c => char.IsControl(c) && c is not ('\n' or '\r' or '\t')).Select(c => $"U+{(int)c:X4}").Distinct().ToList();
        Assert.True(bad.Count == 0, $"control characters in the output: {string.Join(", ", bad)}");
    }

    [Fact]
    public void Json_lines_metrics_csv_and_summary_hold_the_same_numbers_and_the_plots_are_pngs()
    {
        using var temp = new TempFolder();
        var outcome = CliRunner.Run("train", "--mode", "sequential", "--dataset", "blobs", "--samples", "600", "--epochs", "3",
                                    "--hidden", "16", "--out", temp["run"], "--json");
        Assert.Equal(0, outcome.ExitCode);
        var lines = outcome.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var objects = lines.Select(l => JsonDocument.Parse(l).RootElement).ToList();   // every line is one JSON object
        var epochs = objects.Where(o => o.GetProperty("type").GetString() == "epoch").ToList();
        Assert.Equal(3, epochs.Count);
        Assert.Equal("done", objects[^1].GetProperty("type").GetString());

        var csv = File.ReadAllLines(Path.Combine(temp["run"], RunFiles.MetricsFileName));
        var header = csv[0].Split(',');
        Assert.Contains("bytes_sent", header);
        Assert.Contains("communication_share", header);
        for (int i = 0; i < 3; i++)
        {
            var row = csv[i + 1].Split(',');
            double Column(string name) => double.Parse(row[Array.IndexOf(header, name)], CultureInfo.InvariantCulture);
            Assert.Equal(i + 1, (int)Column("epoch"));
            Assert.Equal(epochs[i].GetProperty("train_loss").GetDouble(), Column("train_loss"));
            Assert.Equal(epochs[i].GetProperty("test_accuracy").GetDouble(), Column("test_accuracy"));
            Assert.Equal(epochs[i].GetProperty("seconds").GetDouble(), Column("seconds"));
        }

        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(temp["run"], RunFiles.SummaryFileName)));
        var root = summary.RootElement;
        Assert.Equal(epochs[^1].GetProperty("test_accuracy").GetDouble(), root.GetProperty("final_test_accuracy").GetDouble());
        Assert.Equal(epochs[^1].GetProperty("train_loss").GetDouble(), root.GetProperty("final_train_loss").GetDouble());
        Assert.Equal(epochs[^1].GetProperty("step").GetInt64(), root.GetProperty("totals").GetProperty("steps").GetInt64());
        Assert.False(string.IsNullOrEmpty(root.GetProperty("versions").GetProperty("dotnet").GetString()));

        foreach (string plot in new[] { RunPlots.LossByEpoch, RunPlots.LossByTime, RunPlots.AccuracyByEpoch, RunPlots.AccuracyByTime })
            Assert.Equal((RunPlots.Width, RunPlots.Height), PngSize(Path.Combine(temp["run"], plot)));
    }

    [Fact]
    public void A_distributed_run_prints_plain_lines_and_writes_the_akka_log_to_the_results_folder()
    {
        using var temp = new TempFolder();
        var outcome = CliRunner.Run("train", "--dataset", "blobs", "--samples", "600", "--epochs", "2", "--hidden", "16",
                                    "--workers", "2", "--out", temp["run"]);
        Assert.Equal(0, outcome.ExitCode);
        AssertNoControlCodes(outcome.Output);
        Assert.Equal(2, outcome.Output.Split('\n').Count(l => l.StartsWith("epoch ", StringComparison.Ordinal)));
        Assert.DoesNotContain("[INFO]", outcome.Output);
        string log = File.ReadAllText(Path.Combine(temp["run"], RunLog.FileName));
        Assert.Contains("[INFO]", log);
        Assert.Contains("Cluster Node", log);
    }

    [Fact]
    public void A_regression_run_plots_its_loss_only()
    {
        using var temp = new TempFolder();
        var outcome = CliRunner.Run("train", "--mode", "sequential", "--dataset", "linear", "--samples", "300", "--epochs", "2", "--out", temp["run"], "--quiet");
        Assert.Equal(0, outcome.ExitCode);
        Assert.Single(outcome.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal((RunPlots.Width, RunPlots.Height), PngSize(Path.Combine(temp["run"], RunPlots.LossByEpoch)));
        Assert.False(File.Exists(Path.Combine(temp["run"], RunPlots.AccuracyByEpoch)));
    }
}
