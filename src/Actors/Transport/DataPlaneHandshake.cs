using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace DistSgd.Actors.Transport;

/// <summary>
/// Why the data plane closed an inbound connection before it proved which node it is. None of these is ever a node's
/// loss: the connection only claimed a node, so the node it named keeps its standing. Each is counted by kind.
/// </summary>
public enum ConnectionRefusal
{
    /// <summary>The source address is not a cluster member's (distsgd.direct.members-only); no byte was read.</summary>
    NotMember,

    /// <summary>The TLS handshake failed (no certificate of this node's CA, or one for another host).</summary>
    TlsFailed,

    /// <summary>
    /// Too many connections were still proving themselves (<see cref="DataPlaneHandshake.UnprovenCap"/>): this one,
    /// the oldest silent one (else the oldest), was closed to make room for a new one (<see cref="DataPlaneHandshake.ToClose"/>).
    /// </summary>
    UnprovenCap,

    /// <summary>The handshake did not arrive whole within distsgd.direct.frame-timeout (a stall, a trickle).</summary>
    HandshakeTimeout,

    /// <summary>The peer closed the connection before its handshake was whole.</summary>
    HandshakeClosed,

    /// <summary>The peer sent a data frame instead of its handshake (a forged or stale sender).</summary>
    FrameBeforeHandshake,

    /// <summary>The peer's first bytes are neither a handshake nor a frame.</summary>
    Garbage,

    /// <summary>A handshake of another run.</summary>
    WrongRun,

    /// <summary>A handshake naming a node index out of range, or one whose key this node does not know.</summary>
    UnknownNode,

    /// <summary>A handshake whose HMAC does not match the key advertised for the node it names (wrong key, replayed answer).</summary>
    BadProof,
}

/// <summary>Which side of a data connection computes a <see cref="DataPlaneHandshake.Mac"/>; the two never match each other.</summary>
public enum HandshakeRole
{
    /// <summary>The connecting node, proving the node index it claims.</summary>
    Client,

    /// <summary>The listening node, proving it holds the key advertised with the endpoint the client dialled.</summary>
    Server,
}

/// <summary>
/// The mutual challenge-response a data connection runs before its first frame: each node makes a fresh random
/// <see cref="KeySize"/>-byte key at start-up and advertises it with its data endpoint over the control plane; a
/// connection proves which node it is by an HMAC-SHA256 under that node's key over both sides' fresh nonces.
/// </summary>
/// <remarks>
/// <code>
/// server → client  hello  (44 bytes): u32 "DSGH" | u64 run hash | server nonce[32]
/// client → server  answer (80 bytes): u32 "DSGA" | u64 run hash | i32 node index | client nonce[32] | client MAC[32]
/// server → client  proof  (32 bytes): server MAC[32]
/// MAC = HMAC-SHA256(key, "distsgd data-plane v1 " + client|server ‖ run hash ‖ node index ‖ server nonce ‖ client nonce)
/// </code>
/// The client's MAC is under its own key (the server checks it against the key advertised for the index it names);
/// the server's MAC is under the server's key (the client checks it against the key advertised with the endpoint).
/// A fresh server nonce makes a recorded answer useless; the role in the MAC keeps one side's proof from serving as
/// the other's. All integers little-endian, like <see cref="FrameHeader"/>. Everything here is pure: the sockets
/// are the <see cref="DirectDataPlane"/>'s.
/// </remarks>
public static class DataPlaneHandshake
{
    public const int KeySize = 32;
    public const int NonceSize = 32;
    public const int MacSize = 32;
    public const uint HelloMagic = 0x48475344;    // "DSGH" read little-endian
    public const uint AnswerMagic = 0x41475344;   // "DSGA"
    public const int HelloSize = 4 + 8 + NonceSize;
    public const int AnswerSize = 4 + 8 + 4 + NonceSize + MacSize;
    public const int ProofSize = MacSize;

    /// <summary>The bytes of an answer read first: its magic, which tells a handshake from a frame or garbage.</summary>
    public const int OpeningSize = 4;

    private static readonly byte[] ClientLabel = Encoding.ASCII.GetBytes("distsgd data-plane v1 client");
    private static readonly byte[] ServerLabel = Encoding.ASCII.GetBytes("distsgd data-plane v1 server");

