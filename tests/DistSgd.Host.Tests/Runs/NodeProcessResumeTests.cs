using System.Diagnostics;
using DistSgd.Host.Runs;
using DistSgd.Numerics.Training;

namespace DistSgd.Host.Tests.Runs;

/// <summary>The whole cluster of node processes killed mid-run and started again with --resume.</summary>
[Collection(NodeProcessCollection.Name)]
public class NodeProcessResumeTests
{
    /// <summary>3200 training samples, 2 workers × batch 64: 25 steps per epoch, 200 in all.</summary>
    private static readonly string[] Run =
        ["--dataset", "blobs", "--samples", "4000", "--epochs", "8", "--hidden", "16", "--workers", "2", "--checkpoint-every-steps", "5", "--quiet"];

    private static string[] Node(int port, string seed, string roles, params string[] extra) =>
        ["node", "--host", "127.0.0.1", "--port", $"{port}", "--seed-nodes", seed, "--roles", roles, .. Run, .. extra];

    [Fact]
    public void A_cluster_killed_mid_run_and_started_again_with_resume_writes_the_same_model_as_one_never_stopped()
    {
        using var temp = new TempFolder();
        var store = new CheckpointStore(Path.Combine(temp["run"], CheckpointStore.FolderName));
        bool finishedBeforeTheKill;
        using (var first = new NodeGroup())
        {
            var ports = NodeProcess.FreePorts(3);
            string seed = $"127.0.0.1:{ports[0]}";
            // The killed run's steps stretched 10× (distsgd.debug.slowdown, a sleep; the bits are the same), so that the kill
            // lands mid-run however lean the step: unstretched, its 256 tiny steps take a fraction of a second.
            string slow = temp["slow.conf"];
            File.WriteAllText(slow, "distsgd.debug.slowdown = 10\n");
            var master = first.Start(Node(ports[0], seed, "master", "--config", slow, "--out", temp["run"]));
            foreach (int port in ports.Skip(1))
                first.Start(Node(port, seed, "worker", "--config", slow));
            var clock = Stopwatch.StartNew();
            while (!master.HasExited && store.List().FirstOrDefault().Step < 40 && clock.Elapsed < NodeProcessTests.Bound)
                Thread.Sleep(10);
            finishedBeforeTheKill = master.HasExited;
            Assert.True(store.List().Count > 0, $"no checkpoint within {NodeProcessTests.Bound.TotalSeconds:0}s; the master's output:\n{master.Output}");
        }   // kill -9 of every node process
        long killedAfter = store.List().First().Step;
        // The kill must land mid-run, or --resume below would continue nothing.
        Assert.False(finishedBeforeTheKill, $"the run finished before the kill (newest checkpoint: step {killedAfter})");
        Assert.False(File.Exists(Path.Combine(temp["run"], RunFiles.ModelFileName)), "the killed run wrote its model");
        Assert.InRange(killedAfter, 5, 199);

        // The same commands again, on new ports, with --resume: the master continues from the newest checkpoint.
        using var second = new NodeGroup();
        var again = NodeProcess.FreePorts(3);
        string seedAgain = $"127.0.0.1:{again[0]}";
        var resumed = second.Start(Node(again[0], seedAgain, "master", "--resume", temp["run"]));
        var workers = again.Skip(1).Select(p => second.Start(Node(p, seedAgain, "worker", "--resume", temp["run"]))).ToList();
        Assert.True(resumed.WaitForExit(NodeProcessTests.Bound) == 0, resumed.Output);
        foreach (var worker in workers)
            Assert.True(worker.WaitForExit(NodeProcessTests.Bound) == 0, worker.Output);

        var simulated = CliRunner.Run(["train", .. Run, "--out", temp["simulated"]]);
        Assert.True(simulated.ExitCode == 0, simulated.Error);
        Assert.True(File.ReadAllBytes(Path.Combine(temp["simulated"], RunFiles.ModelFileName))
                        .SequenceEqual(File.ReadAllBytes(Path.Combine(temp["run"], RunFiles.ModelFileName))),
                    $"the resumed model differs (killed after the checkpoint of step {killedAfter})");
        Assert.Equal(9, File.ReadAllLines(Path.Combine(temp["run"], RunFiles.MetricsFileName)).Length);
    }
}
