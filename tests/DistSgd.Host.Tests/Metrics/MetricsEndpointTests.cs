using System.Globalization;
using System.Net.Http;
using DistSgd.Actors.Steps;
using DistSgd.Host.Runs;
using DistSgd.Host.Tests.Runs;

namespace DistSgd.Host.Tests.Metrics;

/// <summary>--metrics-port: the instruments of <see cref="RunMeters"/> scraped over loopback as Prometheus text.</summary>
[Collection(NodeProcessCollection.Name)]
public class MetricsEndpointTests
{
    /// <summary>One sample of the Prometheus text format: name, labels as written, value.</summary>
    public sealed record Sample(string Name, string Labels, double Value);

    [Fact]
    public void Every_node_serves_its_metrics_and_a_scrape_during_the_run_finds_steps_growing_and_bytes_sent()
    {
        using var temp = new TempFolder();
        var ports = NodeProcess.FreePorts(4);
        string seed = $"127.0.0.1:{ports[0]}";
        // The worker's every gradient stretched 50× (distsgd.debug.slowdown, a sleep: ~3 ms a step for this tiny model), so
        // that the run outlasts the scrapes however fast the step is: since the step got leaner (decisions 0128-0130) the
        // 12 epochs sometimes ended before the first scrape, whose connection was then refused (seen in CI).
        string slow = temp["slow.conf"];
        File.WriteAllText(slow, "distsgd.debug.slowdown = 50\n");
        string[] run = ["--dataset", "blobs", "--samples", "20000", "--epochs", "12", "--hidden", "16", "--patience", "0", "--workers", "1",
                        "--config", slow];
        using var group = new NodeGroup();
        var master = group.Start(["node", "--host", "127.0.0.1", "--port", $"{ports[0]}", "--roles", "master", .. run,
                                  "--metrics-port", $"{ports[2]}", "--out", temp["master"]]);
        var worker = group.Start(["node", "--host", "127.0.0.1", "--port", $"{ports[1]}", "--seed-nodes", seed, "--roles", "worker", .. run,
                                  "--metrics-port", $"{ports[3]}", "--out", temp["worker"]]);
        master.WaitForOutput("epoch   1/12", NodeProcessTests.Bound);
        Assert.Contains($"metrics: http://127.0.0.1:{ports[2]}/metrics", master.Output);

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        // Both nodes see the cluster's two members Up (read first: the run ends in seconds, and its nodes then leave).
        Assert.Equal(2, Eventually(http, ports[2], "distsgd_members_up", $"127.0.0.1:{ports[0]}", 2));
        Assert.Equal(2, Eventually(http, ports[3], "distsgd_members_up", $"127.0.0.1:{ports[1]}", 2));
        var first = Scrape(http, ports[2]);
        Thread.Sleep(1500);
        var second = Scrape(http, ports[2]);
        var workerScrape = Scrape(http, ports[3]);

        // The master: steps applied, growing between two scrapes; bytes both ways.
        double steps1 = Value(first, "distsgd_steps_total", "role=\"master\""), steps2 = Value(second, "distsgd_steps_total", "role=\"master\"");
        Assert.True(steps1 > 0 && steps2 > steps1, $"steps {steps1} then {steps2}");
        Assert.True(Value(second, "distsgd_sent_bytes_total", "role=\"master\"") > 0);
        Assert.True(Value(second, "distsgd_received_bytes_total", "role=\"master\"") > 0);
        Assert.True(Value(second, "distsgd_samples_total", "role=\"master\"") >= 64 * steps2 - 64);
        Assert.True(Value(second, "distsgd_compute_seconds_total", "role=\"master\"") > 0);
        Assert.True(Value(second, "distsgd_communication_seconds_total", "role=\"master\"") > 0);
        Assert.True(Value(second, "distsgd_throughput_per_second", "role=\"master\"") > 0);
        Assert.InRange(Value(second, "distsgd_loss", "role=\"master\""), 0, 10);
        // The worker serves its own: the gradients it computed.
        Assert.True(Value(workerScrape, "distsgd_steps_total", "role=\"worker\"") > 0);
        Assert.True(Value(workerScrape, "distsgd_sent_bytes_total", "role=\"worker\"") > 0);

        Assert.True(master.WaitForExit(NodeProcessTests.Bound) == 0, master.Output);
        Assert.True(worker.WaitForExit(NodeProcessTests.Bound) == 0, worker.Output);
    }

