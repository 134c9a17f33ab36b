using DistSgd.Actors.Transport;

namespace DistSgd.Actors.Tests.Transport;

/// <summary>The encrypted data plane's records as pure functions: sealing, opening, and each refusal.</summary>
public sealed class DataPlaneRecordsTests
{
    private static readonly byte[] ClientKey = Enumerable.Range(0, 32).Select(i => (byte)i).ToArray();
    private static readonly byte[] ServerKey = Enumerable.Range(0, 32).Select(i => (byte)(100 + i)).ToArray();
    private static readonly byte[] ServerNonce = new byte[32];
    private static readonly byte[] ClientNonce = Enumerable.Repeat((byte)7, 32).ToArray();

    private static byte[] Key(RecordDirection direction = RecordDirection.ClientToServer, int node = 1, byte[]? serverNonce = null) =>
        DataPlaneRecords.DeriveKey(ClientKey, ServerKey, 42, node, serverNonce ?? ServerNonce, ClientNonce, direction);

    private static (byte[] Record, int Size) Sealed(RecordSealer sealer, byte[] plaintext)
    {
        var record = new byte[plaintext.Length + DataPlaneRecords.HeaderSize + DataPlaneRecords.TagSize];
        return (record, sealer.Seal(plaintext, record));
    }

    private static RecordRefusal? Open(RecordOpener opener, byte[] record, out byte[] data, int? maxLength = null)
    {
        var header = record.AsSpan(0, DataPlaneRecords.HeaderSize);
        data = new byte[record.Length - DataPlaneRecords.HeaderSize - DataPlaneRecords.TagSize];
        return opener.Judge(header, maxLength ?? data.Length, exact: false)
            ?? opener.Open(header, record.AsSpan(DataPlaneRecords.HeaderSize, DataPlaneRecords.LengthOf(header) + DataPlaneRecords.TagSize),
                           data.AsSpan(0, DataPlaneRecords.LengthOf(header)));
    }

    [Fact]
    public void Keys_differ_by_direction_node_and_nonce_and_agree_on_both_ends()
    {
        var keys = new[] { Key(), Key(RecordDirection.ServerToClient), Key(node: 2), Key(serverNonce: Enumerable.Repeat((byte)1, 32).ToArray()) };
        Assert.Equal(keys.Length, keys.Select(Convert.ToHexString).Distinct().Count());
        Assert.Equal(Key(), Key());
        Assert.Equal(DataPlaneRecords.KeySize, Key().Length);
    }

    [Fact]
    public void A_sealed_record_opens_to_its_plaintext_and_records_follow_in_order()
    {
        using var sealer = new RecordSealer(Key(), RecordDirection.ClientToServer);
        using var opener = new RecordOpener(Key(), RecordDirection.ClientToServer);
        for (int i = 0; i < 3; i++)
        {
            var plaintext = Enumerable.Range(0, 1000 + i).Select(x => (byte)(x * 3 + i)).ToArray();
            var (record, size) = Sealed(sealer, plaintext);
            Assert.Equal(record.Length, size);
            Assert.NotEqual(plaintext, record[DataPlaneRecords.HeaderSize..^DataPlaneRecords.TagSize]);
            Assert.Null(Open(opener, record, out var data));
            Assert.Equal(plaintext, data);
        }
        Assert.Equal((3UL, 3UL), (sealer.Counter, opener.Expected));
    }

