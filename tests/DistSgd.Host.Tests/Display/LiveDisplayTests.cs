using DistSgd.Host.Display;
using DistSgd.Host.Runs;
using DistSgd.Host.Settings;

namespace DistSgd.Host.Tests.Display;

public class LiveDisplayTests
{
    private static TrainSettings Settings(string outDir, RunMode mode) =>
        BlobsSettings.Create(outDir, mode, samples: 600, hidden: [16], epochs: 2, batchSize: 32);

    [Fact]
    public void The_live_display_shows_the_nodes_the_master_reports_and_every_epoch()
    {
        using var temp = new TempFolder();
        var console = new StringWriter();
        var settings = Settings(temp["run"], RunMode.Centralized);
        var outcome = TrainRun.Train(settings, new LiveDisplay(console, settings));
        Assert.Equal(2, outcome.Result.Epochs.Count);
        string shown = console.ToString();
        Assert.Contains("nodes", shown);
        Assert.Contains("worker", shown);
        Assert.Contains("akka.tcp://distsgd@127.0.0.1:", shown);
        Assert.Contains("test acc", shown);
        Assert.Contains("done: 2 epochs", shown);
    }

    [Fact]
    public void A_redirected_console_gets_plain_lines_and_json_and_quiet_are_honoured()
    {
        using var temp = new TempFolder();
        var settings = Settings(temp["run"], RunMode.Sequential);
        Assert.IsType<RunDisplay.PlainLines>(RunDisplay.Create(settings, TextWriter.Null, interactive: false));
        Assert.IsType<LiveDisplay>(RunDisplay.Create(settings, TextWriter.Null, interactive: true));
        Assert.IsType<RunDisplay.JsonLines>(RunDisplay.Create(settings with { Json = true }, TextWriter.Null, interactive: true));
        Assert.IsType<RunDisplay.FinalLineOnly>(RunDisplay.Create(settings with { Quiet = true }, TextWriter.Null, interactive: true));
        Assert.False(RunDisplay.IsInteractive(new StringWriter()));
    }
}
