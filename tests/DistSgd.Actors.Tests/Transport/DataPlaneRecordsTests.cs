using DistSgd.Actors.Transport;

namespace DistSgd.Actors.Tests.Transport;

/// <summary>The encrypted data plane's records as pure functions: sealing, opening in place, and each refusal.</summary>
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

    private static RecordRefusal? Open(RecordOpener opener, byte[] record, out byte[] data)
    {
        var header = record.AsSpan(0, DataPlaneRecords.HeaderSize);
        data = record[DataPlaneRecords.HeaderSize..^DataPlaneRecords.TagSize];
        return opener.Judge(header, data.Length, exact: false) ?? opener.Open(header, data, record.AsSpan(record.Length - DataPlaneRecords.TagSize));
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
    public void A_sealed_record_opens_in_place_to_its_plaintext_and_records_follow_in_order()
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
