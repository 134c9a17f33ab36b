using System.Net;
using DistSgd.Host.Runs;
using DistSgd.Numerics.Cost;
using DistSgd.Numerics.Training;

namespace DistSgd.Host.Tests.Cli;

/// <summary>`distsgd bench cost`, `bench calibrate` and `bench link`: the cost model's command line.</summary>
public class BenchCostCommandTests
{
    [Fact]
    public void Bench_cost_prints_one_row_per_node_count_for_every_rate()
    {
        var outcome = CliRunner.Run("bench", "cost", "--nodes", "2,8", "--rate", "1gbit,none");
        Assert.True(outcome.ExitCode == 0, outcome.Error);
        Assert.Contains("Link 1gbit each way", outcome.Output);
        Assert.Contains("Link none each way", outcome.Output);
        Assert.Equal(4, outcome.Output.Split('\n').Count(l => l.StartsWith("| 2 |", StringComparison.Ordinal) || l.StartsWith("| 8 |", StringComparison.Ordinal)));
        // 8 peers at 1 Gbit/s: the all-reduce moves 2·7/8·G = 1.65 MB per node, the master 8·G = 7.52 MB.
        var row = outcome.Output.Split('\n').First(l => l.StartsWith("| 8 |", StringComparison.Ordinal)).Split('|', StringSplitOptions.TrimEntries);
        Assert.Equal("7.52", row[6]);
        Assert.Equal("6.58", row[7]);
        Assert.Equal("1.65", row[8]);
        // The ring, cut into segments on a slow link, waits one round per phase as pairwise does and sums (N−1)/N·G, not G.
        Assert.Equal("ring", row[9]);
        Assert.Contains("Stops scaling", outcome.Output);
    }

    [Fact]
    public void Bench_cost_csv_has_a_line_per_rate_node_count_and_run()
    {
        var outcome = CliRunner.Run("bench", "cost", "--csv", "--nodes", "2,4", "--rate", "1gbit,none", "--shared-cores", "2");
        Assert.True(outcome.ExitCode == 0, outcome.Error);
        var lines = outcome.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(CostTable.CsvHeader, lines[0]);
        Assert.Equal(1 + 2 * 2 * 5, lines.Length);
        var ring = lines.Single(l => l.StartsWith("1gbit,4,ring,", StringComparison.Ordinal)).Split(',');
        var expected = CostModel.Decentralized(CostConstants.Measured, Collective.Ring, new ClusterShape(4, LinkRate.Parse("1gbit"), 2));
        Assert.Equal(expected.TotalSeconds, double.Parse(ring[3], System.Globalization.CultureInfo.InvariantCulture), 12);
        Assert.Equal(1.5 * CostConstants.Measured.GradientBytes, double.Parse(ring[5], System.Globalization.CultureInfo.InvariantCulture), 6);
    }

    [Fact]
    public void Bench_cost_reads_the_constants_calibrate_writes()
    {
        using var temp = new TempFolder();
        string path = temp["constants.json"];
        File.WriteAllText(path, (CostConstants.Measured with { ComputeSeconds = 1 }).ToJson());
        var outcome = CliRunner.Run("bench", "cost", "--constants", path, "--nodes", "2", "--rate", "1gbit");
        Assert.True(outcome.ExitCode == 0, outcome.Error);
        Assert.Contains("C = 1000 ms", outcome.Output);
    }

    [Theory]
    [InlineData(new[] { "bench", "cost", "--rate", "fast" }, "--rate: expected comma-separated rates such as none, 100mbit, 1gbit, 2.5gbit, found 'fast'")]
    [InlineData(new[] { "bench", "cost", "--nodes", "0" }, "--nodes: expected comma-separated counts from 1 to 4096")]
    [InlineData(new[] { "bench", "cost", "--shared-cores", "-1" }, "--shared-cores: expected a core count from 0")]
    [InlineData(new[] { "bench", "cost", "--constants", "/nonexistent/c.json" }, "/nonexistent/c.json")]
    [InlineData(new[] { "bench", "link" }, "bench link: expected exactly one of --listen ADDRESS:PORT and --to ADDRESS:PORT")]
    [InlineData(new[] { "bench", "link", "--to", "somewhere" }, "--to: expected ADDRESS:PORT with an IP address")]
    [InlineData(new[] { "bench", "calibrate", "--repeat", "1" }, "--repeat: expected from 5 to 100000 repetitions")]
    public void Bad_input_exits_2_naming_the_flag(string[] args, string message)
    {
        var outcome = CliRunner.Run(args);
        Assert.Equal(2, outcome.ExitCode);
        Assert.Contains(message, outcome.Error);
    }

    [Fact]
    public void Bench_cost_refuses_a_constants_file_with_a_field_out_of_range()
    {
        using var temp = new TempFolder();
        string path = temp["constants.json"];
        File.WriteAllText(path, (CostConstants.Measured with { MessageSeconds = -1 }).ToJson());
        var outcome = CliRunner.Run("bench", "cost", "--constants", path);
        Assert.Equal(2, outcome.ExitCode);
        Assert.Contains($"{path}: MessageSeconds: expected a finite number ≥ 0, found -1", outcome.Error);
    }

    [Fact]
    public async Task The_link_probe_measures_a_latency_and_a_cost_per_byte_over_loopback()
    {
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var listening = new TaskCompletionSource<IPEndPoint>();
        var server = Task.Run(() => LinkProbe.Serve(new IPEndPoint(IPAddress.Loopback, 0), 1, stop.Token, listening.SetResult));
        var endpoint = await listening.Task.WaitAsync(TimeSpan.FromSeconds(10));
        var link = LinkProbe.Measure(endpoint, 8 << 20, 5, TimeSpan.FromSeconds(10));
        await server.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.InRange(link.MessageSeconds, 1e-7, 0.5);
        // Loopback moves 8 MiB in well under a second and takes more than nothing for it (a few ms: far above the noise
        // of waking the echo thread on a loaded machine, which a small payload's difference could drown in).
        Assert.InRange(link.SecondsPerByte * (8 << 20), 1e-5, 1.0);
        Assert.Equal(8 << 20, link.PayloadBytes);
    }
}
