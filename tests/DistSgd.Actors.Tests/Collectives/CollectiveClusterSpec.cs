using DistSgd.Actors.Protocol;
using DistSgd.Actors.Tests.Deployment;
using DistSgd.Numerics.Data;
using DistSgd.Numerics.Models;
using DistSgd.Numerics.Optim;
using DistSgd.Numerics.Tensors;
using DistSgd.Numerics.Training;

namespace DistSgd.Actors.Tests.Collectives;

/// <summary>
/// Whole decentralized runs with each collective on the data plane, for 2 to 5 peers: a model of 43 parameters (a prime:
/// no N divides it, so the slices are uneven) and one shard a sample larger than the others, so the last step of each
/// epoch has weight-0 shares.
/// </summary>
public class CollectiveClusterSpec
{
    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    public async Task Every_collective_gives_bit_identical_replicas_pairwise_the_all_gathers_bits_and_all_match_sequential_sgd(int peers)
    {
        const int batch = 8, epochs = 2, seed = 9;
        var train = Synthetic.GaussianBlobs(peers * batch * 3 + 1, 4, 3, spread: 3, seed: peers);
        var spec = new ModelSpec(ModelKind.Mlp, 4, 3, [5], Activation.Tanh);
        Assert.Equal(43, spec.ParameterCount);
        var theta0 = new float[spec.ParameterCount];
        new Model(spec, NaiveKernels.Instance).Initialize(theta0, seed);
        var options = new SgdOptions(0.1, momentum: 0.9);

        var runs = new Dictionary<Collective, DecentralizedClusterSpec.Outcome>();
        foreach (var collective in new[] { Collective.AllGather, Collective.Pairwise, Collective.Ring })
        {
            var outcome = await DecentralizedClusterSpec.RunDecentralized(train, null, spec, peers, batch, epochs, options, theta0, seed,
                                                                          transport: "direct", collective: collective);
            Assert.Equal(peers, outcome.Peers.Count);
            foreach (var peer in outcome.Peers)
                Assert.Equal(outcome.Lead.Parameters, peer.Parameters);   // bit-identical replicas
            var last = outcome.Lead.Result.Final!.Communication!;
            Assert.True(last.DroppedMessages == 0, $"{collective}: dropped {last.DroppedMessages}; notes: {string.Join(" | ", outcome.Notes)}");
            runs[collective] = outcome;
        }

        Assert.Equal(runs[Collective.AllGather].Lead.Parameters, runs[Collective.Pairwise].Lead.Parameters);
        var reference = CentralizedClusterSpec.SequentialReference(train, spec, peers, batch, epochs, options, theta0, seed);
        foreach (var (collective, outcome) in runs)
            for (int i = 0; i < reference.Length; i++)
                Assert.True(Math.Abs(reference[i] - outcome.Lead.Parameters[i]) <= 1e-5 + 1e-4 * Math.Abs(reference[i]),
                            $"{collective}, parameter {i}: sequential {reference[i]}, decentralized {outcome.Lead.Parameters[i]}");
        Assert.NotEqual(theta0, runs[Collective.Ring].Lead.Parameters);
    }

