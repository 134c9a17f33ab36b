using System.Diagnostics;

namespace DistSgd.Numerics.Tensors;

/// <summary>Work split into numbered parts; part p runs on exactly one thread.</summary>
internal interface IPartitionedWork
{
    void Execute(int part);
}

/// <summary>
/// A small persistent pool for fork-join calls that last tens of microseconds, with no allocation
/// per call (Parallel.For allocates, and its scheduling costs more than a small GEMM).
/// </summary>
/// <remarks>
/// Parts are claimed, not assigned: the caller and every worker take the next unclaimed part until
/// none is left. On a busy machine a worker may not get a core for a while; the caller then simply
/// runs its part too. That only covers a worker that has not started: one preempted in the middle of
/// its part still makes the caller wait, which is why two threads measured slower than one while
/// another process was using the second core (bench/README.md).
/// Which thread runs a part never changes what the part computes.
/// Workers spin for a short while after a job, since a training step issues GEMMs back to back,
/// then sleep. One job at a time: the owner serialises calls to <see cref="Run"/>.
/// </remarks>
internal sealed class GemmWorkerPool : IDisposable
{
    private static readonly long SpinTicks = Stopwatch.Frequency / 20_000; // 50 µs

    private readonly Thread[] _threads;
    private readonly object _sleep = new();
    // Completion is a Monitor on a preallocated object, not a ManualResetEventSlim: that one
    // allocates its lock object the first time a wait blocks, which could be any call.
    private readonly object _done = new();

    /// <summary>(generation &lt;&lt; 32) | next unclaimed part: one CAS both checks the job and claims a part.</summary>
    private long _claim;
    private IPartitionedWork? _work;
    private int _parts;
    private int _completed;
    private Exception? _error;
    private volatile bool _disposed;

    public GemmWorkerPool(int workers)
    {
        _threads = new Thread[workers];
        for (int w = 0; w < workers; w++)
        {
            _threads[w] = new Thread(WorkerLoop) { IsBackground = true, Name = $"gemm-worker-{w + 1}" };
            _threads[w].Start();
        }
    }

    public int Workers => _threads.Length;

    /// <summary>Runs parts 0..parts−1 of <paramref name="work"/> on the calling thread and the workers; returns when all are done.</summary>
    public void Run(IPartitionedWork work, int parts)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _work = work;
        _parts = parts;
        _completed = 0;
        _error = null;
        long generation = (Volatile.Read(ref _claim) >> 32) + 1;
        Interlocked.Exchange(ref _claim, generation << 32); // publishes the job (full fence)
        lock (_sleep) Monitor.PulseAll(_sleep);
        Help(generation);
        WaitForCompletion();
        _work = null;
        if (_error != null) throw new AggregateException("A GEMM part failed.", _error);
    }

    /// <summary>Claims and runs parts of job <paramref name="generation"/> until none is left.</summary>
    private void Help(long generation)
    {
        while (TryClaim(generation, out int part))
        {
            try { _work!.Execute(part); }
            catch (Exception e) { Interlocked.CompareExchange(ref _error, e, null); }
            if (Interlocked.Increment(ref _completed) == _parts)
                lock (_done) Monitor.PulseAll(_done);
        }
    }

    /// <summary>Spins briefly (the last part is usually nearly done), then sleeps until every part has completed.</summary>
    private void WaitForCompletion()
    {
        var spin = new SpinWait();
        for (int i = 0; i < 50 && Volatile.Read(ref _completed) < _parts; i++) spin.SpinOnce(sleep1Threshold: -1);
        if (Volatile.Read(ref _completed) >= _parts) return;
        lock (_done)
        {
            while (Volatile.Read(ref _completed) < _parts) Monitor.Wait(_done);
        }
    }

    private bool TryClaim(long generation, out int part)
    {
        while (true)
        {
            long current = Volatile.Read(ref _claim);
            part = (int)(current & 0xFFFF_FFFF);
            // A stale generation means the job this thread woke for is finished; the caller
            // cannot start the next one before every claimed part has completed.
            if (current >> 32 != generation || part >= _parts) return false;
            if (Interlocked.CompareExchange(ref _claim, current + 1, current) == current) return true;
        }
    }

    private void WorkerLoop()
    {
        long seen = 0;
        while (!_disposed)
        {
            long spinUntil = Stopwatch.GetTimestamp() + SpinTicks;
            while (Volatile.Read(ref _claim) >> 32 == seen && Stopwatch.GetTimestamp() < spinUntil && !_disposed)
                Thread.SpinWait(20);
            if (Volatile.Read(ref _claim) >> 32 == seen)
            {
                lock (_sleep)
                {
                    while (Volatile.Read(ref _claim) >> 32 == seen && !_disposed)
                        Monitor.Wait(_sleep);
                }
            }
            if (_disposed) return;
            seen = Volatile.Read(ref _claim) >> 32;
            Help(seen);
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        lock (_sleep) Monitor.PulseAll(_sleep);
    }
}
