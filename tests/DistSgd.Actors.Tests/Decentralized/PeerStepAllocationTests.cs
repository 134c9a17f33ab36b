using DistSgd.Actors.Decentralized;
using DistSgd.Actors.Steps;
using DistSgd.Actors.Tests.Steps;

namespace DistSgd.Actors.Tests.Decentralized;

/// <summary>
/// A peer's step between the socket and the kernels allocates nothing: opening the buffer, offering the shares (one of
/// them early, held for the next step), averaging and updating with the undo copy, recording the applied shares and
/// releasing the previous step's arrays (issue 17). The share records themselves are made before the measurement: a
/// frame's record is the data plane's, on its reader thread.
/// </summary>
public class PeerStepAllocationTests
{
    /// <param name="sparse">Top-k shares that carry their entries, averaged by them (decision 0141).</param>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Steps_of_a_peer_allocate_nothing_on_its_thread(bool sparse)
    {
        using var replica = ReplicaTests.Make(epochs: 1, hyperparameters: ReplicaTests.SomeHyperparameters);
        int n = replica.Parameters.Length;
        var buffer = new StepBuffer(replica.Plan.RunId, n);
        var undo = new StepUndo(n, replica.Optimizer.State.Velocity.Length);
        replica.KeepStateBeforeEachStep(undo.ParametersBefore, undo.VelocityBefore);
        var participants = new SortedSet<int> { 0, 1 };
        const int warmUp = 20, measured = 500;
        var arrays = Enumerable.Range(0, 4).Select(i => Enumerable.Range(0, n).Select(j => !sparse || j % 97 == i ? 0.01f * (i + 1) : 0f).ToArray()).ToArray();
        var entries = arrays.Select(array =>
        {
            var kept = new Numerics.Tensors.SparseVector(n, n);
            kept.Collect(array);
            return sparse ? kept : null;
        }).ToArray();
        // Peer 1's share comes a step early every other step (held by the buffer), peer 0's own as its step begins.
        var shares = Enumerable.Range(0, warmUp + measured + 1)
            .Select(s => (Own: new GradientShare(replica.Plan.RunId, s, 0, 2, 1.0, 0.001, arrays[s % 2]) { Entries = entries[s % 2] },
                          Other: new GradientShare(replica.Plan.RunId, s, 1, 2, 1.0, 0.001, arrays[2 + s % 2]) { Entries = entries[2 + s % 2] }))
            .ToArray();
        long released = 0;
        Action<GradientShare> release = _ => released++;

        void Step(long s)
        {
            buffer.Begin(s, participants);
            buffer.Offer(shares[s].Own);
            if (s % 2 == 0)
            {
                buffer.Offer(shares[s].Other);
                buffer.Offer(shares[s + 1].Other);   // early: held for step s + 1
            }
            Assert.True(buffer.Gather.IsComplete);
            buffer.Gather.Close();
            undo.Capturing(replica.Optimizer.State.Step);
            var outcome = replica.Apply(buffer.Gather, 0.002);
            Assert.Null(outcome.Divergence);
            undo.Applied(s, buffer.Gather.Replies, release);
            replica.Advance();
        }

        long allocated = StepAllocations.Measure(Step, warmUp, measured);

        Assert.Equal(warmUp + measured, replica.Step);
        Assert.True(released > 0);   // the step really went through the release path
        Assert.Equal(sparse, buffer.Gather.Entries() is not null);   // the step took the path the test names
        Assert.Equal(0, allocated);
    }
}
