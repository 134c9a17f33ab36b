using DistSgd.Numerics.Compression;
using DistSgd.Numerics.Tensors;
using DistSgd.Numerics.Optim;

namespace DistSgd.Numerics.Tests.Optim;

/// <summary>
/// Averaging sparse shares by their entries gives the bits of the dense average of the same shares decoded dense
/// (decision 0141): θ, v, the sample count and the step, for 2 to 5 shares of different weights and empty ones, on
/// entries of both zero signs, subnormals, ties that cancel, and indices the shares share or not.
/// </summary>
public class AverageEntriesAndStepTests
{
    private const int N = 3 * SgdOptimizer.BlockLength + 13;   // not a multiple of the block or of any vector width

    public static TheoryData<double, double, bool, int> OptionsAndShares()
    {
        var data = new TheoryData<double, double, bool, int>();
        foreach (var (momentum, decay, nesterov) in new[] { (0.0, 0.0, false), (0.9, 0.0, false), (0.9, 0.01, false), (0.5, 0.0, true), (0.0, 0.01, false) })
            foreach (int shares in new[] { 2, 3, 4, 5 })
                data.Add(momentum, decay, nesterov, shares);
        return data;
    }

    /// <summary>
    /// One share as it travels: about 1 % of the values, some of them at indices every share uses (sums that meet), the
    /// values of every scale with subnormals, ±0 sent as entries, and the negation of the share before at some indices.
    /// </summary>
    private static (int Index, float Value)[] Entries(Random random, int share, (int Index, float Value)[]? before)
    {
        var chosen = new SortedDictionary<int, float>();
        for (int i = 0; i < 40; i++)
            chosen[i * 97 % N] = 0;   // the same indices in every share
        while (chosen.Count < 60)
            chosen[random.Next(N)] = 0;
        foreach (int index in chosen.Keys.ToArray())
        {
            chosen[index] = random.Next(12) switch
            {
                0 => -0f,
                1 => 0f,
                2 => 1e-42f * (random.Next(2) * 2 - 1),          // subnormal
                3 => float.Epsilon,
                _ => (float)((random.NextDouble() - 0.5) * Math.Pow(10, random.Next(-8, 3))),
            };
        }
        // Ties: the previous share's value negated at its first entries, so w·v + w·(−v) meets at exactly 0 with equal weights.
        foreach (var (index, value) in before?.Take(10) ?? [])
            chosen[index] = -value;
        return chosen.Select(e => (e.Key, e.Value)).ToArray();
    }

    private static int[] Bits(ReadOnlySpan<float> values) => values.ToArray().Select(BitConverter.SingleToInt32Bits).ToArray();