    [Fact]
    public void Each_change_is_refused_by_kind_and_the_counter_stays()
    {
        using var sealer = new RecordSealer(Key(), RecordDirection.ClientToServer);
        using var opener = new RecordOpener(Key(), RecordDirection.ClientToServer);
        var first = Sealed(sealer, new byte[64]).Record;
        var second = Sealed(sealer, new byte[64]).Record;
        Assert.Equal(RecordRefusal.Reordered, Open(opener, second, out _));
        foreach (int at in new[] { 4, 20, first.Length - 1 })   // the length in the header, the ciphertext, the tag
        {
            var flipped = (byte[])first.Clone();
            flipped[at] ^= 1;
            Assert.Equal(at == 4 ? RecordRefusal.BadLength : RecordRefusal.Tampered, Open(opener, flipped, out _));
        }
        Assert.Equal(0UL, opener.Expected);
        Assert.Null(Open(opener, first, out _));
        Assert.Equal(RecordRefusal.Replayed, Open(opener, first, out _));
        Assert.Null(Open(opener, second, out _));
    }

    [Fact]
    public void A_record_of_the_other_direction_or_another_key_does_not_open()
    {
        using var sealer = new RecordSealer(Key(), RecordDirection.ServerToClient);
        using var opener = new RecordOpener(Key(), RecordDirection.ClientToServer);
        using var other = new RecordOpener(Key(node: 2), RecordDirection.ServerToClient);
        var record = Sealed(sealer, new byte[32]).Record;
        Assert.Equal(RecordRefusal.Tampered, Open(opener, record, out _));
        Assert.Equal(RecordRefusal.Tampered, Open(other, record, out _));
    }

    [Fact]
    public void The_cipher_is_aegis_256_with_a_256_bit_tag()
    {
        // AEGIS-256 test vector 1 of RFC 10032 (draft-irtf-cfrg-aegis-aead) (key 0x01 0x00…, nonce 0x10 0x00 0x02 0x00…, no AAD, 16 zero bytes).
        var key = new byte[32];
        key[0] = 0x10;
        key[1] = 0x01;
        var nonce = new byte[32];
        nonce[0] = 0x10;
        nonce[2] = 0x02;
        using var k = NSec.Cryptography.Key.Import(DataPlaneRecords.Algorithm, key, NSec.Cryptography.KeyBlobFormat.RawSymmetricKey);
        var sealedBytes = new byte[16 + DataPlaneRecords.TagSize];
        DataPlaneRecords.Algorithm.Encrypt(k, nonce, default, new byte[16], sealedBytes);
        Assert.Equal("754FC3D8C973246DCC6D741412A4B236", Convert.ToHexString(sealedBytes, 0, 16));
        Assert.Equal("1181A1D18091082BF0266F66297D167D2E68B845F61A3B0527D31FC7B7B89F13", Convert.ToHexString(sealedBytes, 16, 32));
        Assert.Equal((32, 32, 32), (DataPlaneRecords.Algorithm.KeySize, DataPlaneRecords.Algorithm.NonceSize, DataPlaneRecords.Algorithm.TagSize));
        Assert.Equal(DataPlaneRecords.TagSize, DataPlaneRecords.Algorithm.TagSize);
    }

    [Fact]
    public void The_nonce_is_the_direction_and_the_counter_and_never_repeats_within_a_key()
    {
        var nonce = Enumerable.Repeat((byte)0xFF, DataPlaneRecords.NonceSize).ToArray();
        DataPlaneRecords.Nonce(nonce, RecordDirection.ServerToClient, 0x0102030405060708);
        Assert.Equal("02000000" + "0807060504030201" + new string('0', 40), Convert.ToHexString(nonce));
        var seen = new HashSet<string>();
        foreach (var direction in new[] { RecordDirection.ClientToServer, RecordDirection.ServerToClient })
            foreach (ulong counter in new ulong[] { 0, 1, 2, 1UL << 32, ulong.MaxValue - 1 })
            {
                DataPlaneRecords.Nonce(nonce, direction, counter);
                Assert.True(seen.Add(Convert.ToHexString(nonce)));
            }

        // The same bytes sealed twice are two different ciphertexts: the counter moved on.
        using var sealer = new RecordSealer(Key(), RecordDirection.ClientToServer);
        var a = Sealed(sealer, new byte[100]).Record;
        var b = Sealed(sealer, new byte[100]).Record;
        Assert.NotEqual(a[DataPlaneRecords.HeaderSize..], b[DataPlaneRecords.HeaderSize..]);
        Assert.Equal(1UL, BitConverter.ToUInt64(b, 8));
    }

