namespace DistSgd.Actors.Tests.Steps;

/// <summary>Bytes a step allocates on the calling thread, once warm (the step trace's <c>allocated_bytes</c>, in a unit test).</summary>
internal static class StepAllocations
{
    /// <summary>Runs steps 0 … <paramref name="warmUp"/> − 1 unmeasured, then <paramref name="measured"/> more; returns the bytes those allocated.</summary>
    public static long Measure(Action<long> step, int warmUp, int measured)
    {
        for (long s = 0; s < warmUp; s++)
            step(s);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (long s = warmUp; s < warmUp + measured; s++)
            step(s);
        return GC.GetAllocatedBytesForCurrentThread() - before;
    }
}
