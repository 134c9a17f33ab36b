using DistSgd.Host.Runs;

namespace DistSgd.Host.Tests.Runs;

/// <summary>
/// A diverging run stops cleanly (exit 1, advice to lower --lr) and leaves the results of the good run that
/// wrote the folder before it exactly as they were.
/// </summary>
public class DivergenceTests
{
    private static string[] Flags(string mode, string lr, string results) =>
        ["train", "--mode", mode, "--workers", "2", "--dataset", "linear", "--samples", "200", "--epochs", "2",
         "--batch-size", "16", "--momentum", "0", "--lr", lr, "--quiet", "--out", results];

    [Theory]
    [InlineData("sequential")]
    [InlineData("centralized")]
    [InlineData("decentralized")]
    public void A_huge_learning_rate_stops_the_run_and_keeps_the_previous_good_model_byte_for_byte(string mode)
    {
        using var temp = new TempFolder();
        string results = temp["run"];
        Assert.Equal(0, CliRunner.Run(Flags(mode, "0.01", results)).ExitCode);
        string model = Path.Combine(results, RunFiles.ModelFileName);
        string summary = Path.Combine(results, RunFiles.SummaryFileName);
        byte[] goodModel = File.ReadAllBytes(model);
        byte[] goodSummary = File.ReadAllBytes(summary);
        using (var json = System.Text.Json.JsonDocument.Parse(goodSummary))
        {
            // The per-kind breakdown of dropped messages: an object (empty in a clean run) in the distributed modes.
            var dropped = json.RootElement.GetProperty("dropped_messages");
            Assert.Equal(mode == "sequential" ? System.Text.Json.JsonValueKind.Null : System.Text.Json.JsonValueKind.Object, dropped.ValueKind);
        }

        var diverged = CliRunner.Run(Flags(mode, "1e4", results));

        Assert.Equal(ExitCodes.TrainingFailed, diverged.ExitCode);
        Assert.Contains("training diverged", diverged.Error);
        Assert.Contains("try a smaller --lr", diverged.Error);
        Assert.Equal(goodModel, File.ReadAllBytes(model));
        Assert.Equal(goodSummary, File.ReadAllBytes(summary));
        string metrics = File.ReadAllText(Path.Combine(results, RunFiles.MetricsFileName));
        Assert.DoesNotContain("NaN", metrics);
        Assert.DoesNotContain("Infinity", metrics);
        Assert.Empty(Directory.GetFiles(results, "*.tmp"));
    }
}