    /// <summary>The refusal's name in the dropped-message counts (metrics, summary.json): refused_not_member, refused_bad_proof, …</summary>
    public static string Name(ConnectionRefusal refusal) => refusal switch
    {
        ConnectionRefusal.NotMember => "refused_not_member",
        ConnectionRefusal.TlsFailed => "refused_tls",
        ConnectionRefusal.UnprovenCap => "refused_unproven_cap",
        ConnectionRefusal.HandshakeTimeout => "refused_handshake_timeout",
        ConnectionRefusal.HandshakeClosed => "refused_handshake_closed",
        ConnectionRefusal.FrameBeforeHandshake => "refused_frame_before_handshake",
        ConnectionRefusal.Garbage => "refused_garbage",
        ConnectionRefusal.WrongRun => "refused_wrong_run",
        ConnectionRefusal.UnknownNode => "refused_unknown_node",
        ConnectionRefusal.BadProof => "refused_bad_proof",
        _ => throw new ArgumentOutOfRangeException(nameof(refusal), refusal, null),
    };

    /// <summary>A fresh random key (a node's, made once per data plane) or nonce.</summary>
    public static byte[] NewRandom(int size = KeySize) => RandomNumberGenerator.GetBytes(size);

    /// <summary>How many connections may be proving themselves at once: enough for every sender to reconnect twice, and a few strays.</summary>
    public static int UnprovenCap(int senderCount) => 2 * senderCount + 8;

    /// <summary>
    /// Which connection still proving itself to close so that a new one can start, or −1 when there is room
    /// (fewer than <see cref="UnprovenCap"/>). <paramref name="spoke"/> holds, oldest first, whether each has sent any
    /// of its answer yet: the oldest silent one goes first (it had the longest to speak), else the oldest. A flood of
    /// idle connections thus never keeps a real node out: its connection answers the hello within a round trip and
    /// only a flood of more than the cap in that time could push it out.
    /// </summary>
    public static int ToClose(IReadOnlyList<bool> spoke, int senderCount)
    {
        if (spoke.Count < UnprovenCap(senderCount))
            return -1;
        for (int i = 0; i < spoke.Count; i++)
        {
            if (!spoke[i])
                return i;
        }
        return 0;
    }

    /// <summary>One line saying why a connection was refused (the log's reason for <paramref name="refusal"/>).</summary>
    public static string Describe(ConnectionRefusal refusal) => refusal switch
    {
        ConnectionRefusal.NotMember => "its address is not a cluster member's",
        ConnectionRefusal.TlsFailed => "the TLS handshake failed (no certificate of this cluster's CA?)",
        ConnectionRefusal.UnprovenCap => "too many connections were proving themselves at once; this one, the oldest, was closed",
        ConnectionRefusal.HandshakeTimeout => "its handshake did not arrive whole within the frame timeout",
        ConnectionRefusal.HandshakeClosed => "it closed before its handshake was whole",
        ConnectionRefusal.FrameBeforeHandshake => "it sent a data frame before proving which node it is",
        ConnectionRefusal.Garbage => "its first bytes are neither a handshake nor a frame",
        ConnectionRefusal.WrongRun => "its handshake is for another run",
        ConnectionRefusal.UnknownNode => "its handshake names a node index out of range or one whose key is not known",
        ConnectionRefusal.BadProof => "its handshake's HMAC does not match the key advertised for the node it names",
        _ => throw new ArgumentOutOfRangeException(nameof(refusal), refusal, null),
    };

    /// <summary>True when <paramref name="key"/> can be a node's advertised key (the control plane carries it; a wrong size is refused there).</summary>
    public static bool IsKey(byte[]? key) => key is { Length: KeySize };

    /// <summary>HMAC-SHA256 of one side of the handshake (the layout in the remarks).</summary>
    public static byte[] Mac(ReadOnlySpan<byte> key, HandshakeRole role, ulong runHash, int node, ReadOnlySpan<byte> serverNonce, ReadOnlySpan<byte> clientNonce)
    {
        var label = role == HandshakeRole.Client ? ClientLabel : ServerLabel;
        var message = new byte[label.Length + 8 + 4 + NonceSize + NonceSize];
        label.CopyTo(message, 0);
        var rest = message.AsSpan(label.Length);
        BinaryPrimitives.WriteUInt64LittleEndian(rest, runHash);
        BinaryPrimitives.WriteInt32LittleEndian(rest[8..], node);
        serverNonce.CopyTo(rest[12..]);
        clientNonce.CopyTo(rest[(12 + NonceSize)..]);
        return HMACSHA256.HashData(key, message);
    }

