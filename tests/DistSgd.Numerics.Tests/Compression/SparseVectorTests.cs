using DistSgd.Numerics.Compression;
using DistSgd.Numerics.Tensors;

namespace DistSgd.Numerics.Tests.Compression;

/// <summary>
/// A sparse share's entries (decision 0141): decoded by the rules and with the reasons of the dense decode, the entries
/// the dense decode scatters; kept by the compressor as the wire sends them; scattered into and cleared out of a share.
/// </summary>
public class SparseVectorTests
{
    private static uint[] Bits(ReadOnlySpan<float> values) => values.ToArray().Select(BitConverter.SingleToUInt32Bits).ToArray();

    [Theory]
    [InlineData(WirePrecision.Fp32, 0.01)]
    [InlineData(WirePrecision.Bf16, 0.01)]
    [InlineData(WirePrecision.Fp16, 0.05)]
    public void Decoded_entries_are_what_the_dense_decode_scatters_and_what_the_compressor_kept(WirePrecision precision, double kept)
    {
        var encoding = new ShareEncoding(precision, kept);
        const int n = 4099;
        var gradient = Enumerable.Range(0, n).Select(i => MathF.Sin(i * 0.37f) * MathF.Pow(10, -(i % 9))).ToArray();
        var own = new SparseVector(n, encoding.KeptCount(n));
        Assert.True(new GradientCompressor(encoding, n, momentum: 0.9).Compress(gradient, own));
        var payload = new byte[encoding.MaxPayloadBytes(n)];
        int bytes = ShareCodec.Encode(encoding, gradient, payload, out int count);

        var decoded = new SparseVector(n, encoding.KeptCount(n));
        Assert.Null(ShareCodec.DecodeEntries(encoding, payload.AsSpan(0, bytes), count, decoded, out bool finite));
        Assert.True(finite);
        var scattered = new float[n];
        decoded.ScatterInto(scattered);

        Assert.Equal(Bits(gradient), Bits(scattered));
        Assert.Equal(count, decoded.Count);
        Assert.Equal(own.Indices.ToArray(), decoded.Indices.ToArray());
        Assert.Equal(Bits(own.Values), Bits(decoded.Values));
        var collected = new SparseVector(n, encoding.KeptCount(n));
        collected.Collect(gradient);
        Assert.Equal(own.Indices.ToArray(), collected.Indices.ToArray());
    }

    [Fact]
    public void Signed_zeros_and_infinities_sent_as_entries_decode_as_the_dense_decode_has_them()
    {
        var encoding = new ShareEncoding(WirePrecision.Fp32, 0.5);
        var payload = ShareCodecTests.Sparse((1, -0f), (2, 0f), (5, float.PositiveInfinity), (9, 1e-42f));
        var entries = new SparseVector(10, 5);
        Assert.Null(ShareCodec.DecodeEntries(encoding, payload, 4, entries, out bool finite));
        Assert.False(finite);
        var dense = new float[10];
        Assert.Null(ShareCodec.Decode(encoding, payload, 4, dense, out bool denseFinite));
        var scattered = new float[10];
        entries.ScatterInto(scattered);
        Assert.Equal(Bits(dense), Bits(scattered));
        Assert.Equal(denseFinite, finite);
    }

    public static TheoryData<string, byte[], int> Refused() => new()
    {
        { "index 100", ShareCodecTests.Sparse((3, 1f), (100, 1f)), 2 },
        { "index -1", ShareCodecTests.Sparse((-1, 1f)), 1 },
        { "index 5", ShareCodecTests.Sparse((5, 1f), (5, 1f)), 2 },
        { "index 2", ShareCodecTests.Sparse((7, 1f), (2, 1f)), 2 },
        { "entry 1 (index 9) is NaN", ShareCodecTests.Sparse((2, 1f), (9, float.NaN)), 2 },
        { "11 entries, at most 10 kept", ShareCodecTests.Sparse(Enumerable.Range(0, 11).Select(i => (i, 1f)).ToArray()), 11 },
        { "expected 8", new byte[7], 1 },
    };

    [Theory]
    [MemberData(nameof(Refused))]
    public void A_payload_the_dense_decode_refuses_is_refused_with_the_same_reason_and_leaves_no_entries(string reason, byte[] payload, int count)
    {
        var encoding = new ShareEncoding(WirePrecision.Fp32, 0.1);
        var entries = new SparseVector(100, encoding.KeptCount(100));
        entries.Collect(Enumerable.Range(0, 100).Select(i => i == 4 ? 1f : 0f).ToArray());   // left from an earlier share

        string? refused = ShareCodec.DecodeEntries(encoding, payload, count, entries, out bool finite);

        Assert.Contains(reason, refused);
        Assert.Equal(ShareCodec.Decode(encoding, payload, count, new float[100]), refused);
        Assert.False(finite);
        Assert.Equal(0, entries.Count);
    }

    [Fact]
    public void Clearing_the_entries_out_of_a_share_that_held_only_them_leaves_it_all_positive_zero()
    {
        var entries = new SparseVector(8, 4);
        var share = new float[8];
        share[2] = -0f;
        share[3] = 1.5f;
        share[7] = -2f;
        entries.Collect(share);
        Assert.Equal([3, 7], entries.Indices.ToArray());

        entries.ClearIn(share);

        Assert.All(Bits(share), bits => Assert.Equal(0u, bits & 0x7FFF_FFFFu));
        Assert.Equal(0u, BitConverter.SingleToUInt32Bits(share[3]));
        Assert.Equal(0u, BitConverter.SingleToUInt32Bits(share[7]));
    }

    [Fact]
    public void Entries_beyond_their_room_or_of_another_length_are_refused()
    {
        var entries = new SparseVector(4, 1);
        Assert.Contains("room for", Assert.Throws<ArgumentException>(() => entries.Collect([1f, 0f, 2f, 0f])).Message);
        Assert.Contains("3 values", Assert.Throws<ArgumentException>(() => entries.Collect([1f, 0f, 0f])).Message);
        Assert.Throws<ArgumentException>(() => ShareCodec.DecodeEntries(ShareEncoding.Fp32, [], 0, entries, out _));
        Assert.Throws<ArgumentException>(() => new GradientCompressor(new ShareEncoding(WirePrecision.Fp32, 0.5), 4).Compress(new float[4], entries));
    }
}
