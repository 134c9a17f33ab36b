using System.Diagnostics;
using DistSgd.Host.Cli;
using DistSgd.Host.Runs;
using DistSgd.Numerics.Training;

namespace DistSgd.Host.Tests.Runs;

/// <summary>`--resume` end to end: a stopped run continued from its newest valid checkpoint gives the very same model file.</summary>
public class CheckpointRunTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(90);

    /// <summary>1600 training samples: 25 steps per epoch sequential (batch 64), 13 with 2 workers or peers.</summary>
    private static readonly string[] Blobs = ["--dataset", "blobs", "--samples", "2000", "--epochs", "5", "--hidden", "16"];

    private static byte[] Model(string folder) => File.ReadAllBytes(Path.Combine(folder, RunFiles.ModelFileName));

    private static string Checkpoints(string folder) => Path.Combine(folder, CheckpointStore.FolderName);

    [Fact]
    public void A_sequential_run_resumes_mid_epoch_past_a_damaged_checkpoint_to_the_same_model()
    {
        using var temp = new TempFolder();
        File.WriteAllText(temp["keep.conf"], "distsgd.checkpoint.keep = 100\n");
        string[] run = ["train", "--mode", "sequential", .. Blobs, "--checkpoint-every-steps", "10", "--config", temp["keep.conf"]];
        var whole = CliRunner.Run([.. run, "--out", temp["whole"]]);
        Assert.True(whole.ExitCode == 0, whole.Error);
        Assert.Contains("checkpoint: step 60 written", whole.Output);

        // What a crash just after step 70 leaves when it cut the newest checkpoint short: the one at 60
        // (epoch 3, 10 steps into it) and a damaged one at 70.
        var atSixty = CheckpointFile.Read(new CheckpointStore(Checkpoints(temp["whole"])).PathOf(60));
        Assert.Equal((3, 10), (atSixty.Epoch, atSixty.StepInEpoch));
        var kept = new CheckpointStore(Checkpoints(temp["stopped"]));
        kept.Write(atSixty);
        var damaged = File.ReadAllBytes(new CheckpointStore(Checkpoints(temp["whole"])).PathOf(70));
        File.WriteAllBytes(kept.PathOf(70), damaged[..(damaged.Length - 40)]);

        var resumed = CliRunner.Run([.. run, "--resume", temp["stopped"]]);
        Assert.True(resumed.ExitCode == 0, resumed.Error);
        Assert.Contains("checkpoint: skipped step-000000000070.ckpt: the checksum does not match", resumed.Output);
        Assert.Contains("resuming from", resumed.Output);
        Assert.Contains("step 60 (epoch 3, 10 steps into it)", resumed.Output);
        Assert.Equal(Model(temp["whole"]), Model(temp["stopped"]));
        // metrics.csv of the resumed folder has every epoch, the ones before the checkpoint included.
        Assert.Equal(File.ReadAllLines(Path.Combine(temp["whole"], RunFiles.MetricsFileName)).Select(l => string.Join(',', l.Split(',')[..5])),
                     File.ReadAllLines(Path.Combine(temp["stopped"], RunFiles.MetricsFileName)).Select(l => string.Join(',', l.Split(',')[..5])));
    }

    [Fact]
    public void Resuming_with_other_flags_is_refused_naming_each_difference_and_a_folder_without_a_valid_checkpoint_exits_2()
    {
        using var temp = new TempFolder();
        string[] run = ["train", "--mode", "sequential", "--dataset", "blobs", "--samples", "2000", "--epochs", "1", "--hidden", "16", "--checkpoint-every-steps", "10"];
        Assert.Equal(0, CliRunner.Run([.. run, "--out", temp["run"]]).ExitCode);

        var other = CliRunner.Run([.. run, "--lr", "0.1", "--seed", "2", "--resume", temp["run"]]);
        Assert.Equal(ExitCodes.BadInput, other.ExitCode);
        Assert.Contains("belongs to a different run", other.Error);
        Assert.Contains("seed: 1 in the checkpoint vs 2 now", other.Error);
        Assert.Contains("lr: 0.05 in the checkpoint vs 0.1 now", other.Error);

        Directory.CreateDirectory(temp["empty"]);
        File.WriteAllText(Path.Combine(temp["empty"], "step-000000000003.ckpt"), "nothing");
        var none = CliRunner.Run([.. run, "--resume", temp["empty"], "--out", temp["unused"]]);
        Assert.Equal(ExitCodes.BadInput, none.ExitCode);
        Assert.Contains($"no valid checkpoint in {temp["empty"]}", none.Error);
        Assert.Contains("not a DistSgd checkpoint", none.Error);

        var missing = CliRunner.Run([.. run, "--resume", temp["missing"]]);
        Assert.Equal(ExitCodes.BadInput, missing.ExitCode);
        Assert.Contains("no such directory", missing.Error);

        File.WriteAllText(temp["bad.conf"], "distsgd.checkpoint.keep = 0\n");
        var badKey = CliRunner.Run([.. run, "--config", temp["bad.conf"], "--out", temp["unused"]]);
        Assert.Equal(ExitCodes.BadInput, badKey.ExitCode);
        Assert.Contains("distsgd.checkpoint.keep: expected a number of checkpoints from 1 to 1000000, found '0'", badKey.Error);
    }

    [Theory]
    [InlineData("centralized")]
    [InlineData("decentralized")]
    public async Task A_simulated_cluster_stopped_mid_run_and_resumed_writes_the_same_model_as_one_never_stopped(string mode)
    {
        using var temp = new TempFolder();
        string[] run = ["train", "--mode", mode, "--workers", "2", .. Blobs, "--checkpoint-every-steps", "4"];
        var whole = CliRunner.Run([.. run, "--out", temp["whole"]]);
        Assert.True(whole.ExitCode == 0, whole.Error);
        await StopMidRun(run, temp["stopped"]);

        var resumed = CliRunner.Run([.. run, "--resume", temp["stopped"]]);
        Assert.True(resumed.ExitCode == 0, resumed.Error + resumed.Output);
        Assert.Contains("resuming from", resumed.Output);
        Assert.DoesNotContain("residuals", resumed.Output);
        Assert.Equal(Model(temp["whole"]), Model(temp["stopped"]));
    }

    [Theory]
    [InlineData("centralized")]
    [InlineData("decentralized")]
    public async Task A_resumed_top_k_run_says_its_residuals_start_empty_and_is_deterministic(string mode)
    {
        // Decision 0089: checkpoints hold no error-feedback residual (each lives on its worker or peer), so the resumed run
        // is not the uninterrupted one; it is still one run, the same from the same checkpoint, its replicas identical.
        using var temp = new TempFolder();
        string[] run = ["train", "--mode", mode, "--workers", "2", .. Blobs, "--checkpoint-every-steps", "4", "--compress", "topk:0.05"];
        var whole = CliRunner.Run([.. run, "--out", temp["whole"]]);
        Assert.True(whole.ExitCode == 0, whole.Error);
        await StopMidRun(run, temp["stopped"]);
        CopyFolder(Checkpoints(temp["stopped"]), Checkpoints(temp["again"]));

        var resumed = CliRunner.Run([.. run, "--resume", temp["stopped"]]);
        var again = CliRunner.Run([.. run, "--resume", temp["again"]]);
        Assert.True(resumed.ExitCode == 0 && again.ExitCode == 0, resumed.Error + resumed.Output + again.Error);
        Assert.Contains("top-k residuals are not in checkpoints", resumed.Output);
        Assert.DoesNotContain("MISMATCH", resumed.Output + again.Output);
        Assert.Equal(Model(temp["stopped"]), Model(temp["again"]));
        Assert.NotEqual(Model(temp["whole"]), Model(temp["stopped"]));
    }

    [Fact]
    public async Task A_balanced_decentralized_run_resumed_mid_epoch_takes_the_checkpoint_s_batch_plan_and_its_replicas_stay_identical()
    {
        // Issue 20 for peers (decision 0123): the plan comes from the shares' compute times, the same on every peer, and a
        // checkpoint keeps it, so a resumed run cuts its epoch as the stopped one did (the later plans follow new timings).
        using var temp = new TempFolder();
        File.WriteAllText(temp["slow.conf"], "distsgd.debug.slowdown = 3\ndistsgd.debug.slow-node = 1\n");
        string[] run = ["train", "--mode", "decentralized", "--workers", "2", .. Blobs, "--checkpoint-every-steps", "4", "--balance", "speed",
                        "--config", temp["slow.conf"]];
        await StopMidRun(run, temp["stopped"]);
        var (step, path) = new CheckpointStore(Checkpoints(temp["stopped"])).List().First();
        var balance = CheckpointFile.Read(path).Balance;
        Assert.NotNull(balance);
        // One peer is slowed (which node id it has depends on the order the simulated cluster starts them): balanced.
        Assert.True(balance.Plan.Count == 2 && balance.Plan[0].BatchSize != balance.Plan[1].BatchSize && balance.Plan.Sum(b => b.BatchSize) == 2 * 64,
                    $"step {step}: the slowed peer should have the smaller batch of 128: {string.Join(' ', balance.Plan)}");

        var resumed = CliRunner.Run([.. run, "--resume", temp["stopped"]]);
        Assert.True(resumed.ExitCode == 0, resumed.Error + resumed.Output);
        Assert.Contains($"peer:batch {string.Join(' ', balance.Plan.Select(b => $"{b.Worker}:{b.BatchSize}"))} (13 steps; the checkpoint's plan)", resumed.Output);
        Assert.Contains("all 2 replicas bit-identical", resumed.Output);
        Assert.DoesNotContain("MISMATCH", resumed.Output);
    }

    private static void CopyFolder(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (string file in Directory.GetFiles(from))
            File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
    }

    /// <summary>Starts <paramref name="run"/> into <paramref name="folder"/> and stops the whole cluster (Ctrl+C) once it has written a checkpoint past step 20 of 65.</summary>
    private static async Task StopMidRun(string[] run, string folder)
    {
        using var stop = new CancellationTokenSource();
        var output = new StringWriter();
        var first = Task.Run(() => DistSgdCommandLine.Run([.. run, "--out", folder], output, output, stop.Token));
        var store = new CheckpointStore(Checkpoints(folder));
        var clock = Stopwatch.StartNew();
        while (!first.IsCompleted && store.List().FirstOrDefault().Step < 20 && clock.Elapsed < Bound)
            await Task.Delay(20);
        bool finishedBeforeTheStop = first.IsCompleted;
        stop.Cancel();
        try
        {
            await first.WaitAsync(Bound);
        }
        catch (OperationCanceledException)
        {
            // The cluster run ends with the cancellation: the expected way for this one.
        }
        long stoppedAt = store.List().First().Step;
        // The stop must land mid-run, or --resume would continue nothing.
        Assert.False(finishedBeforeTheStop, $"the run finished before the stop (newest checkpoint: step {stoppedAt})\n{output}");
        Assert.False(File.Exists(Path.Combine(folder, RunFiles.ModelFileName)), $"the stopped run wrote its model\n{output}");
        Assert.InRange(stoppedAt, 4, 64);   // never at the very end: the last checkpoint always precedes the last step
    }
}
