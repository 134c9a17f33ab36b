using System.Diagnostics;

namespace DistSgd.Numerics.Tensors;

/// <summary>Work split into numbered parts; part p runs on exactly one thread.</summary>
internal interface IPartitionedWork
{
    void Execute(int part);
}

/// <summary>
/// A small persistent pool for fork-join calls that last tens of microseconds: the caller runs
/// part 0 and <c>workers</c> dedicated background threads run parts 1..workers. No allocation
/// per call (Parallel.For allocates, and its scheduling costs more than a small GEMM).
/// Workers spin briefly after a job, since a training step issues GEMMs back to back, then block.
/// One job at a time: the owner serialises calls to <see cref="Run"/>.
/// </summary>
internal sealed class GemmWorkerPool : IDisposable
{
    private static readonly long SpinTicks = Stopwatch.Frequency / 20_000; // 50 µs

    private readonly Thread[] _threads;
    private readonly SemaphoreSlim[] _start;
    private readonly ManualResetEventSlim _done = new(false, spinCount: 200);
    private IPartitionedWork? _work;
    private int _remaining;
    private Exception? _error;
    private volatile bool _disposed;

    public GemmWorkerPool(int workers)
    {
        _threads = new Thread[workers];
        _start = new SemaphoreSlim[workers];
        for (int w = 0; w < workers; w++)
        {
            _start[w] = new SemaphoreSlim(0);
            int index = w;
            _threads[w] = new Thread(() => WorkerLoop(index))
            {
                IsBackground = true,
                Name = $"gemm-worker-{w + 1}",
            };
            _threads[w].Start();
        }
    }

    public int Workers => _threads.Length;

    /// <summary>Runs parts 0..Workers of <paramref name="work"/>, part 0 on the calling thread; returns when all are done.</summary>
    public void Run(IPartitionedWork work)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _work = work;
        _error = null;
        _remaining = _threads.Length;
        _done.Reset();
        for (int w = 0; w < _start.Length; w++) _start[w].Release();
        Exception? own = null;
        try { work.Execute(0); }
        catch (Exception e) { own = e; }
        _done.Wait();
        _work = null;
        if (own != null || _error != null)
            throw new AggregateException("A GEMM part failed.", own ?? _error!);
    }

    private void WorkerLoop(int index)
    {
        var start = _start[index];
        while (true)
        {
            long spinUntil = Stopwatch.GetTimestamp() + SpinTicks;
            while (start.CurrentCount == 0 && Stopwatch.GetTimestamp() < spinUntil && !_disposed)
                Thread.SpinWait(20);
            start.Wait();
            if (_disposed) return;
            try { _work!.Execute(index + 1); }
            catch (Exception e) { _error = e; }
            if (Interlocked.Decrement(ref _remaining) == 0) _done.Set();
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var s in _start) s.Release();
    }
}