    [Fact]
    public void Counting_a_step_allocates_nothing_while_OpenTelemetry_listens()
    {
        int port = NodeProcess.FreePorts(1)[0];
        using var endpoint = MetricsEndpoint.Start(port, "127.0.0.1")!;
        using var meters = new NodeMeters("allocation-test", "peer");
        for (int i = 0; i < 1000; i++)
            Count(meters);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10_000; i++)
            Count(meters);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, allocated);

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var scraped = Scrape(http, port);
        Assert.Equal(11_000, Value(scraped, "distsgd_steps_total", "node=\"allocation-test\""));
        Assert.Equal(11_000, Value(scraped, "distsgd_dropped_messages_total", "kind=\"stale_step\",node=\"allocation-test\""));
    }

    [Fact]
    public void A_metrics_port_in_use_is_refused_naming_the_flag()
    {
        int port = NodeProcess.FreePorts(1)[0];
        using var first = MetricsEndpoint.Start(port, "127.0.0.1")!;
        var error = Assert.Throws<UsageException>(() => MetricsEndpoint.Start(port, "127.0.0.1"));
        Assert.StartsWith($"--metrics-port {port}: cannot serve metrics at http://127.0.0.1:{port}/", error.Message);
    }

    private static void Count(NodeMeters meters)
    {
        meters.Step(64, 12.5, 0.002, 0.001);
        meters.Sent(4096);
        meters.Received(4096);
        meters.Dropped(DroppedMessages.Name(GatherOutcome.StaleStep));
    }

    /// <summary>GETs /metrics and parses every sample line (comments skipped).</summary>
    public static List<Sample> Scrape(HttpClient http, int port)
    {
        string text = http.GetStringAsync($"http://127.0.0.1:{port}/metrics").GetAwaiter().GetResult();
        var samples = new List<Sample>();
        foreach (string line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (line.StartsWith('#'))
                continue;
            int brace = line.IndexOf('{'), space = line.LastIndexOf(' ');
            int close = line.LastIndexOf('}');
            string name = brace >= 0 ? line[..brace] : line[..line.IndexOf(' ')];
            string labels = brace >= 0 ? line[(brace + 1)..close] : "";
            string value = line[(close >= 0 ? close + 1 : line.IndexOf(' '))..].Trim().Split(' ')[0];
            samples.Add(new Sample(name, labels, double.Parse(value, CultureInfo.InvariantCulture)));
        }
        return samples;
    }

    /// <summary>
    /// The sample's value once it reads <paramref name="expected"/>, scraping again for up to 10 s (a node's view of the
    /// cluster follows gossip, which a loaded machine delays); the last value read otherwise.
    /// </summary>
    private static double Eventually(HttpClient http, int port, string name, string label, double expected)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        double value;
        while ((value = Value(Scrape(http, port), name, label)) != expected && clock.Elapsed < TimeSpan.FromSeconds(10))
            Thread.Sleep(250);
        return value;
    }

    /// <summary>The value of the one sample named <paramref name="name"/> whose labels contain <paramref name="label"/>.</summary>
    public static double Value(List<Sample> samples, string name, string label)
    {
        var found = samples.Where(s => s.Name == name && s.Labels.Contains(label, StringComparison.Ordinal)).ToList();
        Assert.True(found.Count == 1, $"{found.Count} samples {name}{{…{label}…}} among:\n{string.Join('\n', samples.Select(s => $"{s.Name}{{{s.Labels}}} {s.Value}"))}");
        return found[0].Value;
    }
}
