using System.Buffers.Binary;
using DistSgd.Numerics.Compression;
using DistSgd.Numerics.Tensors;

namespace DistSgd.Numerics.Tests.Compression;

/// <summary>Shares encode without loss once compressed, and a payload from another node is judged, never trusted.</summary>
public class ShareCodecTests
{
    public static TheoryData<WirePrecision, double> Encodings() => new()
    {
        { WirePrecision.Fp32, 1 }, { WirePrecision.Bf16, 1 }, { WirePrecision.Fp16, 1 },
        { WirePrecision.Fp32, 0.01 }, { WirePrecision.Bf16, 0.01 }, { WirePrecision.Fp16, 0.05 },
    };

    [Theory]
    [MemberData(nameof(Encodings))]
    public void A_compressed_gradient_decodes_bit_for_bit_as_the_sender_holds_it(WirePrecision precision, double kept)
    {
        var encoding = new ShareEncoding(precision, kept);
        const int n = 4099;
        var gradient = Enumerable.Range(0, n).Select(i => MathF.Sin(i * 0.37f) * MathF.Pow(10, -(i % 9))).ToArray();
        gradient[5] = -0f;
        new GradientCompressor(encoding, n).Compress(gradient);
        var payload = new byte[encoding.MaxPayloadBytes(n)];
        int bytes = ShareCodec.Encode(encoding, gradient, payload, out int count);
        Assert.Equal(encoding.PayloadBytes(count), bytes);
        Assert.Equal(encoding.IsSparse ? encoding.KeptCount(n) : n, count);
        var decoded = Enumerable.Repeat(7f, n).ToArray();
        Assert.Null(ShareCodec.Decode(encoding, payload.AsSpan(0, bytes), count, decoded));
        Assert.Equal(gradient.Select(BitConverter.SingleToUInt32Bits), decoded.Select(BitConverter.SingleToUInt32Bits));
    }

    [Theory]
    [InlineData(new int[0])]
    [InlineData(new[] { 0 })]
    [InlineData(new[] { 31, 32, 63, 64 })]
    [InlineData(new[] { 1, 95, 96, 127, 128, 199 })]
    [InlineData(new[] { 199 })]
    public void A_sparse_encoding_finds_every_non_zero_value_among_signed_zeros(int[] nonZero)
    {
        // Whole blocks of 32 zeros are skipped at once: a value at a block's edge, or in the tail after the last block, is still found.
        var values = Enumerable.Range(0, 200).Select(i => i % 3 == 0 ? -0f : 0f).ToArray();
        foreach (int i in nonZero)
            values[i] = i + 0.5f;
        var encoding = new ShareEncoding(WirePrecision.Fp32, 0.05);
        var payload = new byte[encoding.MaxPayloadBytes(200)];
        int bytes = ShareCodec.Encode(encoding, values, payload, out int count);
        Assert.Equal(nonZero.Length, count);
        var decoded = new float[200];
        Assert.Null(ShareCodec.Decode(encoding, payload.AsSpan(0, bytes), count, decoded));
        Assert.Equal(values.Select(v => v == 0 ? 0f : v), decoded);
    }

    [Theory]
    [MemberData(nameof(Encodings))]
    public void Decoding_judges_every_value_finite_as_FiniteValues_All_would(WirePrecision precision, double kept)
    {
        var encoding = new ShareEncoding(precision, kept);
        const int n = 300;
        foreach (float bad in new[] { 1f, float.PositiveInfinity, float.NegativeInfinity })
        {
            var values = new float[n];
            (values[7], values[250]) = (0.5f, bad);
            var payload = new byte[encoding.MaxPayloadBytes(n)];
            int bytes = ShareCodec.Encode(encoding, values, payload, out int count);
            var decoded = new float[n];
            Assert.Null(ShareCodec.Decode(encoding, payload.AsSpan(0, bytes), count, decoded, out bool finite));
            Assert.Equal(float.IsFinite(bad), finite);
            Assert.Equal(DistSgd.Numerics.Tensors.FiniteValues.All(decoded), finite);
        }
    }

