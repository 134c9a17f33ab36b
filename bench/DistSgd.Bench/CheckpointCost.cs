using System.Diagnostics;
using System.Globalization;
using DistSgd.Numerics.Models;
using DistSgd.Numerics.Optim;
using DistSgd.Numerics.Training;

namespace DistSgd.Bench;

/// <summary>
/// `-- checkpoint [--iterations N] [--dir PATH]`: what one checkpoint of the default 784-256-128-10 MLP (θ and the
/// momentum velocity, 1.88 MB) costs, phase by phase, against one training step (batch 64, 1 thread) measured in the
/// same run: capture (copy θ and the velocity), serialize + SHA-256, the whole write (serialize, temporary file,
/// fsync, rename, prune: what a run pays at a step boundary), and read + verify (what --resume pays).
/// </summary>
public static class CheckpointCost
{
    public static int Run(string[] args)
    {
        int iterations = QuickBenchOptions.Int(args, "--iterations", 30);
        int d = Array.IndexOf(args, "--dir");
        string directory = d >= 0 && d + 1 < args.Length ? args[d + 1] : Path.Combine(Path.GetTempPath(), $"distsgd-checkpoint-bench-{Environment.ProcessId}");
        var spec = new ModelSpec(ModelKind.Mlp, 784, 10, [256, 128]);
        using var step = new TrainingStep(spec, 64, 1);
        var optimizer = new SgdOptimizer(new SgdOptions(0.05, momentum: 0.9), spec.ParameterCount);
        var parameters = new float[spec.ParameterCount];
        var random = new Random(1);
        for (int i = 0; i < parameters.Length; i++)
            parameters[i] = (float)random.NextDouble();
        optimizer.Step(parameters, parameters);   // a non-zero velocity
        var stopping = new EarlyStopping(3, 1e-4);
        var epochs = Enumerable.Range(1, 10).Select(e => new EpochMetrics(e, e * 938, 0.3, 0.35, 0.88, 1, 60000, 0.01)).ToList();
        var store = new CheckpointStore(directory, keep: 3);

        var steps = new double[iterations];
        var capture = new double[iterations];
        var serialize = new double[iterations];
        var write = new double[iterations];
        var read = new double[iterations];
        for (int warm = 0; warm < 20; warm++)
            step.Run();
        try
        {
            for (int i = 0; i < iterations; i++)
            {
                steps[i] = Time(step.Run);
                Checkpoint? checkpoint = null;
                capture[i] = Time(() => checkpoint = Checkpoint.Capture("mode=bench", 1000 + i, 2, 62, parameters, optimizer, stopping,
                                                                       EpochProgress.Empty, epochs));
                serialize[i] = Time(() => CheckpointFile.Serialize(checkpoint!));
                // As a run writes one: sharing θ and the velocity (written before the next step), into the store's reused buffer.
                write[i] = Time(() => store.Write(Checkpoint.Capture("mode=bench", 1000 + i, 2, 62, parameters, optimizer, stopping,
                                                                     EpochProgress.Empty, epochs, copy: false)));
                read[i] = Time(() => CheckpointFile.Read(store.PathOf(1000 + i)));
            }
            long bytes = new FileInfo(store.PathOf(1000 + iterations - 1)).Length;
            Console.WriteLine($"checkpoint of {spec} ({spec.ParameterCount:N0} parameters, θ + velocity): {bytes:N0} bytes, {iterations} iterations, in {directory}");
            Console.WriteLine("| what | median ms | p90 ms |");
            Console.WriteLine("| --- | ---: | ---: |");
            Row("one training step, batch 64, 1 thread (for scale)", steps);
            Row("capture (copy θ and the velocity)", capture);
            Row("serialize + SHA-256", serialize);
            Row("whole write as a run pays it: serialize + SHA-256, temp file, fsync, rename, prune", write);
            Row("read + verify (--resume)", read);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
        return 0;
    }

    private static double Time(Action action)
    {
        long started = Stopwatch.GetTimestamp();
        action();
        return Stopwatch.GetElapsedTime(started).TotalMilliseconds;
    }

    private static void Row(string what, double[] values)
    {
        var sorted = values.Order().ToArray();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| {what} | {sorted[sorted.Length / 2]:F2} | {sorted[(int)(sorted.Length * 0.9)]:F2} |"));
    }
}