    [Theory]
    [InlineData(Collective.Pairwise, "wire=bf16")]
    [InlineData(Collective.Pairwise, "wire=fp16")]
    [InlineData(Collective.Ring, "wire=bf16")]
    public async Task The_all_reduces_carry_16_bit_parts_into_bit_identical_replicas_for_half_the_bytes(Collective collective, string wire)
    {
        const int peers = 3, batch = 8, epochs = 2, seed = 9;
        var train = Synthetic.GaussianBlobs(peers * batch * 3 + 1, 4, 3, spread: 3, seed: peers);
        var spec = new ModelSpec(ModelKind.Mlp, 4, 3, [5], Activation.Tanh);
        var theta0 = new float[spec.ParameterCount];
        new Model(spec, NaiveKernels.Instance).Initialize(theta0, seed);
        var options = new SgdOptions(0.1, momentum: 0.9);

        var compressed = await DecentralizedClusterSpec.RunDecentralized(train, null, spec, peers, batch, epochs, options, theta0, seed,
                                                                         transport: "direct", collective: collective, hyperparameters: wire);
        var fp32 = await DecentralizedClusterSpec.RunDecentralized(train, null, spec, peers, batch, epochs, options, theta0, seed,
                                                                   transport: "direct", collective: collective);

        foreach (var peer in compressed.Peers)
            Assert.Equal(compressed.Lead.Parameters, peer.Parameters);
        Assert.DoesNotContain(compressed.Notes, n => n.Contains("MISMATCH"));
        var (a, b) = (compressed.Lead.Result.Final!.Communication!, fp32.Lead.Result.Final!.Communication!);
        Assert.True(a.DroppedMessages == 0, $"dropped {a.DroppedMessages}; notes: {string.Join(" | ", compressed.Notes)}");
        Assert.Equal(b.Steps, a.Steps);
        // 43 values: a part's 64-byte header weighs as much as its payload, so 16-bit parts save less than half here.
        Assert.True(a.BytesSent < b.BytesSent && a.BytesReceived < b.BytesReceived, $"sent {a.BytesSent} vs {b.BytesSent}, received {a.BytesReceived} vs {b.BytesReceived}");
        Assert.NotEqual(fp32.Lead.Parameters, compressed.Lead.Parameters);
        for (int i = 0; i < theta0.Length; i++)
            Assert.True(Math.Abs(fp32.Lead.Parameters[i] - compressed.Lead.Parameters[i]) <= 0.05 + 0.05 * Math.Abs(fp32.Lead.Parameters[i]),
                        $"parameter {i}: float32 parts {fp32.Lead.Parameters[i]}, 16-bit {compressed.Lead.Parameters[i]}");
    }
    [Theory]
    [InlineData(2, 2)]
    [InlineData(2, 3)]
    [InlineData(3, 2)]
    [InlineData(3, 3)]
    [InlineData(4, 2)]
    [InlineData(4, 3)]
    public async Task Local_sgd_averages_through_every_collective_into_bit_identical_replicas_pairwise_the_all_gathers_bits(int peers, int syncEvery)
    {
        // 6 batches a shard and one sample more on node 0: 7 steps an epoch, averaging steps with every weight (H = 2: steps
        // 1 and 3; H = 3: step 2) and the epoch's last, where every shard but node 0's ran out (weight 0; decision 0136).
        const int batch = 8, epochs = 2, seed = 9;
        var (train, spec, theta0, options) = SixBatchesAndOne(peers, batch, seed);

        var runs = new Dictionary<Collective, DecentralizedClusterSpec.Outcome>();
        foreach (var collective in new[] { Collective.AllGather, Collective.Pairwise, Collective.Ring })
        {
            var outcome = await DecentralizedClusterSpec.RunDecentralized(train, null, spec, peers, batch, epochs, options, theta0, seed,
                                                                          transport: "direct", collective: collective,
                                                                          hyperparameters: $"sync-every={syncEvery}");
            Assert.Equal(peers, outcome.Peers.Count);
            foreach (var peer in outcome.Peers)
                Assert.Equal(outcome.Lead.Parameters, peer.Parameters);   // bit-identical replicas
            Assert.DoesNotContain(outcome.Notes, n => n.Contains("MISMATCH"));
            var last = outcome.Lead.Result.Final!.Communication!;
            Assert.True(last.DroppedMessages == 0, $"{collective}: dropped {last.DroppedMessages}; notes: {string.Join(" | ", outcome.Notes)}");
            // Every peer's samples count in the epoch's samples per second, at the local steps too (decision 0137): an epoch is the training set.
            foreach (var epoch in outcome.Lead.Result.Epochs)
                Assert.Equal(train.Count, Math.Round(epoch.SamplesPerSecond * epoch.Seconds));
            runs[collective] = outcome;
        }

        Assert.Equal(runs[Collective.AllGather].Lead.Parameters, runs[Collective.Pairwise].Lead.Parameters);
        var reference = runs[Collective.AllGather].Lead.Parameters;
        var ring = runs[Collective.Ring].Lead.Parameters;
        for (int i = 0; i < reference.Length; i++)
            Assert.True(Math.Abs(reference[i] - ring[i]) <= 1e-5 + 1e-4 * Math.Abs(reference[i]),
                        $"parameter {i}: all-gather {reference[i]}, ring {ring[i]}");
        Assert.NotEqual(theta0, ring);
    }

    /// <summary>
    /// The 43-parameter model on blobs of 6 batches a shard and one sample more on node 0: 7 steps an epoch, every shard
    /// but node 0's out at the last (local SGD: averaging steps with every weight, and the epoch's last with weight 0).
    /// </summary>
    private static (Dataset Train, ModelSpec Spec, float[] Theta0, SgdOptions Options) SixBatchesAndOne(int peers, int batch, int seed)
    {
        var train = Synthetic.GaussianBlobs(peers * batch * 6 + 1, 4, 3, spread: 3, seed: peers);
        var spec = new ModelSpec(ModelKind.Mlp, 4, 3, [5], Activation.Tanh);
        var theta0 = new float[spec.ParameterCount];
        new Model(spec, NaiveKernels.Instance).Initialize(theta0, seed);
        return (train, spec, theta0, new SgdOptions(0.1, momentum: 0.9));
    }

    [Fact]
    public async Task Local_sgd_through_the_ring_with_bf16_parts_keeps_replicas_bit_identical()
    {
        const int peers = 3, batch = 8, epochs = 2, seed = 9;
        var (train, spec, theta0, options) = SixBatchesAndOne(peers, batch, seed);

        var bf16 = await DecentralizedClusterSpec.RunDecentralized(train, null, spec, peers, batch, epochs, options, theta0, seed,
                                                                   transport: "direct", collective: Collective.Ring, hyperparameters: "sync-every=2;wire=bf16");
        var fp32 = await DecentralizedClusterSpec.RunDecentralized(train, null, spec, peers, batch, epochs, options, theta0, seed,
                                                                   transport: "direct", collective: Collective.Ring, hyperparameters: "sync-every=2");

        foreach (var peer in bf16.Peers)
            Assert.Equal(bf16.Lead.Parameters, peer.Parameters);
        Assert.DoesNotContain(bf16.Notes, n => n.Contains("MISMATCH"));
        var (a, b) = (bf16.Lead.Result.Final!.Communication!, fp32.Lead.Result.Final!.Communication!);
        Assert.True(a.DroppedMessages == 0, $"dropped {a.DroppedMessages}; notes: {string.Join(" | ", bf16.Notes)}");
        Assert.True(a.BytesSent < b.BytesSent, $"sent {a.BytesSent} with bf16 parts vs {b.BytesSent}");
        Assert.NotEqual(fp32.Lead.Parameters, bf16.Lead.Parameters);
        for (int i = 0; i < theta0.Length; i++)
            Assert.True(Math.Abs(fp32.Lead.Parameters[i] - bf16.Lead.Parameters[i]) <= 0.05 + 0.05 * Math.Abs(fp32.Lead.Parameters[i]),
                        $"parameter {i}: float32 parts {fp32.Lead.Parameters[i]}, bf16 {bf16.Lead.Parameters[i]}");
    }
}
