using System.Globalization;
using System.Text.RegularExpressions;
using System.Text.Json;
using DistSgd.Host.Runs;
using DistSgd.Numerics.Models;

namespace DistSgd.Host.Tests.Runs;

public class TrainRunTests
{
    private static CliRunner.Outcome TrainBlobs(string outDir, params string[] extra) =>
        CliRunner.Run(["train", "--mode", "sequential", "--dataset", "blobs", "--samples", "800", "--epochs", "3", "--hidden", "16",
                       "--batch-size", "32", "--out", outDir, .. extra]);

    [Fact]
    public void Train_writes_the_model_metrics_and_summary()
    {
        using var temp = new TempFolder();
        var outcome = TrainBlobs(temp["run"]);
        Assert.Equal(0, outcome.ExitCode);
        Assert.Contains("data: synthetic Gaussian blobs", outcome.Output);

        var metrics = File.ReadAllLines(Path.Combine(temp["run"], RunFiles.MetricsFileName));
        Assert.Equal(RunFiles.MetricsHeader, metrics[0]);
        Assert.Equal(4, metrics.Length);
        Assert.StartsWith("3,", metrics[3]);

        var model = ModelFile.Load(Path.Combine(temp["run"], RunFiles.ModelFileName));
        Assert.Equal(new ModelSpec(ModelKind.Mlp, 20, 4, [16]), model.Spec);

        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(temp["run"], RunFiles.SummaryFileName)));
        Assert.Equal(3, summary.RootElement.GetProperty("epochs_run").GetInt32());
        Assert.InRange(summary.RootElement.GetProperty("final_test_accuracy").GetDouble(), 0.5, 1.0);
    }

    [Fact]
    public void The_same_seed_and_flags_give_a_byte_identical_model_file()
    {
        using var temp = new TempFolder();
        Assert.Equal(0, TrainBlobs(temp["a"], "--seed", "7").ExitCode);
        Assert.Equal(0, TrainBlobs(temp["b"], "--seed", "7").ExitCode);
        Assert.Equal(0, TrainBlobs(temp["c"], "--seed", "8").ExitCode);
        var a = File.ReadAllBytes(Path.Combine(temp["a"], RunFiles.ModelFileName));
        Assert.Equal(a, File.ReadAllBytes(Path.Combine(temp["b"], RunFiles.ModelFileName)));
        Assert.NotEqual(a, File.ReadAllBytes(Path.Combine(temp["c"], RunFiles.ModelFileName)));
    }

    [Fact]
    public void Eval_reports_the_accuracy_of_a_saved_model()
    {
        using var temp = new TempFolder();
        Assert.Equal(0, TrainBlobs(temp["run"]).ExitCode);
        var outcome = CliRunner.Run("eval", "--model", Path.Combine(temp["run"], RunFiles.ModelFileName),
                                    "--dataset", "blobs", "--samples", "800");
        Assert.Equal(0, outcome.ExitCode);
        Assert.Matches(@"accuracy \d+\.\d\d% \(\d+/160\)", outcome.Output);
    }

    [Fact]
    public void Linear_regression_trains_on_a_csv_file_and_eval_reads_it_whole()
    {
        using var temp = new TempFolder();
        string csv = temp["line.csv"];
        var random = new Random(3);
        var lines = new List<string> { "x1,x2,y" };
        for (int i = 0; i < 400; i++)
        {
            double x1 = random.NextDouble(), x2 = random.NextDouble();
            lines.Add(FormattableString.Invariant($"{x1},{x2},{3 * x1 - 2 * x2 + 1}"));
        }
        File.WriteAllLines(csv, lines);
        var train = CliRunner.Run("train", "--mode", "sequential", "--data", csv, "--header", "--label-column", "-1", "--task", "regression",
                                  "--epochs", "30", "--out", temp["run"]);
        Assert.Equal(0, train.ExitCode);
        Assert.Contains("linear 2-1", train.Output);
        var eval = CliRunner.Run("eval", "--model", Path.Combine(temp["run"], RunFiles.ModelFileName), "--data", csv,
                                 "--header", "--label-column", "-1", "--task", "regression");
        Assert.Equal(0, eval.ExitCode);
        Assert.Contains("(400 samples)", eval.Output);
        var mse = double.Parse(System.Text.RegularExpressions.Regex.Match(eval.Output, @"mean squared error (\S+)").Groups[1].Value,
                               System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(mse < 1e-3, $"mse {mse}");
    }

    [Fact]
    public void A_diverging_run_exits_1_with_advice_and_no_model_file()
    {
        using var temp = new TempFolder();
        var outcome = CliRunner.Run("train", "--mode", "sequential", "--dataset", "linear", "--samples", "200", "--lr", "1000", "--momentum", "0",
                                    "--epochs", "5", "--out", temp["run"]);
        Assert.Equal(1, outcome.ExitCode);
        Assert.Contains("smaller --lr", outcome.Error);
        Assert.False(File.Exists(Path.Combine(temp["run"], RunFiles.ModelFileName)));
    }

    [Theory]
    [InlineData("centralized")]
    [InlineData("decentralized")]
    public void A_diverging_distributed_run_exits_1_with_the_same_advice(string mode)
    {
        using var temp = new TempFolder();
        var outcome = CliRunner.Run("train", "--mode", mode, "--workers", "2", "--dataset", "linear", "--samples", "200",
                                    "--lr", "1000", "--momentum", "0", "--epochs", "5", "--out", temp["run"]);
        Assert.Equal(1, outcome.ExitCode);
        Assert.Contains("training diverged", outcome.Error);
        Assert.Contains("smaller --lr", outcome.Error);
        Assert.False(File.Exists(Path.Combine(temp["run"], RunFiles.ModelFileName)));
    }

    [Fact]
    public void Without_the_system_data_set_the_bundled_sample_is_used_and_said()
    {
        var data = DataSources.LoadFashionMnist("/nonexistent/fashion-mnist");
        Assert.Contains("bundled sample", data.Description);
        Assert.Equal(8000, data.Train.Count);
        Assert.Equal(2000, data.Test.Count);
        Assert.Equal(784, data.Train.FeatureCount);
        Assert.True(data.IsImages);
    }

    [Fact]
    public void The_sequential_mlp_learns_the_bundled_fashion_mnist_sample()
    {
        using var temp = new TempFolder();
        var data = DataSources.LoadFashionMnist("/nonexistent/fashion-mnist");
        Assert.Contains("bundled", data.Description);
        // An IDX directory with the 10k sample as both train and test: three epochs, far from converged,
        // but well above chance (10%).
        Directory.CreateDirectory(temp["idx"]);
        foreach (string split in new[] { "train", "t10k" })
        {
            File.Copy(Path.Combine(DataSources.BundledFashionMnist, "t10k-images-idx3-ubyte.gz"), Path.Combine(temp["idx"], $"{split}-images-idx3-ubyte.gz"));
            File.Copy(Path.Combine(DataSources.BundledFashionMnist, "t10k-labels-idx1-ubyte.gz"), Path.Combine(temp["idx"], $"{split}-labels-idx1-ubyte.gz"));
        }
        var outcome = CliRunner.Run("train", "--mode", "sequential", "--data", temp["idx"], "--epochs", "3", "--out", temp["run"]);
        Assert.Equal(0, outcome.ExitCode);
        var final = File.ReadAllLines(Path.Combine(temp["run"], RunFiles.MetricsFileName))[^1].Split(',');
        double accuracy = double.Parse(final[4], System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(accuracy > 0.75, $"test accuracy {accuracy}");
    }

    [Fact]
    public void The_default_mode_trains_on_a_simulated_cluster_and_is_deterministic_too()
    {
        using var temp = new TempFolder();
        string[] Flags(string dir) => ["train", "--dataset", "blobs", "--samples", "600", "--epochs", "2", "--hidden", "16", "--out", dir];
        var first = CliRunner.Run(Flags(temp["a"]));
        Assert.Equal(0, first.ExitCode);
        Assert.Contains("run: centralized, 2 workers × batch 64 = global batch 128", first.Output);
        Assert.Contains("cluster: run ", first.Output);
        var metrics = File.ReadAllLines(Path.Combine(temp["a"], RunFiles.MetricsFileName));
        Assert.Equal(3, metrics.Length);
        var row = metrics[2].Split(',');
        Assert.True(long.Parse(row[12]) > 0, "bytes sent");
        Assert.True(long.Parse(row[13]) > 0, "bytes received");
        // The lag report: each worker's compute per step, in metrics.csv and summary.json.
        Assert.Equal(["0", "1"], row[16].Split(' ').Select(cell => cell.Split(':')[0]));
        using (var summary = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(temp["a"], RunFiles.SummaryFileName))))
        {
            var lag = summary.RootElement.GetProperty("node_lag").EnumerateArray().ToList();
            Assert.Equal([0, 1], lag.Select(n => n.GetProperty("node").GetInt32()));
            Assert.All(lag, n => Assert.True(n.GetProperty("compute_seconds_per_step").GetDouble() > 0));
        }

        Assert.Equal(0, CliRunner.Run(Flags(temp["b"])).ExitCode);
        Assert.Equal(File.ReadAllBytes(Path.Combine(temp["a"], RunFiles.ModelFileName)),
                     File.ReadAllBytes(Path.Combine(temp["b"], RunFiles.ModelFileName)));
    }

    [Fact]
    public void A_slowed_worker_changes_the_time_not_the_model()
    {
        using var temp = new TempFolder();
        string slow = temp["slow.conf"];
        File.WriteAllText(slow, "distsgd.debug { slowdown = 3, slow-node = 1 }");
        string[] Flags(string dir) => ["train", "--dataset", "blobs", "--samples", "600", "--epochs", "2", "--hidden", "16", "--out", dir];
        Assert.Equal(0, CliRunner.Run(Flags(temp["plain"])).ExitCode);
        var slowed = CliRunner.Run([.. Flags(temp["slowed"]), "--config", slow]);
        Assert.True(slowed.ExitCode == 0, slowed.Error);
        // The emulation sleeps after the compute: the same gradients, the same model, byte for byte.
        Assert.Equal(File.ReadAllBytes(Path.Combine(temp["plain"], RunFiles.ModelFileName)),
                     File.ReadAllBytes(Path.Combine(temp["slowed"], RunFiles.ModelFileName)));
    }

    [Fact]
    public void The_decentralized_mode_trains_peers_with_identical_replicas_and_the_centralized_model()
    {
        using var temp = new TempFolder();
        string[] Flags(string mode, string dir) => ["train", "--mode", mode, "--workers", "3", "--dataset", "blobs", "--samples", "600",
                                                    "--epochs", "2", "--hidden", "16", "--out", dir];
        var peers = CliRunner.Run(Flags("decentralized", temp["peers"]));
        Assert.True(peers.ExitCode == 0, peers.Error);
        Assert.Contains("run: decentralized, 3 peers × batch 64 = global batch 192", peers.Output);
        Assert.Contains("cluster: starting 3 nodes on 127.0.0.1 (3 peers)", peers.Output);
        Assert.Contains("cluster: all 3 replicas bit-identical", peers.Output);
        var metrics = File.ReadAllLines(Path.Combine(temp["peers"], RunFiles.MetricsFileName));
        Assert.Equal(3, metrics.Length);
        var row = metrics[2].Split(',');
        Assert.True(long.Parse(row[12]) > 0, "bytes sent");
        Assert.True(long.Parse(row[13]) > 0, "bytes received");
        Assert.Equal(["0", "1", "2"], row[16].Split(' ').Select(cell => cell.Split(':')[0]));   // the lag report, from the lead peer
        using (var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(temp["peers"], RunFiles.SummaryFileName))))
            Assert.Equal("decentralized", summary.RootElement.GetProperty("mode").GetString());

        // Same seed, nodes and batch: the same shards, gradients, sums and updates as the master's, bit for bit.
        Assert.Equal(0, CliRunner.Run(Flags("centralized", temp["master"])).ExitCode);
        Assert.Equal(File.ReadAllBytes(Path.Combine(temp["master"], RunFiles.ModelFileName)),
                     File.ReadAllBytes(Path.Combine(temp["peers"], RunFiles.ModelFileName)));
    }

    [Fact]
    public void Bf16_gradients_halve_the_bytes_of_a_decentralized_step_and_keep_the_replicas_identical()
    {
        using var temp = new TempFolder();
        string[] Flags(string wire, string dir) => ["train", "--mode", "decentralized", "--workers", "3", "--dataset", "blobs", "--samples", "600",
                                                    "--epochs", "2", "--hidden", "16", "--wire", wire, "--collective", "allgather", "--out", dir];
        var bf16 = CliRunner.Run(Flags("bf16", temp["bf16"]));
        Assert.True(bf16.ExitCode == 0, bf16.Error);
        Assert.Contains("gradients as bf16", bf16.Output);
        Assert.Contains("cluster: all 3 replicas bit-identical", bf16.Output);
        Assert.Equal(0, CliRunner.Run(Flags("fp32", temp["fp32"])).ExitCode);

        double Ratio(string run)
        {
            var lines = File.ReadAllLines(Path.Combine(temp[run], RunFiles.MetricsFileName));
            var header = lines[0].Split(',');
            var rows = lines.Skip(1).Select(line => line.Split(',')).ToList();
            long Column(string[] row, string name) => long.Parse(row[Array.IndexOf(header, name)], System.Globalization.CultureInfo.InvariantCulture);
            using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(temp[run], RunFiles.SummaryFileName)));
            var wire = summary.RootElement.GetProperty("wire");
            Assert.Equal(run, wire.GetProperty("format").GetString());
            // The whole run's bytes per step over the float32 reference. An epoch's row alone may differ: a share of the
            // next epoch's first step can arrive (and be counted) before the lead closes the epoch (CI saw 0.917 in fp32).
            double bytes = rows.Sum(row => Column(row, "bytes_sent") + Column(row, "bytes_received"));
            Assert.Equal(bytes / Column(rows[^1], "step") / wire.GetProperty("fp32_bytes_per_step").GetDouble(),
                         wire.GetProperty("compression_ratio").GetDouble(), 6);
            return wire.GetProperty("compression_ratio").GetDouble();
        }
        // 3 peers of 404 parameters: frames of 64 + 2·404 bytes instead of 64 + 4·404.
        Assert.Equal(1.0, Ratio("fp32"), 6);
        Assert.Equal((64 + 2.0 * 404) / (64 + 4.0 * 404), Ratio("bf16"), 6);
    }

    [Fact]
    public void A_centralized_bf16_run_sends_updates_of_theta_the_workers_all_take()
    {
        using var temp = new TempFolder();
        var run = CliRunner.Run(["train", "--mode", "centralized", "--workers", "2", "--dataset", "blobs", "--samples", "600", "--epochs", "2",
                                 "--hidden", "16", "--wire", "bf16", "--out", temp["run"]]);
        Assert.True(run.ExitCode == 0, run.Error);
        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(temp["run"], RunFiles.SummaryFileName)));
        // θ whole only at the first step, then updates: close to the gradients' (64 + 2·404) / (64 + 4·404).
        Assert.InRange(summary.RootElement.GetProperty("wire").GetProperty("compression_ratio").GetDouble(), 0.5, 0.56);
        string log = File.ReadAllText(Path.Combine(temp["run"], "distsgd.log"));
        Assert.DoesNotContain("does not hold the master's θ", log);
    }

    [Theory]
    [InlineData("decentralized")]
    [InlineData("centralized")]
    public void Sync_every_1_and_fp32_flags_give_the_default_model_byte_for_byte(string mode)
    {
        using var temp = new TempFolder();
        string[] Flags(string dir) => ["train", "--mode", mode, "--workers", "2", "--dataset", "blobs", "--samples", "600", "--epochs", "2",
                                       "--hidden", "16", "--out", dir];
        Assert.Equal(0, CliRunner.Run(Flags(temp["default"])).ExitCode);
        var explicit1 = CliRunner.Run([.. Flags(temp["h1"]), "--sync-every", "1", "--wire", "fp32", "--compress", "none"]);
        Assert.True(explicit1.ExitCode == 0, explicit1.Error);
        Assert.Equal(File.ReadAllBytes(Path.Combine(temp["default"], RunFiles.ModelFileName)),
                     File.ReadAllBytes(Path.Combine(temp["h1"], RunFiles.ModelFileName)));
    }

    [Theory]
    [InlineData("sequential", "--wire", "bf16", "--wire, --compress and --sync-every: a sequential run sends nothing")]
    [InlineData("sequential", "--sync-every", "2", "--wire, --compress and --sync-every: a sequential run sends nothing")]
    public void Flags_a_mode_cannot_use_are_refused_naming_the_flag(string mode, string flag, string value, string expected)
    {
        using var temp = new TempFolder();
        var outcome = CliRunner.Run(["train", "--mode", mode, "--dataset", "blobs", "--samples", "100", flag, value, "--out", temp["run"]]);
        Assert.Equal(2, outcome.ExitCode);
        Assert.Contains(expected, outcome.Error);
    }

    [Theory]
    [InlineData("--backup-workers", "1")]
    [InlineData("--balance", "speed")]
    public void Centralized_local_sgd_refuses_backup_workers_and_balance(string flag, string value)
    {
        using var temp = new TempFolder();
        var outcome = CliRunner.Run(["train", "--mode", "centralized", "--workers", "3", "--dataset", "blobs", "--samples", "100", "--sync-every", "4",
                                     flag, value, "--out", temp["run"]]);
        Assert.Equal(2, outcome.ExitCode);
        Assert.Contains("--sync-every (distsgd.sync-every) with --backup-workers or --balance speed", outcome.Error);
    }

    [Fact]
    public void Centralized_local_sgd_sends_a_quarter_of_the_bytes_and_learns()
    {
        using var temp = new TempFolder();
        string[] Flags(string dir) => ["train", "--mode", "centralized", "--workers", "3", "--dataset", "blobs", "--samples", "600", "--epochs", "3",
                                       "--hidden", "16", "--batch-size", "20", "--out", dir];
        var (local, h4, h1) = LocalSgdAndEveryStep(temp, Flags);
        using var disposeH4 = h4;
        using var disposeH1 = h1;
        Assert.Contains("models averaged every 4 steps (local SGD)", local.Output);
        // 480 training samples, 160 per shard, batch 20: 8 steps an epoch, two rounds of 4: a quarter of the frames.
        Assert.Equal(h1.RootElement.GetProperty("totals").GetProperty("steps").GetInt64(), h4.RootElement.GetProperty("totals").GetProperty("steps").GetInt64());
        Assert.InRange(h4.RootElement.GetProperty("wire").GetProperty("compression_ratio").GetDouble(), 0.24, 0.26);
        // 24 steps in all: local SGD learns (chance is 25 %), at most a little behind gradient averaging.
        double accuracy = h4.RootElement.GetProperty("final_test_accuracy").GetDouble();
        Assert.True(accuracy > 0.5 && accuracy >= h1.RootElement.GetProperty("final_test_accuracy").GetDouble() - 0.15, local.Output);
        Assert.NotEqual(File.ReadAllBytes(Path.Combine(temp["h1"], RunFiles.ModelFileName)), File.ReadAllBytes(Path.Combine(temp["h4"], RunFiles.ModelFileName)));
        Assert.DoesNotContain("does not hold the master's θ", File.ReadAllText(Path.Combine(temp["h4"], "distsgd.log")));
    }

    [Fact]
    public void The_direct_transport_trains_both_modes_to_the_same_model_as_akka()
    {
        using var temp = new TempFolder();
        string[] Flags(string mode, string transport, string dir) => ["train", "--mode", mode, "--transport", transport, "--dataset", "blobs",
                                                                      "--samples", "600", "--epochs", "2", "--hidden", "16", "--out", dir];
        var master = CliRunner.Run(Flags("centralized", "direct", temp["master"]));
        Assert.True(master.ExitCode == 0, master.Error);
        Assert.Contains("payloads over direct TCP", master.Output);
        var peers = CliRunner.Run(Flags("decentralized", "direct", temp["peers"]));
        Assert.True(peers.ExitCode == 0, peers.Error);
        Assert.Contains("payloads over direct TCP", peers.Output);
        Assert.Contains("cluster: all 2 replicas bit-identical", peers.Output);
        foreach (string run in new[] { "master", "peers" })
        {
            var row = File.ReadAllLines(Path.Combine(temp[run], RunFiles.MetricsFileName))[^1].Split(',');
            Assert.True(long.Parse(row[12]) > 0 && long.Parse(row[13]) > 0, $"{run}: bytes sent and received");
            using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(temp[run], RunFiles.SummaryFileName)));
            Assert.Equal("direct", summary.RootElement.GetProperty("transport").GetString());
        }

        Assert.Equal(0, CliRunner.Run(Flags("centralized", "akka", temp["akka"])).ExitCode);
        var reference = File.ReadAllBytes(Path.Combine(temp["akka"], RunFiles.ModelFileName));
        Assert.Equal(reference, File.ReadAllBytes(Path.Combine(temp["master"], RunFiles.ModelFileName)));
        Assert.Equal(reference, File.ReadAllBytes(Path.Combine(temp["peers"], RunFiles.ModelFileName)));
    }

    [Fact]
    public void Auto_runs_and_prints_the_cost_model_s_collective_for_the_peers_the_model_s_size_and_the_link()
    {
        using var temp = new TempFolder();
        string[] Flags(string workers, string hidden, string dir) => ["train", "--mode", "decentralized", "--transport", "direct", "--workers", workers,
                                                                      "--dataset", "blobs", "--samples", "600", "--epochs", "1", "--hidden", hidden,
                                                                      "--link-rate", "1gbit", "--out", dir];
        // 568,580 parameters (2.3 MB a gradient): bandwidth decides, and the all-reduces send 2/3 of a gradient where the
        // all-gather sends 2; the ring, cut into segments on this slow link, waits no more rounds than pairwise and sums less.
        var big = CliRunner.Run(Flags("3", "2048,256", temp["big"]));
        Assert.True(big.ExitCode == 0, big.Error);
        Assert.Contains("collective: ring (auto: the cost model's fastest for 3 peers, 2,274,320 bytes per gradient, link 1gbit", big.Output);
        // 404 parameters: a message's latency decides, and the all-gather takes one round where the all-reduces take two.
        var tiny = CliRunner.Run(Flags("3", "16", temp["tiny"]));
        Assert.True(tiny.ExitCode == 0, tiny.Error);
        Assert.Contains("collective: allgather (auto: the cost model's fastest for 3 peers, 1,616 bytes per gradient, link 1gbit", tiny.Output);
        foreach (var (run, expected) in new[] { ("big", "ring"), ("tiny", "allgather") })
        {
            using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(temp[run], RunFiles.SummaryFileName)));
            Assert.Equal(expected, summary.RootElement.GetProperty("collective").GetString());
        }
    }

    /// <summary>The run of <paramref name="flags"/> with --sync-every 4 (folder h4) and averaging every step (h1): the first's outcome and both summaries.</summary>
    private static (CliRunner.Outcome Local, JsonDocument H4, JsonDocument H1) LocalSgdAndEveryStep(TempFolder temp, Func<string, string[]> flags)
    {
        var local = CliRunner.Run([.. flags(temp["h4"]), "--sync-every", "4"]);
        Assert.True(local.ExitCode == 0, local.Error);
        var every = CliRunner.Run(flags(temp["h1"]));
        Assert.True(every.ExitCode == 0, every.Error);
        return (local, JsonDocument.Parse(File.ReadAllText(Path.Combine(temp["h4"], RunFiles.SummaryFileName))),
                JsonDocument.Parse(File.ReadAllText(Path.Combine(temp["h1"], RunFiles.SummaryFileName))));
    }

    [Fact]
    public void Local_sgd_takes_auto_s_all_reduce_and_counts_every_peer_s_samples_per_second()
    {
        using var temp = new TempFolder();
        string[] Flags(string dir) => ["train", "--mode", "decentralized", "--transport", "direct", "--workers", "3", "--dataset", "blobs",
                                       "--samples", "600", "--epochs", "2", "--hidden", "2048,256", "--batch-size", "10", "--link-rate", "1gbit",
                                       "--out", dir];
        // Decision 0136: local SGD's averaging step moves a dense Δ of a gradient's size, priced and chosen as a gradient step.
        var (local, h4, h1) = LocalSgdAndEveryStep(temp, Flags);
        using var disposeH4 = h4;
        using var disposeH1 = h1;
        // At 1 Gbit/s that is the ring, cut into segments (decision 0140).
        Assert.Contains("collective: ring (auto: the cost model's fastest for 3 peers, 2,274,320 bytes per gradient, link 1gbit", local.Output);
        Assert.Equal("ring", h4.RootElement.GetProperty("collective").GetString());
        // Decision 0137: metrics.csv's samples per second (× seconds: summary.json's samples) counts every peer's samples at
        // the local steps too, as at the averaging steps: each epoch is the whole training set, as with gradient averaging
        // (it counted the lead's own samples alone at a local step).
        long samples = h4.RootElement.GetProperty("totals").GetProperty("samples").GetInt64();
        Assert.Equal(h1.RootElement.GetProperty("totals").GetProperty("samples").GetInt64(), samples);
        Assert.Equal(2 * 480, samples);   // 600 blobs, 480 of them for training
    }

    [Fact]
    public void Peers_balance_their_batches_by_speed_with_the_same_plan_on_every_replica()
    {
        using var temp = new TempFolder();
        File.WriteAllText(temp["slow.conf"], "distsgd.debug.slowdown = 3\ndistsgd.debug.slow-node = 1\n");
        var run = CliRunner.Run(["train", "--mode", "decentralized", "--workers", "3", "--transport", "direct", "--collective", "pairwise",
                                 "--dataset", "blobs", "--samples", "3000", "--epochs", "3", "--hidden", "16", "--balance", "speed",
                                 "--config", temp["slow.conf"], "--out", temp["run"]]);
        Assert.True(run.ExitCode == 0, run.Error + run.Output);
        // From epoch 2 the batches follow the measured speeds (one peer slowed; which node id it has depends on the order the
        // simulated cluster starts them, and on a loaded machine the others' speeds differ too); the global batch (3 × 64) is kept.
        var plan = Regex.Match(run.Output, @"epoch 2: batches by measured speed \(--balance speed\), peer:batch 0:(\d+) 1:(\d+) 2:(\d+)");
        Assert.True(plan.Success, run.Output);
        int[] batches = [.. Enumerable.Range(1, 3).Select(i => int.Parse(plan.Groups[i].Value, CultureInfo.InvariantCulture))];
        Assert.Equal(3 * 64, batches.Sum());
        Assert.True(batches.Distinct().Count() > 1, run.Output);   // balanced: not the run's 64 each
        Assert.Contains("cluster: all 3 replicas bit-identical", run.Output);
        using var summary = JsonDocument.Parse(File.ReadAllText(Path.Combine(temp["run"], RunFiles.SummaryFileName)));
        Assert.Equal("speed", summary.RootElement.GetProperty("balance").GetString());
    }

    [Fact]
    public void An_unknown_transport_exits_2_naming_the_flag()
    {
        using var temp = new TempFolder();
        var outcome = CliRunner.Run("train", "--transport", "carrier-pigeon", "--dataset", "blobs", "--samples", "100", "--out", temp["run"]);
        Assert.Equal(2, outcome.ExitCode);
        Assert.Contains("--transport", outcome.Error);
    }

    [Fact]
    public void A_bad_config_file_exits_2_naming_it()
    {
        using var temp = new TempFolder();
        File.WriteAllText(temp["bad.conf"], "distsgd.step-timeout = -5s");
        var outcome = CliRunner.Run("train", "--dataset", "blobs", "--samples", "100", "--config", temp["bad.conf"], "--out", temp["run"]);
        Assert.Equal(2, outcome.ExitCode);
        Assert.Contains("distsgd.step-timeout", outcome.Error);
    }
}
