using System.Diagnostics;
using System.Net;
using System.Numerics.Tensors;
using DistSgd.Numerics.Cost;
using DistSgd.Numerics.Data;
using DistSgd.Numerics.Models;
using DistSgd.Numerics.Optim;
using DistSgd.Numerics.Tensors;

namespace DistSgd.Host.Runs;

/// <summary>
/// `distsgd bench calibrate`: measures the constants of the cost model (<see cref="CostConstants"/>) on this machine
/// for one model and per-node batch: C (forward and backward of the batch, one thread, as a worker runs it), δ (the
/// momentum update per byte), γ (adding one gradient into a sum per byte), and α, β of the local data plane (TCP over
/// loopback with <see cref="LinkProbe"/>, β from an 8 MiB payload). Medians of many repetitions, after a warm-up.
/// </summary>
public static class CostCalibration
{
    public static CostConstants Measure(ModelSpec spec, int batch, int repeats, CancellationToken cancellation = default)
    {
        using var kernels = MatrixKernels.Create(1);
        var model = new Model(spec, kernels);
        int n = model.ParameterCount;
        var parameters = new float[n];
        model.Initialize(parameters, 1);
        var gradient = new float[n];
        var random = new Random(2);
        var features = new float[batch * spec.InputCount];
        for (int i = 0; i < features.Length; i++)
            features[i] = (float)random.NextDouble();
        var targets = new float[batch];
        for (int i = 0; i < batch; i++)
            targets[i] = spec.ClassCount > 0 ? random.Next(spec.ClassCount) : (float)random.NextDouble();
        var optimizer = new SgdOptimizer(new SgdOptions(1e-6, momentum: 0.9), n);
        var sum = new float[n];
        long bytes = (long)n * sizeof(float);

        double compute = Median(repeats, () => model.LossAndGradient(parameters, features, targets, batch, gradient));
        double update = Median(repeats, () => optimizer.Step(parameters, gradient));
        // sum ← sum + w·g, the reduction's inner loop (GradientAggregation)
        double add = Median(repeats, () => TensorPrimitives.MultiplyAdd(gradient, 2f, sum, sum));
        cancellation.ThrowIfCancellationRequested();

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        var listening = new TaskCompletionSource<IPEndPoint>();
        var server = Task.Run(() => LinkProbe.Serve(new IPEndPoint(IPAddress.Loopback, 0), 1, stop.Token, listening.SetResult));
        // β from a payload of at least 8 MiB: a few ms on loopback, well above the noise of waking the echo thread.
        var link = LinkProbe.Measure(listening.Task.WaitAsync(TimeSpan.FromSeconds(10)).Result, (int)Math.Max(bytes, 8 << 20),
                                     Math.Min(repeats, 50), TimeSpan.FromSeconds(10));
        stop.Cancel();
        server.Wait(TimeSpan.FromSeconds(10));

        return new CostConstants
        {
            GradientBytes = bytes,
            BatchPerNode = batch,
            ComputeSeconds = compute,
            UpdateSecondsPerByte = update / bytes,
            SumSecondsPerByte = add / bytes,
            MessageSeconds = link.MessageSeconds,
            // κ lives in the actors and reader threads of a real run, which a bare socket does not have:
            // scripts/bench-network.sh fits it to its runs.
            RoundSeconds = CostConstants.Measured.RoundSeconds,
            LoopbackSecondsPerByte = link.SecondsPerByte,
            NetworkSecondsPerByte = link.SecondsPerByte,
            Source = $"distsgd bench calibrate, {spec}, batch {batch}, {Environment.MachineName}, {Environment.ProcessorCount} cores, " +
                     $"{DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, load average {LoadAverage()}",
        };
    }

    /// <summary>The 1-minute load average (Linux), or "unknown": the reader judges the numbers by it.</summary>
    public static string LoadAverage()
    {
        try
        {
            return File.ReadAllText("/proc/loadavg").Split(' ')[0];
        }
        catch (IOException)
        {
            return "unknown";
        }
        catch (UnauthorizedAccessException)
        {
            return "unknown";
        }
    }

    private static double Median(int repeats, Action action)
    {
        for (int i = 0; i < Math.Max(3, repeats / 10); i++)
            action();
        var seconds = new double[repeats];
        for (int i = 0; i < repeats; i++)
        {
            long start = Stopwatch.GetTimestamp();
            action();
            seconds[i] = Stopwatch.GetElapsedTime(start).TotalSeconds;
        }
        return LinkProbe.Median(seconds);
    }
}
