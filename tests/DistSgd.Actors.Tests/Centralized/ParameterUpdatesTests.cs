using DistSgd.Actors.Centralized;
using DistSgd.Actors.Protocol;
using DistSgd.Numerics.Compression;

namespace DistSgd.Actors.Tests.Centralized;

/// <summary>The master's compressed return path keeps every worker's θ bit-identical to the master's, or refuses.</summary>
public class ParameterUpdatesTests
{
    private sealed record Reply(int Participant) : IGradientContribution
    {
        public string RunId => "r";
        public long Step => 0;
        public int SampleCount => 1;
        public double LossSum => 0;
        public double ComputeSeconds => 0;
        public float[] Gradient => [];
        public long FrameBytes => 0;
        public int PayloadBytes => 0;
    }

    [Theory]
    [InlineData(WirePrecision.Bf16, 1.0)]
    [InlineData(WirePrecision.Fp16, 1.0)]
    [InlineData(WirePrecision.Fp32, 0.05)]
    [InlineData(WirePrecision.Bf16, 0.1)]
    public void A_worker_adding_each_update_to_its_theta_holds_the_masters_theta_bit_for_bit(WirePrecision precision, double kept)
    {
        const int n = 500;
        var updates = new ParameterUpdates(new ShareEncoding(precision, kept), n);
        var random = new Random(5);
        var master = Enumerable.Range(0, n).Select(_ => (float)random.NextDouble()).ToArray();
        var worker = master.ToArray();
        for (long step = 0; step < 20; step++)
        {
            master.CopyTo(updates.Before, 0);   // what Replica.KeepStateBeforeEachStep does in the update's pass
            for (int i = 0; i < n; i++)
                master[i] -= 0.01f * (float)(random.NextDouble() - 0.5);   // the optimizer's step
            Assert.True(updates.Compress(master, step + 1, [new Reply(0), new Reply(2)]));
            Assert.True(updates.SendsUpdateTo(2, step + 1));
            Assert.False(updates.SendsUpdateTo(1, step + 1));
            Assert.False(updates.SendsUpdateTo(0, step + 2));
            var frame = updates.Update.ToArray();   // what the wire delivers to the worker
            Assert.True(ParameterUpdates.Apply(worker, frame, updates.Checksum));
            worker = frame;
            Assert.Equal(master.Select(BitConverter.SingleToUInt32Bits), worker.Select(BitConverter.SingleToUInt32Bits));
        }
    }

    [Fact]
    public void An_update_to_a_theta_that_is_not_the_masters_is_refused()
    {
        var updates = new ParameterUpdates(new ShareEncoding(WirePrecision.Bf16), 4);
        float[] master = [1f, 2f, 3f, 4f];
        master.CopyTo(updates.Before, 0);
        master[0] = 1.5f;
        updates.Compress(master, 1, [new Reply(0)]);
        float[] stale = [1f, 2f, 3f, 4.5f];
        Assert.False(ParameterUpdates.Apply(stale, updates.Update.ToArray(), updates.Checksum));
    }

    [Fact]
    public void A_step_asked_again_goes_whole_to_everyone()
    {
        var updates = new ParameterUpdates(new ShareEncoding(WirePrecision.Bf16), 4);
        updates.Compress([1f, 2f, 3f, 4f], 1, [new Reply(0)]);
        updates.SendWholeFromNowOn();
        Assert.False(updates.SendsUpdateTo(0, 1));
    }

    [Fact]
    public void Float32_has_no_update_path() =>
        Assert.Throws<ArgumentException>(() => new ParameterUpdates(ShareEncoding.Fp32, 4));
}
