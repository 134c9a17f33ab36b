using System.Buffers.Binary;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using NSec.Cryptography;

namespace DistSgd.Actors.Transport;

/// <summary>Why an encrypted data connection refused a record after its handshake; each closes the connection and is counted by kind.</summary>
public enum RecordRefusal
{
    /// <summary>The record's tag does not match (a flipped bit in its header, ciphertext or tag, or a forged record).</summary>
    Tampered,

    /// <summary>The record's counter is below the next expected one (a record sent again).</summary>
    Replayed,

    /// <summary>The record's counter is above the next expected one (records reordered or dropped).</summary>
    Reordered,

    /// <summary>The record's length is not the one the frame needs (or it is not a record at all).</summary>
    BadLength,

    /// <summary>The connection ended in the middle of a record or of a frame.</summary>
    Truncated,
}

/// <summary>The direction of an encrypted data connection a key and a nonce belong to; frames go client → server only.</summary>
public enum RecordDirection : uint
{
    /// <summary>From the connecting node (the frame sender) to the listening node.</summary>
    ClientToServer = 1,

    /// <summary>From the listening node to the connecting node (no frames go this way; its key is never the other's).</summary>
    ServerToClient = 2,
}

/// <summary>
/// The encrypted data plane's records (<see href="../../../docs/decisions/0070-data-frames-as-aes-gcm-records.md">0070</see>,
/// <see href="../../../docs/decisions/0110-data-plane-records-in-aegis-256.md">0110</see>): once a data connection has
/// passed its TLS handshake and the <see cref="DataPlaneHandshake"/> inside it, frames go over the bare socket as
/// AEGIS-256 records under a key derived from that handshake.
/// </summary>
/// <remarks>
/// <code>
/// record: u32 "DSGR" | u32 length | u64 counter | ciphertext[length] | tag[32]
/// nonce  = u32 direction ‖ u64 counter ‖ 0[20]     (256 bits; the counter starts at 0 and never repeats under a key)
/// AAD    = the record's 16-byte header
/// key    = HKDF-SHA256(ikm = client node key ‖ server node key, salt = server nonce ‖ client nonce,
///                      info = "distsgd data-plane records v2 aegis256" ‖ direction ‖ run hash ‖ client node index), 32 bytes
/// </code>
/// A frame is one record of its 64-byte header, then its payload in records of at most the sender's chunk size.
/// The receiver expects the exact next counter, so a replayed, reordered or dropped record is refused before it is
/// decrypted; the header is authenticated, so a changed length or counter fails the tag. Everything here is pure:
/// the sockets are the <see cref="DirectDataPlane"/>'s.
/// </remarks>
public static class DataPlaneRecords
{
    public const uint Magic = 0x52475344;   // "DSGR" read little-endian
    public const int HeaderSize = 16;
    public const int TagSize = 32;
    public const int KeySize = 32;
    public const int NonceSize = 32;

    /// <summary>The records' AEAD: AEGIS-256 (libsodium), 256-bit key, nonce and tag.</summary>
    public static AeadAlgorithm Algorithm => AeadAlgorithm.Aegis256;

    /// <summary>The largest record's plaintext; a sender's chunks are at most this.</summary>
    public const int MaxLength = 1 << 20;

    /// <summary>The payload chunk the data plane seals per record: large enough to amortise the per-record cost, small enough to pipeline.</summary>
    public const int DefaultChunk = 256 << 10;

    private static readonly byte[] Label = Encoding.ASCII.GetBytes("distsgd data-plane records v2 aegis256");

    /// <summary>The refusal's name in the dropped-message counts: record_tampered, record_replayed, …</summary>
    public static string Name(RecordRefusal refusal) => refusal switch
    {
        RecordRefusal.Tampered => "record_tampered",
        RecordRefusal.Replayed => "record_replayed",
        RecordRefusal.Reordered => "record_reordered",
        RecordRefusal.BadLength => "record_bad_length",
        RecordRefusal.Truncated => "record_truncated",
        _ => throw new ArgumentOutOfRangeException(nameof(refusal), refusal, null),
    };

    /// <summary>The key of one direction of one connection (the layout in the remarks): only the two nodes of the handshake can compute it.</summary>
    public static byte[] DeriveKey(ReadOnlySpan<byte> clientKey, ReadOnlySpan<byte> serverKey, ulong runHash, int clientNode,
                                   ReadOnlySpan<byte> serverNonce, ReadOnlySpan<byte> clientNonce, RecordDirection direction)
    {
        var ikm = new byte[clientKey.Length + serverKey.Length];
        clientKey.CopyTo(ikm);
        serverKey.CopyTo(ikm.AsSpan(clientKey.Length));
        var salt = new byte[serverNonce.Length + clientNonce.Length];
        serverNonce.CopyTo(salt);
        clientNonce.CopyTo(salt.AsSpan(serverNonce.Length));
        var info = new byte[Label.Length + 4 + 8 + 4];
        Label.CopyTo(info, 0);
        BinaryPrimitives.WriteUInt32LittleEndian(info.AsSpan(Label.Length), (uint)direction);
        BinaryPrimitives.WriteUInt64LittleEndian(info.AsSpan(Label.Length + 4), runHash);
        BinaryPrimitives.WriteInt32LittleEndian(info.AsSpan(Label.Length + 12), clientNode);
        var key = HKDF.DeriveKey(HashAlgorithmName.SHA256, ikm, KeySize, salt, info);
        CryptographicOperations.ZeroMemory(ikm);
        return key;
    }