    [Theory]
    [InlineData(WirePrecision.Fp32, 0.01, 100, 8)]
    [InlineData(WirePrecision.Bf16, 0.01, 100, 6)]
    [InlineData(WirePrecision.Bf16, 1, 100, 200)]
    [InlineData(WirePrecision.Fp32, 1, 100, 400)]
    public void Payload_sizes(WirePrecision precision, double kept, int n, long expected) =>
        Assert.Equal(expected, new ShareEncoding(precision, kept).MaxPayloadBytes(n));

    /// <summary>A float32 sparse payload of <paramref name="entries"/>, as given (in order or not).</summary>
    internal static byte[] Sparse(params (int Index, float Value)[] entries)
    {
        var payload = new byte[entries.Length * 8];
        for (int e = 0; e < entries.Length; e++)
        {
            BinaryPrimitives.WriteInt32LittleEndian(payload.AsSpan(e * 8), entries[e].Index);
            BinaryPrimitives.WriteSingleLittleEndian(payload.AsSpan(e * 8 + 4), entries[e].Value);
        }
        return payload;
    }

    [Theory]
    [InlineData(new[] { 3, 100 }, "index 100")]
    [InlineData(new[] { -1, 2 }, "index -1")]
    [InlineData(new[] { 5, 5 }, "index 5")]
    [InlineData(new[] { 7, 2 }, "index 2")]
    public void A_sparse_payload_with_an_index_out_of_range_or_order_is_refused(int[] indices, string named)
    {
        var encoding = new ShareEncoding(WirePrecision.Fp32, 0.1);
        var payload = Sparse(indices.Select(i => (i, 1f)).ToArray());
        Assert.Contains(named, ShareCodec.Decode(encoding, payload, indices.Length, new float[100]));
    }

    [Fact]
    public void A_sparse_payload_with_more_entries_than_kept_is_refused()
    {
        var encoding = new ShareEncoding(WirePrecision.Fp32, 0.01);
        var payload = Sparse((1, 1f), (2, 1f));
        Assert.Contains("2 entries, at most 1 kept", ShareCodec.Decode(encoding, payload, 2, new float[100]));
    }

    [Fact]
    public void A_payload_of_the_wrong_length_is_refused()
    {
        Assert.Contains("expected 8", ShareCodec.Decode(new ShareEncoding(WirePrecision.Fp32, 0.1), new byte[7], 1, new float[100]));
        Assert.Contains("expected 200", ShareCodec.Decode(new ShareEncoding(WirePrecision.Bf16), new byte[198], 100, new float[100]));
        Assert.Contains("99 values for a share of 100", ShareCodec.Decode(new ShareEncoding(WirePrecision.Bf16), new byte[198], 99, new float[100]));
    }

    [Fact]
    public void NaN_in_a_payload_is_refused()
    {
        Assert.Contains("entry 1 (index 9) is NaN",
            ShareCodec.Decode(new ShareEncoding(WirePrecision.Fp32, 0.1), Sparse((2, 1f), (9, float.NaN)), 2, new float[100]));
        var bf16 = new byte[200];
        BinaryPrimitives.WriteUInt16LittleEndian(bf16.AsSpan(2 * 42), 0x7FC1);
        Assert.Contains("value 42 is NaN", ShareCodec.Decode(new ShareEncoding(WirePrecision.Bf16), bf16, 100, new float[100]));
        var fp16 = new byte[200];
        BinaryPrimitives.WriteUInt16LittleEndian(fp16.AsSpan(2 * 7), 0xFE01);
        Assert.Contains("value 7 is NaN", ShareCodec.Decode(new ShareEncoding(WirePrecision.Fp16), fp16, 100, new float[100]));
    }

