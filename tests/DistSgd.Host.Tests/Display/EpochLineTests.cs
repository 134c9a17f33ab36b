using System.Text.Json;
using DistSgd.Host.Display;
using DistSgd.Host.Runs;
using DistSgd.Numerics.Training;

namespace DistSgd.Host.Tests.Display;

/// <summary>How an epoch reads on screen and in the files, with and without a test score here.</summary>
public class EpochLineTests
{
    private static readonly EpochMetrics Scored = new(2, 200, 0.4, 0.35, 0.875, 3.0, 1000, 0.01);
    private static readonly EpochMetrics Unscored = Scored with { TestLoss = double.NaN, TestAccuracy = double.NaN };

    [Fact]
    public void An_epoch_scored_here_shows_its_test_loss_and_accuracy()
    {
        string line = RunDisplay.FormatEpoch(Scored, 4, classification: true);
        Assert.Contains("test loss 0.3500  test acc 87.50%", line);
        Assert.True(Scored.HasTestScore);
    }

    [Fact]
    public void An_epoch_a_lost_lead_scored_says_not_known_on_every_display_and_is_blank_in_metrics_csv()
    {
        Assert.False(Unscored.HasTestScore);
        string line = RunDisplay.FormatEpoch(Unscored, 4, classification: true);
        Assert.Contains("test loss not known  test acc not known", line);
        Assert.DoesNotContain("NaN", line);
        Assert.DoesNotContain("NaN", RunDisplay.FormatEpoch(Unscored, 4, classification: false));

        var row = RunFiles.MetricsRow(Unscored).Split(',');
        Assert.Equal(["", ""], row[3..5]);

        var json = new StringWriter();
        new RunDisplay.JsonLines(json).Epoch(Unscored, line);
        using var epoch = JsonDocument.Parse(json.ToString());
        Assert.Equal(JsonValueKind.Null, epoch.RootElement.GetProperty("test_loss").ValueKind);
        Assert.Equal(JsonValueKind.Null, epoch.RootElement.GetProperty("test_accuracy").ValueKind);
    }

    [Fact]
    public void The_lag_report_cell_lists_each_nodes_compute_per_step_and_is_empty_for_a_sequential_run()
    {
        var breakdown = new StepTimeBreakdown(4, 0.012, 0, 0, 0, 0, 0, 0)
        {
            Nodes = [new NodeComputeTime(0, 4, 0.004, 0, 0), new NodeComputeTime(3, 4, 0.012, 4, 2)],
        };
        var row = RunFiles.MetricsRow(Scored with { Communication = breakdown }).Split(',');
        Assert.Equal(RunFiles.MetricsHeader.Split(',').Length, row.Length);
        int column = Array.IndexOf(RunFiles.MetricsHeader.Split(','), "node_compute_seconds");
        Assert.Equal("0:0.001 3:0.003", row[column]);
        Assert.Equal("", RunFiles.MetricsRow(Scored).Split(',')[column]);
    }
}