    /// <summary>Writes a record header.</summary>
    public static void WriteHeader(Span<byte> b, int length, ulong counter)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(b, Magic);
        BinaryPrimitives.WriteInt32LittleEndian(b[4..], length);
        BinaryPrimitives.WriteUInt64LittleEndian(b[8..], counter);
    }

    /// <summary>The plaintext length a header announces.</summary>
    public static int LengthOf(ReadOnlySpan<byte> header) => BinaryPrimitives.ReadInt32LittleEndian(header[4..]);

    /// <summary>
    /// Judges a record header before anything else of the record is read: null when it is the record
    /// <paramref name="expected"/> (counter) with a plaintext of 1 … <paramref name="maxLength"/> bytes (exactly it when
    /// <paramref name="exact"/>), else the refusal. Its tag still has to be checked (<see cref="RecordOpener.Open"/>).
    /// </summary>
    public static RecordRefusal? JudgeHeader(ReadOnlySpan<byte> header, ulong expected, int maxLength, bool exact)
    {
        if (BinaryPrimitives.ReadUInt32LittleEndian(header) != Magic)
            return RecordRefusal.BadLength;
        ulong counter = BinaryPrimitives.ReadUInt64LittleEndian(header[8..]);
        if (counter < expected)
            return RecordRefusal.Replayed;
        if (counter > expected)
            return RecordRefusal.Reordered;
        int length = LengthOf(header);
        return length <= 0 || length > Math.Min(maxLength, MaxLength) || (exact && length != maxLength) ? RecordRefusal.BadLength : null;
    }

    /// <summary>The 256-bit nonce of record <paramref name="counter"/> in <paramref name="direction"/> (its last 20 bytes zero).</summary>
    public static void Nonce(Span<byte> nonce, RecordDirection direction, ulong counter)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(nonce, (uint)direction);
        BinaryPrimitives.WriteUInt64LittleEndian(nonce[4..], counter);
        nonce[12..NonceSize].Clear();
    }
}

/// <summary>The AEGIS-256 key of one direction of one connection and the nonce of the record at hand.</summary>
public abstract class RecordCipher : IDisposable
{
    private readonly RecordDirection _direction;
    private readonly byte[] _nonce = new byte[DataPlaneRecords.NonceSize];

    protected RecordCipher(byte[] key, RecordDirection direction)
    {
        if (key.Length != DataPlaneRecords.KeySize)
            throw new ArgumentException($"a record key is {DataPlaneRecords.KeySize} bytes, not {key.Length}", nameof(key));
        Key = Key.Import(DataPlaneRecords.Algorithm, key, KeyBlobFormat.RawSymmetricKey);
        _direction = direction;
    }

    protected Key Key { get; }

    /// <summary>The nonce of record <paramref name="counter"/> of this direction (<see cref="DataPlaneRecords.Nonce"/>), valid until the next call.</summary>
    protected byte[] NonceOf(ulong counter)
    {
        DataPlaneRecords.Nonce(_nonce, _direction, counter);
        return _nonce;
    }

    public void Dispose() => Key.Dispose();
}

/// <summary>Seals the records of one direction of one connection, counting from 0; never reuses a counter. Not thread-safe (one sender).</summary>
public sealed class RecordSealer(byte[] key, RecordDirection direction) : RecordCipher(key, direction)
{
    private ulong _counter;

    /// <summary>The counter the next record gets.</summary>
    public ulong Counter => _counter;

    /// <summary>
    /// Seals <paramref name="plaintext"/> (1 … <see cref="DataPlaneRecords.MaxLength"/> bytes) as the next record into
    /// <paramref name="record"/>; returns the record's size (header + ciphertext + tag).
    /// </summary>
    public int Seal(ReadOnlySpan<byte> plaintext, Span<byte> record)
    {
        if (plaintext.IsEmpty || plaintext.Length > DataPlaneRecords.MaxLength)
            throw new ArgumentOutOfRangeException(nameof(plaintext), plaintext.Length, $"a record holds 1 … {DataPlaneRecords.MaxLength} bytes");
        if (_counter == ulong.MaxValue)
            throw new CryptographicException("the record counter is exhausted; the connection must be made anew");
        var header = record[..DataPlaneRecords.HeaderSize];
        DataPlaneRecords.WriteHeader(header, plaintext.Length, _counter);
        int end = DataPlaneRecords.HeaderSize + plaintext.Length + DataPlaneRecords.TagSize;
        DataPlaneRecords.Algorithm.Encrypt(Key, NonceOf(_counter), header, plaintext, record[DataPlaneRecords.HeaderSize..end]);
        _counter++;
        return end;
    }
}