    [Fact]
    public void A_sparse_share_clears_what_it_does_not_name()
    {
        var destination = Enumerable.Repeat(5f, 10).ToArray();
        Assert.Null(ShareCodec.Decode(new ShareEncoding(WirePrecision.Fp32, 0.2), Sparse((3, 2f)), 1, destination));
        Assert.Equal([0, 0, 0, 2f, 0, 0, 0, 0, 0, 0], destination);
    }

    [Theory]
    [InlineData("fp32", WirePrecision.Fp32)]
    [InlineData("BF16", WirePrecision.Bf16)]
    [InlineData(" fp16 ", WirePrecision.Fp16)]
    public void Wire_names_parse(string text, WirePrecision expected) =>
        Assert.Equal(expected, ShareEncoding.ParsePrecision(text, out _));

    [Theory]
    [InlineData("fp8")]
    [InlineData("")]
    public void A_wire_name_that_is_not_one_is_refused_with_the_choices(string text)
    {
        Assert.Null(ShareEncoding.ParsePrecision(text, out var error));
        Assert.Contains("expected fp32, bf16 or fp16", error);
    }

    [Theory]
    [InlineData("none", 1.0, true)]
    [InlineData("topk:0.01", 0.01, true)]
    [InlineData("TOPK:1", 1.0, true)]
    [InlineData("topk-ef:0.05", 0.05, false)]
    public void Compressions_parse(string text, double expected, bool corrected) =>
        Assert.Equal((expected, corrected), ShareEncoding.ParseCompress(text, out _));

    [Theory]
    [InlineData("topk:0.01")]
    [InlineData("topk-ef:0.01")]
    public void A_compression_goes_through_the_run_s_keys_unchanged(string text)
    {
        var encoding = ShareEncoding.FromKeys($"lr=0.1;compress={text}");
        Assert.Equal(text, encoding.CompressName);
        Assert.Equal(encoding, ShareEncoding.FromKeys(string.Join(';', encoding.Keys())));
    }

    [Fact]
    public void Only_top_k_with_momentum_correction_moves_the_momentum_to_the_senders()
    {
        var options = new DistSgd.Numerics.Optim.SgdOptions(0.05, momentum: 0.9, weightDecay: 1e-4);
        var corrected = new ShareEncoding(WirePrecision.Fp32, 0.01);
        Assert.Equal(0.9, corrected.SenderMomentum(0.9, syncEvery: 1));
        Assert.Equal(0, corrected.ReceiverOptions(options, syncEvery: 1).Momentum);
        Assert.Equal(1e-4, corrected.ReceiverOptions(options, syncEvery: 1).WeightDecay);
        // Local SGD sends model changes; error feedback alone and dense wires leave the momentum with the receivers.
        foreach (var (encoding, h) in new[] { (corrected, 4), (corrected with { MomentumCorrection = false }, 1), (new ShareEncoding(WirePrecision.Bf16), 1) })
        {
            Assert.Equal(0, encoding.SenderMomentum(0.9, h));
            Assert.Same(options, encoding.ReceiverOptions(options, h));
        }
    }

    [Theory]
    [InlineData("topk:0")]
    [InlineData("topk:1.5")]
    [InlineData("topk:x")]
    [InlineData("topk:NaN")]
    [InlineData("randk:0.1")]
    [InlineData("topk-ef:2")]
    public void A_compression_that_is_not_one_is_refused_with_the_form(string text)
    {
        Assert.Null(ShareEncoding.ParseCompress(text, out var error));
        Assert.Contains("topk:F", error);
    }

    [Theory]
    [InlineData(WirePrecision.Fp32, 0.01)]
    [InlineData(WirePrecision.Bf16, 0.01)]
    [InlineData(WirePrecision.Fp16, 1)]
    public void The_return_path_keeps_the_precision_and_every_value(WirePrecision precision, double kept)
    {
        var returnPath = new ShareEncoding(precision, kept, 256).Dense;
        Assert.Equal(new ShareEncoding(precision, 1, 256), returnPath);
        Assert.False(returnPath.IsSparse);
        Assert.Equal(precision == WirePrecision.Fp32, returnPath.IsIdentity);
    }
}