    /// <summary>Writes the server's hello into <paramref name="b"/> (<see cref="HelloSize"/> bytes).</summary>
    public static void WriteHello(Span<byte> b, ulong runHash, ReadOnlySpan<byte> serverNonce)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(b, HelloMagic);
        BinaryPrimitives.WriteUInt64LittleEndian(b[4..], runHash);
        serverNonce.CopyTo(b[12..]);
    }

    /// <summary>
    /// The client's reading of a hello: null when it is one of <paramref name="runHash"/>'s run (its nonce is then
    /// bytes 12…43), else why the client does not answer it.
    /// </summary>
    public static string? CheckHello(ReadOnlySpan<byte> hello, ulong runHash)
    {
        if (BinaryPrimitives.ReadUInt32LittleEndian(hello) != HelloMagic)
            return "the endpoint did not open a DistSgd data-plane handshake";
        ulong theirs = BinaryPrimitives.ReadUInt64LittleEndian(hello[4..]);
        return theirs == runHash ? null : $"the endpoint serves another run (run hash {theirs:x16}, this run's {runHash:x16})";
    }

    /// <summary>The server nonce of a hello that <see cref="CheckHello"/> accepted.</summary>
    public static ReadOnlySpan<byte> NonceOf(ReadOnlySpan<byte> hello) => hello.Slice(12, NonceSize);

    /// <summary>Writes the client's answer for node <paramref name="node"/> under its own <paramref name="key"/> (<see cref="AnswerSize"/> bytes).</summary>
    public static void WriteAnswer(Span<byte> b, ReadOnlySpan<byte> key, ulong runHash, int node, ReadOnlySpan<byte> serverNonce, ReadOnlySpan<byte> clientNonce)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(b, AnswerMagic);
        BinaryPrimitives.WriteUInt64LittleEndian(b[4..], runHash);
        BinaryPrimitives.WriteInt32LittleEndian(b[12..], node);
        clientNonce.CopyTo(b[16..]);
        Mac(key, HandshakeRole.Client, runHash, node, serverNonce, clientNonce).CopyTo(b[(16 + NonceSize)..]);
    }

    /// <summary>
    /// Judges the first <see cref="OpeningSize"/> bytes of what a client sent: null when they open an answer, else
    /// <see cref="ConnectionRefusal.FrameBeforeHandshake"/> (a frame's magic) or <see cref="ConnectionRefusal.Garbage"/>.
    /// </summary>
    public static ConnectionRefusal? JudgeOpening(ReadOnlySpan<byte> opening) => BinaryPrimitives.ReadUInt32LittleEndian(opening) switch
    {
        AnswerMagic => null,
        FrameHeader.Magic => ConnectionRefusal.FrameBeforeHandshake,
        _ => ConnectionRefusal.Garbage,
    };

    /// <summary>The node index an answer claims (read before its key is looked up).</summary>
    public static int ClaimedNode(ReadOnlySpan<byte> answer) => BinaryPrimitives.ReadInt32LittleEndian(answer[12..]);

    /// <summary>
    /// Judges a whole answer against this server's hello: null when it proves node <see cref="ClaimedNode"/> under
    /// <paramref name="key"/> (the key advertised for that node, null when none is known), else the refusal. The MACs
    /// are compared in constant time.
    /// </summary>
    public static ConnectionRefusal? JudgeAnswer(ReadOnlySpan<byte> answer, ulong runHash, int senderCount, ReadOnlySpan<byte> serverNonce, byte[]? key)
    {
        if (JudgeOpening(answer) is { } opening)
            return opening;
        if (BinaryPrimitives.ReadUInt64LittleEndian(answer[4..]) != runHash)
            return ConnectionRefusal.WrongRun;
        int node = ClaimedNode(answer);
        if ((uint)node >= (uint)senderCount || !IsKey(key))
            return ConnectionRefusal.UnknownNode;
        var expected = Mac(key, HandshakeRole.Client, runHash, node, serverNonce, answer.Slice(16, NonceSize));
        return CryptographicOperations.FixedTimeEquals(expected, answer.Slice(16 + NonceSize, MacSize)) ? null : ConnectionRefusal.BadProof;
    }

    /// <summary>The server's proof for an answer it accepted, under its own <paramref name="key"/>.</summary>
    public static byte[] Proof(ReadOnlySpan<byte> key, ulong runHash, ReadOnlySpan<byte> answer, ReadOnlySpan<byte> serverNonce) =>
        Mac(key, HandshakeRole.Server, runHash, ClaimedNode(answer), serverNonce, answer.Slice(16, NonceSize));

    /// <summary>The client's check of the server's proof against the key advertised with the endpoint it dialled (constant time).</summary>
    public static bool CheckProof(ReadOnlySpan<byte> proof, ReadOnlySpan<byte> serverKey, ulong runHash, ReadOnlySpan<byte> answer, ReadOnlySpan<byte> serverNonce) =>
        CryptographicOperations.FixedTimeEquals(proof, Proof(serverKey, runHash, answer, serverNonce));
}