/// <summary>Opens the records of one direction of one connection in order. Not thread-safe (one reader).</summary>
public sealed class RecordOpener(byte[] key, RecordDirection direction) : RecordCipher(key, direction)
{
    private ulong _expected;

    /// <summary>The counter the next record must carry.</summary>
    public ulong Expected => _expected;

    /// <summary>
    /// Judges a record header (<see cref="DataPlaneRecords.JudgeHeader"/>) against the next expected counter.
    /// </summary>
    public RecordRefusal? Judge(ReadOnlySpan<byte> header, int maxLength, bool exact) => DataPlaneRecords.JudgeHeader(header, _expected, maxLength, exact);

    /// <summary>
    /// Decrypts a record whose header <see cref="Judge"/> accepted: <paramref name="sealedData"/> is its ciphertext and
    /// tag, <paramref name="plaintext"/> (as long as the ciphertext; it may be the ciphertext's own bytes) receives its
    /// plaintext. Null when the tag matches (the counter then moves on), else <see cref="RecordRefusal.Tampered"/> (the
    /// plaintext is then zeroed, never to be used).
    /// </summary>
    public RecordRefusal? Open(ReadOnlySpan<byte> header, ReadOnlySpan<byte> sealedData, Span<byte> plaintext)
    {
        if (!DataPlaneRecords.Algorithm.Decrypt(Key, NonceOf(_expected), header, sealedData, plaintext))
        {
            plaintext.Clear();
            return RecordRefusal.Tampered;
        }
        _expected++;
        return null;
    }
}

/// <summary>
/// Moves sealed records over a blocking socket: what the encrypted data plane (and its benchmark) sends and reads.
/// A record is sealed into a send buffer and sent whole; a received record is read into a receive buffer and opened
/// from there into its destination, so each byte is copied once by the kernel and passed once through the cipher.
/// </summary>
public static class RecordSocket
{
    /// <summary>A send buffer for records of up to <paramref name="chunk"/> plaintext bytes.</summary>
    public static byte[] SendBuffer(int chunk) => GC.AllocateUninitializedArray<byte>(DataPlaneRecords.HeaderSize + chunk + DataPlaneRecords.TagSize);

    /// <summary>A receive buffer for <see cref="Receive"/>: a header and the largest record's ciphertext and tag.</summary>
    public static byte[] ReceiveBuffer() => SendBuffer(DataPlaneRecords.MaxLength);

    /// <summary>Seals <paramref name="plaintext"/> as records of at most <paramref name="buffer"/>'s chunk and sends each whole.</summary>
    public static void Send(Socket socket, RecordSealer sealer, ReadOnlySpan<byte> plaintext, byte[] buffer)
    {
        int chunk = buffer.Length - DataPlaneRecords.HeaderSize - DataPlaneRecords.TagSize;
        for (int at = 0; at < plaintext.Length; at += chunk)
        {
            int n = sealer.Seal(plaintext.Slice(at, Math.Min(chunk, plaintext.Length - at)), buffer);
            for (int sent = 0; sent < n;)
                sent += socket.Send(buffer, sent, n - sent, SocketFlags.None);
        }
    }

    /// <summary>
    /// Reads and opens records until <paramref name="target"/> is full: null when it holds the plaintext, else why the
    /// records were refused (<see cref="RecordRefusal.Truncated"/> when the peer closed first). With
    /// <paramref name="exact"/> the whole target must be one record. <paramref name="buffer"/> is a <see cref="ReceiveBuffer"/>.
    /// </summary>
    public static RecordRefusal? Receive(Socket socket, RecordOpener opener, Span<byte> target, byte[] buffer, bool exact = false)
    {
        var header = buffer.AsSpan(0, DataPlaneRecords.HeaderSize);
        for (int at = 0; at < target.Length;)
        {
            if (ReceiveExact(socket, header) < header.Length)
                return RecordRefusal.Truncated;
            if (opener.Judge(header, target.Length - at, exact) is { } refused)
                return refused;
            int length = DataPlaneRecords.LengthOf(header);
            var sealedData = buffer.AsSpan(DataPlaneRecords.HeaderSize, length + DataPlaneRecords.TagSize);
            if (ReceiveExact(socket, sealedData) < sealedData.Length)
                return RecordRefusal.Truncated;
            if (opener.Open(header, sealedData, target.Slice(at, length)) is { } tampered)
                return tampered;
            at += length;
        }
        return null;
    }

    /// <summary>Reads until <paramref name="buffer"/> is full or the peer closes; returns the bytes read.</summary>
    public static int ReceiveExact(Socket socket, Span<byte> buffer)
    {
        int read = 0;
        while (read < buffer.Length)
        {
            int n = socket.Receive(buffer[read..]);
            if (n == 0)
                return read;
            read += n;
        }
        return read;
    }
}