    [Fact]
    public void A_changed_length_that_the_header_check_lets_through_fails_the_tag()
    {
        using var sealer = new RecordSealer(Key(), RecordDirection.ClientToServer);
        using var opener = new RecordOpener(Key(), RecordDirection.ClientToServer);
        var record = Sealed(sealer, new byte[1000]).Record;
        record[4] ^= 8;   // 1000 → 992 bytes: a length the frame allows, but the header is associated data
        Assert.Equal(RecordRefusal.Tampered, Open(opener, record, out var data, maxLength: 1000));
        Assert.All(data, b => Assert.Equal(0, b));
        Assert.Equal(0UL, opener.Expected);
    }

    [Fact]
    public void A_flipped_bit_anywhere_in_the_tag_or_a_tag_cut_to_16_bytes_is_refused()
    {
        using var sealer = new RecordSealer(Key(), RecordDirection.ClientToServer);
        using var opener = new RecordOpener(Key(), RecordDirection.ClientToServer);
        var record = Sealed(sealer, Enumerable.Range(0, 200).Select(i => (byte)i).ToArray()).Record;
        for (int at = record.Length - DataPlaneRecords.TagSize; at < record.Length; at++)
        {
            var flipped = (byte[])record.Clone();
            flipped[at] ^= 0x80;
            Assert.Equal(RecordRefusal.Tampered, Open(opener, flipped, out _));
        }
        Assert.ThrowsAny<ArgumentException>(() => opener.Open(record.AsSpan(0, DataPlaneRecords.HeaderSize), record.AsSpan(DataPlaneRecords.HeaderSize, 200 + 16), new byte[200]));
        Assert.Null(Open(opener, record, out var data));
        Assert.Equal(Enumerable.Range(0, 200).Select(i => (byte)i), data);
    }

    [Fact]
    public void A_record_opens_in_its_own_bytes()
    {
        using var sealer = new RecordSealer(Key(), RecordDirection.ClientToServer);
        using var opener = new RecordOpener(Key(), RecordDirection.ClientToServer);
        var plaintext = Enumerable.Range(0, 300).Select(i => (byte)(i * 7)).ToArray();
        var record = Sealed(sealer, plaintext).Record;
        var header = record[..DataPlaneRecords.HeaderSize];
        Assert.Null(opener.Judge(header, 300, exact: true) ?? opener.Open(header, record.AsSpan(DataPlaneRecords.HeaderSize), record.AsSpan(DataPlaneRecords.HeaderSize, 300)));
        Assert.Equal(plaintext, record[DataPlaneRecords.HeaderSize..(DataPlaneRecords.HeaderSize + 300)]);
    }

    [Fact]
    public void A_record_sealed_under_the_other_directions_key_does_not_open_with_the_same_nonce()
    {
        using var sealer = new RecordSealer(Key(RecordDirection.ServerToClient), RecordDirection.ClientToServer);
        using var opener = new RecordOpener(Key(), RecordDirection.ClientToServer);
        Assert.Equal(RecordRefusal.Tampered, Open(opener, Sealed(sealer, new byte[48]).Record, out _));
        Assert.Throws<ArgumentException>(() => new RecordOpener(new byte[16], RecordDirection.ClientToServer));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(DataPlaneRecords.MaxLength + 1)]
    public void A_record_header_with_a_length_out_of_range_is_refused(int length)
    {
        var header = new byte[DataPlaneRecords.HeaderSize];
        DataPlaneRecords.WriteHeader(header, length, 0);
        Assert.Equal(RecordRefusal.BadLength, DataPlaneRecords.JudgeHeader(header, 0, int.MaxValue, exact: false));
    }
}