    [Theory]
    [MemberData(nameof(OptionsAndShares))]
    public void Averaging_the_entries_gives_the_bits_of_the_dense_average_of_the_decoded_shares(double momentum, double weightDecay, bool nesterov, int count)
    {
        var encoding = new ShareEncoding(WirePrecision.Fp32, 0.05);
        var options = new SgdOptions(0.05, momentum, weightDecay, nesterov);
        var dense = new SgdOptimizer(options, N);
        var sparse = new SgdOptimizer(options, N);
        var random = new Random(count * 31 + (int)(momentum * 10));
        var theta = Enumerable.Range(0, N).Select(i => i % 101 == 0 ? -0f : (float)(random.NextDouble() - 0.5)).ToArray();
        var sparseTheta = (float[])theta.Clone();
        (int, float)[]? previous = null;
        for (int step = 0; step < 4; step++)
        {
            var gradients = new List<ReadOnlyMemory<float>>();
            var entries = new List<SparseVector?>();
            // Unequal weights; at the second step the shares pair up with equal weights (ties cancel); one share of every
            // step after the first has no samples, and it has no vector and no entries.
            var weights = Enumerable.Range(0, count).Select(s => step == 1 ? 16 : step > 0 && s == step % count ? 0 : 1 + 13 * s + step).ToList();
            for (int s = 0; s < count; s++)
            {
                if (weights[s] == 0)
                {
                    gradients.Add(Array.Empty<float>());
                    entries.Add(null);
                    continue;
                }
                var sent = Entries(random, s, previous);
                previous = sent;
                var payload = Tests.Compression.ShareCodecTests.Sparse(sent);
                var decoded = new float[N];
                Assert.Null(ShareCodec.Decode(encoding, payload, sent.Length, decoded));
                var share = new SparseVector(N, encoding.KeptCount(N));
                Assert.Null(ShareCodec.DecodeEntries(encoding, payload, sent.Length, share, out _));
                gradients.Add(decoded);
                entries.Add(share);
            }
            var keptDense = (new float[N], new float[dense.State.Velocity.Length]);
            var keptSparse = (new float[N], new float[sparse.State.Velocity.Length]);

            var expected = dense.AverageAndStep(theta, gradients, weights, keptDense.Item1, keptDense.Item2);
            var result = sparse.AverageEntriesAndStep(sparseTheta, entries, weights, keptSparse.Item1, keptSparse.Item2);

            Assert.Equal(expected.Samples, result.Samples);
            Assert.Equal(float.IsFinite(expected.ParameterSum), float.IsFinite(result.ParameterSum));
            Assert.Equal(Bits(theta), Bits(sparseTheta));
            Assert.Equal(Bits(dense.State.Velocity), Bits(sparse.State.Velocity));
            Assert.Equal(dense.State.Step, sparse.State.Step);
            Assert.Equal(Bits(keptDense.Item1), Bits(keptSparse.Item1));
            Assert.Equal(Bits(keptDense.Item2), Bits(keptSparse.Item2));
        }
        Assert.Equal(4, sparse.State.Step);
    }

    [Fact]
    public void One_share_alone_and_shares_without_samples_give_the_dense_bits_too()
    {
        var options = new SgdOptions(0.1, momentum: 0.9);
        var dense = new SgdOptimizer(options, 10);
        var sparse = new SgdOptimizer(options, 10);
        float[] theta = [1, -2, 3, 0, -0f, 5, 6, 7, 8, 9];
        var sparseTheta = (float[])theta.Clone();
        float[] share = [0, 0, 0.5f, 0, -0f, 0, 0, 0, 1e-40f, 0];
        var entries = new SparseVector(10, 10);
        entries.Collect(share);

        // No samples at all: nothing applied, the step not advanced, on both.
        var none = (dense.AverageAndStep(theta, [Array.Empty<float>()], [0]), sparse.AverageEntriesAndStep(sparseTheta, [null], [0]));
        Assert.Equal((0L, 0L), (none.Item1.Samples, none.Item2.Samples));
        Assert.Equal(0, sparse.State.Step);

        dense.AverageAndStep(theta, [share, Array.Empty<float>()], [7, 0]);
        sparse.AverageEntriesAndStep(sparseTheta, [entries, null], [7, 0]);

        Assert.Equal(Bits(theta), Bits(sparseTheta));
        Assert.Equal(Bits(dense.State.Velocity), Bits(sparse.State.Velocity));
        Assert.Equal(1, sparse.State.Step);
    }

    [Fact]
    public void A_weighted_share_without_entries_or_of_another_length_is_refused()
    {
        var optimizer = new SgdOptimizer(new SgdOptions(0.1), 10);
        var theta = new float[10];
        Assert.Contains("no entries", Assert.Throws<ArgumentException>(() => optimizer.AverageEntriesAndStep(theta, [null], [3])).Message);
        Assert.Contains("entries of 9 values", Assert.Throws<ArgumentException>(() => optimizer.AverageEntriesAndStep(theta, [new SparseVector(9, 1)], [3])).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => optimizer.AverageEntriesAndStep(theta, [null], [-1]));
        Assert.Equal(0, optimizer.State.Step);
    }
}
