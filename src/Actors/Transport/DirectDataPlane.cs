using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Security.Authentication;
using System.Text;
using DistSgd.Actors.Security;
using DistSgd.Numerics.Compression;
using DistSgd.Numerics.Tensors;

namespace DistSgd.Actors.Transport;

/// <summary>Which transport carries the vector payloads of a step (distsgd.transport).</summary>
public enum PayloadTransport
{
    /// <summary>Inside Akka messages and DistributedPubSub: the reference path.</summary>
    Akka,

    /// <summary>
    /// Over the data plane (<see cref="DirectDataPlane"/>): TCP connections between the nodes; Akka keeps the control
    /// plane. "direct" is the data plane's name in the user's configuration (distsgd.transport = direct,
    /// <c>--transport direct</c>); in the code it is the data plane, and one of its TCP connections a data connection.
    /// </summary>
    Direct,
}

/// <summary>The vector message a data-plane frame carries; the actor receives the matching record.</summary>
public enum FrameKind : byte
{
    /// <summary>Master → worker: <c>ComputeGradient</c> (θ).</summary>
    ComputeGradient = 1,

    /// <summary>Worker → master: <c>GradientReply</c>.</summary>
    GradientReply = 2,

    /// <summary>Peer → peer: <c>GradientShare</c>.</summary>
    GradientShare = 3,

    /// <summary>
    /// Peer → peer: <c>CollectivePart</c>, a slice or segment of an all-reduce (distsgd.collective = ring or pairwise). Its
    /// header's shard is the round (pairwise) or hop (ring), its epoch the offset of the values in the vector, its step in
    /// epoch the node whose sample count, loss sum and compute seconds it carries (−1: none).
    /// </summary>
    CollectivePart = 4,
}

/// <summary>
/// Socket reader → its owning actor (a local message, never on the network): the data connection that proved it is
/// node <paramref name="Sender"/> (<see cref="DataPlaneHandshake"/>) closed (the node stopped, or it sent a malformed
/// frame and was cut off). The actor treats that sender as lost for the open step, like an unreachable member; its
/// next frame, on a new connection, is accepted again. A connection that never proved a node never sends this.
/// </summary>
public sealed record DataConnectionLost(int Sender, string Reason);

/// <summary>
/// Turns a frame that arrived whole into the mode's message (ComputeGradient, GradientReply, GradientShare):
/// the data plane knows frames, the modes know their messages. <paramref name="runId"/> is the run's id, or a
/// foreign one that cannot match when the frame's run hash differs. <paramref name="finite"/>: for a gradient frame
/// (GradientReply, GradientShare), whether every value is finite, judged by the reader as the bytes arrived
/// (<see cref="FiniteValues"/>); null for other kinds. <paramref name="entries"/>: a sparse gradient's entries as decoded
/// (<paramref name="values"/> is +0 everywhere else; decision 0141), else null.
/// </summary>
public delegate object FrameDecoder(in FrameHeader header, string runId, float[] values, bool? finite, SparseVector? entries);

/// <summary>
/// The fixed 64-byte header of a data-plane frame, little-endian, followed by its payload: <see cref="Count"/> raw
/// float32, or a gradient in the run's <see cref="ShareEncoding"/> (<see cref="Encoding"/> = its id):
/// <code>
///  0 u32 magic "DSGD"   4 u8 kind  5 u8 version  6 u16 shard   8 u64 run id hash (FNV-1a of its UTF-8)
/// 16 i64 step          24 i32 sender                       28 i32 epoch      32 i32 step in epoch
/// 36 i32 sample count  40 f64 loss sum                     48 f64 compute seconds
/// 56 i32 count         60 u24 batch size  63 u8 encoding (bit 7: update)
/// </code>
/// A ComputeGradient frame carries the epoch's shard assignment: shard = the worker's shard index, sample count =
/// the number of shards (0: keep the shard of the worker's JoinRun), batch size = the worker's batch in a balanced
/// epoch (ComputeGradient.BatchSize; 0 = the run's). A CollectivePart frame gives three fields other meanings
/// (<see cref="FrameKind.CollectivePart"/>). Other kinds have shard and batch size 0.
/// Encoding 0 (dense float32, what every frame was before the wire formats) carries count float32; a dense 16-bit
/// one count 16-bit values; a sparse one count (index, value) entries of a gradient of the model's size (of no values
/// when the sample count is 0) (<see cref="ShareCodec"/>). A ComputeGradient frame with the update bit carries not θ but
/// the step's compressed update, dense in the gradients' precision (<see cref="ShareEncoding.Dense"/>), of the model's size; its loss sum is Σθ after the update
/// (a check). CollectivePart frames are dense, in the gradients' precision (encoding 0, 1 or 2).
/// </summary>
public readonly record struct FrameHeader(FrameKind Kind, ulong RunHash, long Step, int Sender, int Epoch, int StepInEpoch,
                                          int SampleCount, double LossSum, double ComputeSeconds, int Count, ushort Shard = 0,
                                          int BatchSize = 0, byte Encoding = 0, bool IsUpdate = false)
{
    public const int Size = 64;
    public const uint Magic = 0x44475344;   // "DSGD" read little-endian
    public const byte Version = 1;
    /// <summary>The largest batch size a frame carries (24 bits: the byte above it is the encoding).</summary>
    public const uint MaxBatchSize = 0xFFFFFF;

    public void Write(Span<byte> b)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(b, Magic);
        b[4] = (byte)Kind;
        b[5] = Version;
        BinaryPrimitives.WriteUInt16LittleEndian(b[6..], Shard);
        BinaryPrimitives.WriteUInt64LittleEndian(b[8..], RunHash);
        BinaryPrimitives.WriteInt64LittleEndian(b[16..], Step);
        BinaryPrimitives.WriteInt32LittleEndian(b[24..], Sender);
        BinaryPrimitives.WriteInt32LittleEndian(b[28..], Epoch);
        BinaryPrimitives.WriteInt32LittleEndian(b[32..], StepInEpoch);
        BinaryPrimitives.WriteInt32LittleEndian(b[36..], SampleCount);
        BinaryPrimitives.WriteDoubleLittleEndian(b[40..], LossSum);
        BinaryPrimitives.WriteDoubleLittleEndian(b[48..], ComputeSeconds);
        BinaryPrimitives.WriteInt32LittleEndian(b[56..], Count);
        if ((uint)BatchSize > MaxBatchSize)
            throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, $"a frame's batch size is 0 to {MaxBatchSize}");
        BinaryPrimitives.WriteInt32LittleEndian(b[60..], BatchSize | (Encoding | (IsUpdate ? 0x80 : 0)) << 24);
    }

    /// <summary>Parses a header; null when the magic, version, kind or the reserved bytes are wrong.</summary>
    public static FrameHeader? Read(ReadOnlySpan<byte> b)
    {
        if (BinaryPrimitives.ReadUInt32LittleEndian(b) != Magic || b[5] != Version || b[4] is < 1 or > 4
            || (b[4] is not ((byte)FrameKind.ComputeGradient or (byte)FrameKind.CollectivePart) && BinaryPrimitives.ReadUInt16LittleEndian(b[6..]) != 0)
            || (b[4] != (byte)FrameKind.ComputeGradient && (BinaryPrimitives.ReadUInt32LittleEndian(b[60..]) & MaxBatchSize) != 0)
            || (b[63] & 0x7F) > ShareEncoding.LargestId || (b[63] & 0x80) != 0 && b[4] != (byte)FrameKind.ComputeGradient
            || b[4] == (byte)FrameKind.CollectivePart && b[63] > (byte)WirePrecision.Fp16)
            return null;
        return new FrameHeader((FrameKind)b[4], BinaryPrimitives.ReadUInt64LittleEndian(b[8..]), BinaryPrimitives.ReadInt64LittleEndian(b[16..]),
            BinaryPrimitives.ReadInt32LittleEndian(b[24..]), BinaryPrimitives.ReadInt32LittleEndian(b[28..]),
            BinaryPrimitives.ReadInt32LittleEndian(b[32..]), BinaryPrimitives.ReadInt32LittleEndian(b[36..]),
            BinaryPrimitives.ReadDoubleLittleEndian(b[40..]), BinaryPrimitives.ReadDoubleLittleEndian(b[48..]),
            BinaryPrimitives.ReadInt32LittleEndian(b[56..]), BinaryPrimitives.ReadUInt16LittleEndian(b[6..]),
            BinaryPrimitives.ReadInt32LittleEndian(b[60..]) & (int)MaxBatchSize, (byte)(b[63] & 0x7F), (b[63] & 0x80) != 0);
    }

    /// <summary>Bytes of the whole frame: this header and its payload (<see cref="ShareEncoding.PayloadBytes(byte, int)"/>).</summary>
    public long FrameBytes => Size + ShareEncoding.PayloadBytes(Encoding, Count);

    /// <summary>FNV-1a 64 of the run id's UTF-8: the same on every node and .NET version (string.GetHashCode is not).</summary>
    public static ulong HashRunId(string runId)
    {
        ulong hash = 14695981039346656037UL;
        foreach (byte x in System.Text.Encoding.UTF8.GetBytes(runId))
            hash = (hash ^ x) * 1099511628211UL;
        return hash;
    }
}

/// <summary>What a <see cref="DirectDataPlane"/> of one run accepts and where it listens.</summary>
/// <param name="Accepts">The one frame kind this node's actor receives.</param>
/// <param name="SenderCount">Valid sender indices are 0 … SenderCount − 1; any other closes the connection.</param>
/// <param name="Hostname">Address to listen on (0.0.0.0: every interface).</param>
/// <param name="Port">Listening port; 0 picks a free one.</param>
/// <param name="FrameTimeout">How long a started frame may take to arrive whole, and a send to be taken by the kernel.</param>
/// <param name="AcceptFrom">Which source addresses may connect (cluster members); null accepts any.</param>
/// <param name="Tls">When set, every connection is TLS 1.2/1.3 with this node's certificate, both sides' certificates
/// checked against its CA (<see cref="NodeTls.Check"/>); null: plain TCP.</param>
/// <param name="Gradients">How the run's gradient frames (GradientReply, GradientShare) travel, sent and received;
/// null: dense float32. θ (ComputeGradient) always goes as float32, θ's updates as <see cref="ShareEncoding.Dense"/>.</param>
public sealed record DataPlaneOptions(string RunId, int ParameterCount, FrameKind Accepts, int SenderCount, string Hostname, int Port,
                                      TimeSpan FrameTimeout, int SocketBufferSize = 4 << 20, string? AdvertisedHost = null,
                                      Func<IPAddress, bool>? AcceptFrom = null, NodeTls? Tls = null, ShareEncoding? Gradients = null)
{
    /// <summary>
    /// The encoding of frames of <paramref name="kind"/>: gradients as <see cref="Gradients"/>, θ's updates and an
    /// all-reduce's parts in its precision, every value (<see cref="ShareEncoding.Dense"/>); θ whole as float32.
    /// </summary>
    public ShareEncoding EncodingOf(FrameKind kind, bool isUpdate = false) =>
        Gradients is null ? ShareEncoding.Fp32
        : kind is FrameKind.GradientReply or FrameKind.GradientShare ? Gradients
        : kind == FrameKind.ComputeGradient && isUpdate || kind == FrameKind.CollectivePart ? Gradients.Dense
        : ShareEncoding.Fp32;

    /// <summary>The largest encoded payload a frame of this run may have (0 when every frame is float32, sent and read in place).</summary>
    public long MaxEncodedPayloadBytes()
    {
        long largest = 0;
        foreach (var encoding in (ReadOnlySpan<ShareEncoding>)[EncodingOf(FrameKind.GradientShare), EncodingOf(FrameKind.ComputeGradient, isUpdate: true),
                                                               EncodingOf(FrameKind.CollectivePart)])
            if (!encoding.IsIdentity)
                largest = Math.Max(largest, encoding.MaxPayloadBytes(ParameterCount));
        return largest;
    }
}

/// <summary>
/// The direct side of the payload seam: a TCP listener per node and one outgoing connection per destination,
/// carrying the vector payloads of the steps as a <see cref="FrameHeader"/> and raw float32. Akka keeps the
/// control plane (membership, the step protocol); this only moves bytes.
/// </summary>
/// <remarks>
/// <para><b>Identity.</b> The plane makes a fresh random <see cref="Key"/> when it starts; the node advertises it with
/// its <see cref="Endpoint"/> over the control plane, and the owning actor tells the plane every other node's
/// endpoint and key as it learns them (<see cref="Trust"/>). Every connection runs the <see cref="DataPlaneHandshake"/>
/// before its first frame, within <see cref="DataPlaneOptions.FrameTimeout"/>: the connecting side proves the node
/// index it claims, the listening side that it holds the key advertised with the endpoint dialled. Afterwards every
/// frame must name the proven node. A connection that fails the handshake is closed and counted by kind
/// (<see cref="Refusals"/>) and never reported as a <see cref="DataConnectionLost"/>: only a proven connection's loss is
/// its node's; each refusal is also reported to <see cref="Refused"/> (the actors log them through a <see cref="RefusalLog"/>).
/// At most <see cref="DataPlaneHandshake.UnprovenCap"/> connections may be proving themselves at once; a new one beyond
/// that closes the oldest that has sent nothing yet, else the oldest (<see cref="DataPlaneHandshake.ToClose"/>), so a
/// flood of idle connections cannot keep a real node out. Frames carry no MAC: the handshake is once per connection, and nothing per frame changed.</para>
/// <para><b>Receiving.</b> One thread per inbound connection reads with blocking <see cref="Socket.Receive(Span{byte})"/>
/// straight into the float[] of the record it delivers (no intermediate buffer: the kernel copies once into the
/// array the actor keeps). A frame is checked before its payload is read: magic, version, a kind this node accepts,
/// a sender index in range and the same as earlier frames of the connection, a float count from 0 to the model's
/// size. A failed check, or a frame that stops arriving for <see cref="DataPlaneOptions.FrameTimeout"/>, closes the
/// connection and is counted; nothing partial is ever delivered. Run id, step, length and finiteness are judged by
/// the actor's <see cref="Steps.StepGather"/> exactly as on the Akka path (a foreign run hash is delivered with a
/// run id that cannot match), finiteness with the reader's judgment: the reader checks a gradient's values
/// (<see cref="FiniteValues"/>) part by part as each <see cref="Socket.Receive(Span{byte})"/> brings them in, while they are
/// in its core's cache and the rest of the frame is still on its way, and the message carries the result
/// (<see cref="Protocol.IGradientContribution.FiniteOnArrival"/>), so the actor does not read the vector once more
/// before its update.</para>
/// <para><b>Sending.</b> <see cref="Send"/> runs on the calling actor's thread and returns when the kernel has the
/// bytes (blocking sockets, Nagle off); a failure or <see cref="DataPlaneOptions.FrameTimeout"/> closes the connection
/// and returns false, and the next send reconnects.</para>
/// <para><b>TLS</b> (<see cref="DataPlaneOptions.Tls"/>): each connection is an <see cref="SslStream"/> over the socket, the
/// handshake bounded by the frame timeout and done on the reader thread (inbound) or the sending actor's thread
/// (outbound); a peer without a certificate of this node's CA is refused before a frame is read, and counted in
/// <see cref="RefusedConnections"/>. After the TLS and identity handshakes, frames go as AEGIS-128L records on the
/// bare socket (<see cref="DataPlaneRecords"/>), each read into the connection's receive buffer and opened from there
/// into the message's array; a refused record is counted in <see cref="RecordRefusals"/>. Without TLS the sockets carry plain frames, exactly as before.</para>
/// </remarks>
public sealed class DirectDataPlane : IDisposable
{
    private readonly DataPlaneOptions _options;
    private readonly Action<object> _deliver;
    private readonly FrameDecoder _decode;
    private readonly ulong _runHash;
    private readonly Socket _listener;
    private readonly Thread _acceptThread;
    private readonly Dictionary<string, Outgoing> _outgoing = new(StringComparer.Ordinal);
    private readonly List<Socket> _incoming = new();
    private readonly byte[] _sendHeader = new byte[FrameHeader.Size];
    /// <summary>An encoded gradient's payload before it is sent (empty when gradients go as float32).</summary>
    private readonly byte[] _sendPayload;
    /// <summary>Arrays given back, by length: whole vectors, and the slices and segments of an all-reduce (a few lengths per run).</summary>
    private readonly ConcurrentDictionary<int, ConcurrentQueue<float[]>> _free = new();
    /// <summary>
    /// Sparse gradients given back with their entries: each array all +0 (its entries cleared when it came back), so a sparse
    /// frame is decoded by writing its entries alone (decision 0141). Apart from <see cref="_free"/>, whose arrays are not clear.
    /// </summary>
    private readonly ConcurrentQueue<(float[] Values, SparseVector Entries)> _clear = new();
    private volatile bool _disposed;
    private long _badFrames;
    private long _closedConnections;
    private long _framesReceived;
    private long _arraysAllocated;
    private readonly long[] _refusals = new long[Enum.GetValues<ConnectionRefusal>().Length];
    private readonly long[] _recordRefusals = new long[Enum.GetValues<RecordRefusal>().Length];
    private readonly byte[] _key = DataPlaneHandshake.NewRandom();
    private readonly object _keysLock = new();
    private readonly Dictionary<int, byte[]> _keysByNode = new();
    private readonly Dictionary<string, byte[]> _keysByEndpoint = new(StringComparer.Ordinal);
    private readonly List<UnprovenConnection> _unproven = new();

    /// <param name="decode">Turns each frame into the owning actor's message (the mode's <c>FromFrame</c>).</param>
    /// <param name="deliver">Called on a reader thread with each complete record and each <see cref="DataConnectionLost"/>; must be thread-safe (an actor's Tell).</param>
    public DirectDataPlane(DataPlaneOptions options, FrameDecoder decode, Action<object> deliver)
    {
        _options = options;
        _decode = decode;
        _deliver = deliver;
        _runHash = FrameHeader.HashRunId(options.RunId);
        _sendPayload = new byte[options.MaxEncodedPayloadBytes()];
        var address = ResolveAddress(options.Hostname);
        _listener = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        _listener.Bind(new IPEndPoint(address, options.Port));
        _listener.Listen(64);
        int port = ((IPEndPoint)_listener.LocalEndPoint!).Port;
        Endpoint = $"{options.AdvertisedHost ?? options.Hostname}:{port}";
        _acceptThread = new Thread(AcceptLoop) { IsBackground = true, Name = $"distsgd-data-accept:{port}" };
        _acceptThread.Start();
    }

    /// <summary>"host:port" other nodes connect to; advertised through the cluster.</summary>
    public string Endpoint { get; }

    /// <summary>Frames refused at the header or cut short (each closed its connection).</summary>
    public long BadFrames => Interlocked.Read(ref _badFrames);

    /// <summary>Inbound connections closed for any reason.</summary>
    public long ClosedConnections => Interlocked.Read(ref _closedConnections);

    public long FramesReceived => Interlocked.Read(ref _framesReceived);

    /// <summary>Inbound connections refused before they proved a node, all kinds together (<see cref="Refusals"/>).</summary>
    public long RefusedConnections => Refusals.Values.Sum();

    /// <summary>Inbound connections refused before they proved a node, by kind; kinds with none are left out.</summary>
    public IReadOnlyDictionary<ConnectionRefusal, long> Refusals =>
        Enum.GetValues<ConnectionRefusal>().Select(kind => (kind, count: Interlocked.Read(ref _refusals[(int)kind])))
            .Where(e => e.count > 0).ToDictionary(e => e.kind, e => e.count);

    /// <summary>The refusals by their names in the dropped-message counts (<see cref="DataPlaneHandshake.Name"/>).</summary>
    public IReadOnlyDictionary<string, long> RefusalsByName => Refusals.ToDictionary(e => DataPlaneHandshake.Name(e.Key), e => e.Value)
        .Concat(RecordRefusals.Select(e => KeyValuePair.Create(DataPlaneRecords.Name(e.Key), e.Value))).ToDictionary();

    /// <summary>
    /// Records refused on encrypted connections after their handshake, by kind (<see cref="DataPlaneRecords"/>): each
    /// closed its connection without a delivery and without changing the standing of the node it came from.
    /// </summary>
    public IReadOnlyDictionary<RecordRefusal, long> RecordRefusals =>
        Enum.GetValues<RecordRefusal>().Select(kind => (kind, count: Interlocked.Read(ref _recordRefusals[(int)kind])))
            .Where(e => e.count > 0).ToDictionary(e => e.kind, e => e.count);

    /// <summary>
    /// Called with each connection refused before it proved a node (kind, source address, reason), on the plane's
    /// accept or reader thread, after it was counted; must be thread-safe (a <see cref="RefusalLog"/>). Null: only counted.
    /// </summary>
    public Action<DataPlaneRefusal>? Refused { get; set; }

    /// <summary>Reports every refusal to a new <see cref="RefusalLog"/> writing to <paramref name="warn"/> (an actor's Warning).</summary>
    public void LogRefusals(Action<string> warn)
    {
        var log = new RefusalLog(warn);
        Refused = refusal => log.Record(refusal);
    }

    /// <summary>This node's data-plane key: advertised with <see cref="Endpoint"/> over the control plane, never sent on the data plane.</summary>
    public byte[] Key => (byte[])_key.Clone();

    /// <summary>
    /// Node <paramref name="node"/> is at <paramref name="endpoint"/> with <paramref name="key"/>, as it advertised over the
    /// control plane: its inbound connections must prove that key, and an outbound one to that endpoint must be answered
    /// with it. The latest call for a node or an endpoint wins (a restarted node has a new key). Thread-safe.
    /// </summary>
    public void Trust(int node, string endpoint, byte[] key)
    {
        if (!DataPlaneHandshake.IsKey(key))
            throw new ArgumentException($"a data-plane key has {DataPlaneHandshake.KeySize} bytes, this one {key.Length}", nameof(key));
        lock (_keysLock)
        {
            _keysByNode[node] = (byte[])key.Clone();
            if (endpoint.Length > 0)
                _keysByEndpoint[endpoint] = (byte[])key.Clone();
            Monitor.PulseAll(_keysLock);
        }
    }

    /// <summary>How this plane encodes and expects frames of <paramref name="kind"/> (<see cref="DataPlaneOptions.EncodingOf"/>).</summary>
    public ShareEncoding EncodingOf(FrameKind kind) => _options.EncodingOf(kind);

    /// <summary>Bytes the last successful <see cref="Send"/> handed to the kernel: header and (encoded) payload, before any TLS record framing.</summary>
    public long LastFrameBytes { get; private set; }

    /// <summary>
    /// Sends one frame to <paramref name="endpoint"/>, connecting first if needed; false when the connection
    /// failed (it is closed; the next call reconnects). A gradient goes in the run's encoding
    /// (<see cref="DataPlaneOptions.Gradients"/>): <paramref name="values"/> must already be what that encoding delivers
    /// (<see cref="GradientCompressor.Compress(Span{float})"/>), so nothing is lost. Not thread-safe: one owning actor sends.
    /// </summary>
    public bool Send(string endpoint, in FrameHeader header, ReadOnlySpan<float> values)
    {
        var encoding = _options.EncodingOf(header.Kind, header.IsUpdate);
        ReadOnlySpan<byte> payload;
        int count = values.Length;
        if (encoding.IsIdentity)
            payload = MemoryMarshal.AsBytes(values);
        else
            payload = _sendPayload.AsSpan(0, ShareCodec.Encode(encoding, values, _sendPayload, out count));
        if (_disposed)
            return false;
        Outgoing? connection = null;
        try
        {
            if (!_outgoing.TryGetValue(endpoint, out connection))
            {
                connection = ConnectMakingRoom(endpoint, header.Sender);
                _outgoing[endpoint] = connection;
            }
            (header with { RunHash = _runHash, Count = count, Encoding = encoding.Id }).Write(_sendHeader);
            if (connection.Sealer is { } sealer)
            {
                RecordSocket.Send(connection.Socket, sealer, _sendHeader, connection.Records!);
                if (!payload.IsEmpty)
                    RecordSocket.Send(connection.Socket, sealer, payload, connection.Records!);
            }
            else
            {
                connection.Socket.Send(_sendHeader);
                if (!payload.IsEmpty)
                    connection.Socket.Send(payload);
            }
            LastFrameBytes = FrameHeader.Size + payload.Length;
            return true;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or TimeoutException or IOException or FormatException
                                      or AuthenticationException)
        {
            if (_outgoing.Remove(endpoint, out var broken))
                broken.Dispose();
            return false;
        }
    }

    /// <summary>
    /// Gives back the array of a delivered record once the actor is done with it (the step it belonged to is
    /// finished, nothing refers to it any more): the next frame of the same length is read into it instead of a
    /// new array. Each array at most once; arrays never returned are simply collected.
    /// </summary>
    public void Return(float[] values) => Return(values, null);

    /// <summary>
    /// <see cref="Return(float[])"/> for a gradient delivered with its <paramref name="entries"/> (a sparse frame's,
    /// <see cref="Protocol.IGradientContribution.Entries"/>): the entries are cleared in the array, O(entries), and both
    /// are reused for the next sparse frame. Without entries the array is reused for dense frames only.
    /// </summary>
    public void Return(float[] values, SparseVector? entries)
    {
        if (entries is not null && values.Length == _options.ParameterCount && entries.Length == values.Length)
        {
            entries.ClearIn(values);
            entries.Clear();
            if (_clear.Count < 2 * _options.SenderCount + 2)
                _clear.Enqueue((values, entries));
            return;
        }
        if (values.Length == 0 || values.Length > _options.ParameterCount)
            return;
        // A whole vector per sender and step, twice (the step before may still be redone); slices and segments are more, and smaller.
        int keep = values.Length == _options.ParameterCount ? 2 * _options.SenderCount + 2 : 4 * _options.SenderCount + 16;
        var free = _free.GetOrAdd(values.Length, static _ => new ConcurrentQueue<float[]>());
        if (free.Count < keep)
            free.Enqueue(values);
    }

    /// <summary>
    /// Called on the reader thread with each whole frame's sender, step, and the monotonic timestamps
    /// (<see cref="System.Diagnostics.Stopwatch.GetTimestamp"/>) of its header and of its last payload byte, before
    /// it is delivered (a <see cref="Steps.StepTrace"/>); null: nothing is measured.
    /// </summary>
    public Action<int, long, long, long>? FrameReceived { get; set; }

    /// <summary>Arrays read into since start-up that were not taken from the returned ones.</summary>
    public long ArraysAllocated => Interlocked.Read(ref _arraysAllocated);

    /// <summary>Closes the outgoing connection to <paramref name="endpoint"/> (the receiver sees the node as lost).</summary>
    public void Disconnect(string endpoint)
    {
        if (_outgoing.Remove(endpoint, out var connection))
            connection.Dispose();
    }

    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        lock (_keysLock)
            Monitor.PulseAll(_keysLock);   // a handshake waiting for a key gives up now
        _listener.Dispose();
        foreach (var connection in _outgoing.Values)
            connection.Dispose();
        _outgoing.Clear();
        lock (_incoming)
        {
            foreach (var socket in _incoming)
                ShutDown(socket);
            _incoming.Clear();
        }
    }

    /// <summary>
    /// An outgoing connection: the socket, and when TLS is on its TLS stream (the handshakes only: it stays open, unused,
    /// until the connection closes) and the sealer of its frames' records with their send buffer.
    /// </summary>
    private sealed class Outgoing(Socket socket, SslStream? tls, byte[]? recordKey) : IDisposable
    {
        public Socket Socket { get; } = socket;
        public SslStream? Tls { get; } = tls;
        public RecordSealer? Sealer { get; } = recordKey is null ? null : new RecordSealer(recordKey, RecordDirection.ClientToServer);
        public byte[]? Records { get; } = recordKey is null ? null : RecordSocket.SendBuffer(DataPlaneRecords.DefaultChunk);

        public void Dispose()
        {
            Socket.Dispose();   // first: nothing the TLS stream might still write reaches the record stream
            Tls?.Dispose();
            Sealer?.Dispose();
        }
    }

    /// <summary>The server closed the connection after its hello, before its proof: it refused the answer, or closed it to make room (<see cref="DataPlaneHandshake.ToClose"/>).</summary>
    private sealed class ClosedEarlyException(string message) : AuthenticationException(message);

    /// <summary>Pauses before each new try of a connection the server closed during its handshake (<see cref="ConnectMakingRoom"/>); the last repeats.</summary>
    private static readonly int[] RetryPausesMs = [25, 50, 100, 200, 400];

    /// <summary>
    /// <see cref="Connect"/>, tried again after a growing pause while the server closes the connection after its hello
    /// and before its proof, and the frame timeout has not passed: during a flood of connections it may have closed
    /// this one to make room before it could answer, and the flood's own connections go first the next time. A refusal
    /// of the answer costs a few tries (each counted by the server) within the frame timeout, as a handshake that times
    /// out does. A server that closes before its hello (distsgd.direct.members-only) is not tried again.
    /// </summary>
    private Outgoing ConnectMakingRoom(string endpoint, int claimedNode)
    {
        var deadline = DateTime.UtcNow + _options.FrameTimeout;
        for (int attempt = 0; ; attempt++)
        {
            int pause = RetryPausesMs[Math.Min(attempt, RetryPausesMs.Length - 1)];
            try
            {
                return Connect(endpoint, claimedNode);
            }
            catch (ClosedEarlyException) when (DateTime.UtcNow.AddMilliseconds(pause) < deadline && !_disposed)
            {
                Thread.Sleep(pause);
            }
        }
    }

    private Outgoing Connect(string endpoint, int claimedNode)
    {
        int colon = endpoint.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(endpoint.AsSpan(colon + 1), out int port))
            throw new FormatException($"data endpoint '{endpoint}' is not host:port");
        var address = ResolveAddress(endpoint[..colon]);
        var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp)
        {
            NoDelay = true,
            SendBufferSize = _options.SocketBufferSize,
            SendTimeout = (int)_options.FrameTimeout.TotalMilliseconds,
        };
        try
        {
            // Never block the actor longer than a frame may take, even towards a host that does not answer.
            // A non-blocking connect polled on this thread: a Task-based connect would wait for a thread-pool
            // thread to complete it, which a busy pool can delay past the timeout although the peer accepted.
            socket.Blocking = false;
            try
            {
                socket.Connect(address, port);
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.WouldBlock or SocketError.InProgress)
            {
            }
            if (!socket.Poll((int)Math.Min(int.MaxValue, _options.FrameTimeout.TotalMicroseconds), SelectMode.SelectWrite))
                throw new TimeoutException($"connecting to {endpoint} took more than {_options.FrameTimeout}");
            var error = (SocketError)(int)socket.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.Error)!;
            if (error != SocketError.Success)
                throw new SocketException((int)error);
            socket.Blocking = true;
            var serverKey = KnownKey(endpoint) ?? throw new AuthenticationException($"no data-plane key is known for {endpoint} (not advertised over the control plane)");
            var deadline = DateTime.UtcNow + _options.FrameTimeout;
            if (_options.Tls is not { } identity)
            {
                ProveTo(socket, null, endpoint, claimedNode, serverKey, deadline);
                return new Outgoing(socket, null, null);
            }
            // The handshakes' reads are bounded like a frame's; the server refuses us, or we it, before any payload.
            socket.ReceiveTimeout = (int)_options.FrameTimeout.TotalMilliseconds;
            var tls = new SslStream(new NetworkStream(socket, ownsSocket: false), leaveInnerStreamOpen: false);
            try
            {
                tls.AuthenticateAsClient(identity.ClientOptions(endpoint[..colon]));
                return new Outgoing(socket, tls, ProveTo(socket, tls, endpoint, claimedNode, serverKey, deadline));
            }
            catch
            {
                tls.Dispose();
                throw;
            }
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The client side of the <see cref="DataPlaneHandshake"/>: answers the server's hello as <paramref name="claimedNode"/>
    /// under this node's key, then checks the server's proof against <paramref name="serverKey"/>; throws when any of it fails.
    /// Returns the key of this connection's frame records (<see cref="DataPlaneRecords.DeriveKey"/>).
    /// </summary>
    private byte[] ProveTo(Socket socket, SslStream? tls, string endpoint, int claimedNode, byte[] serverKey, DateTime deadline)
    {
        var hello = new byte[DataPlaneHandshake.HelloSize];
        if (ReceiveBefore(socket, tls, hello, deadline) < hello.Length)
            throw new AuthenticationException($"the data plane at {endpoint} closed before its handshake");
        if (DataPlaneHandshake.CheckHello(hello, _runHash) is { } problem)
            throw new AuthenticationException($"{endpoint}: {problem}");
        var answer = new byte[DataPlaneHandshake.AnswerSize];
        var clientNonce = DataPlaneHandshake.NewRandom(DataPlaneHandshake.NonceSize);
        DataPlaneHandshake.WriteAnswer(answer, _key, _runHash, claimedNode, DataPlaneHandshake.NonceOf(hello), clientNonce);
        Write(socket, tls, answer);
        var proof = new byte[DataPlaneHandshake.ProofSize];
        if (ReceiveBefore(socket, tls, proof, deadline) < proof.Length)
            throw new ClosedEarlyException($"the data plane at {endpoint} refused this node's handshake as node {claimedNode}");
        if (!DataPlaneHandshake.CheckProof(proof, serverKey, _runHash, answer, DataPlaneHandshake.NonceOf(hello)))
            throw new AuthenticationException($"the data plane at {endpoint} does not hold the key advertised for it");
        socket.ReceiveTimeout = (int)_options.FrameTimeout.TotalMilliseconds;
        return DataPlaneRecords.DeriveKey(_key, serverKey, _runHash, claimedNode, DataPlaneHandshake.NonceOf(hello), clientNonce, RecordDirection.ClientToServer);
    }

    /// <summary>
    /// The server side of the <see cref="DataPlaneHandshake"/>, before <paramref name="deadline"/>: the node the client
    /// proved, or −1 and why it did not (counted by <see cref="EndProving"/>); <paramref name="recordKey"/>: the key of
    /// the frame records it sends (<see cref="DataPlaneRecords.DeriveKey"/>) once proved.
    /// </summary>
    private (int Node, ConnectionRefusal Refusal) ProvenNode(Socket socket, SslStream? tls, UnprovenConnection entry, DateTime deadline, out byte[]? recordKey)
    {
        recordKey = null;
        var hello = new byte[DataPlaneHandshake.HelloSize];
        DataPlaneHandshake.WriteHello(hello, _runHash, DataPlaneHandshake.NewRandom(DataPlaneHandshake.NonceSize));
        var nonce = DataPlaneHandshake.NonceOf(hello).ToArray();
        ConnectionRefusal refusal;
        try
        {
            Write(socket, tls, hello);
            var answer = new byte[DataPlaneHandshake.AnswerSize];
            int got = ReceiveBefore(socket, tls, answer.AsSpan(0, DataPlaneHandshake.OpeningSize), deadline);
            if (got > 0)
            {
                lock (_unproven)
                    entry.Spoke = true;
            }
            if (got == DataPlaneHandshake.OpeningSize && DataPlaneHandshake.JudgeOpening(answer) is { } opening)
                return (-1, opening);
            if (got == DataPlaneHandshake.OpeningSize)
                got += ReceiveBefore(socket, tls, answer.AsSpan(got), deadline);
            if (got < answer.Length)
                return (-1, ConnectionRefusal.HandshakeClosed);
            int node = DataPlaneHandshake.ClaimedNode(answer);
            var key = (uint)node < (uint)_options.SenderCount ? WaitForKey(node, deadline) : null;
            if (DataPlaneHandshake.JudgeAnswer(answer, _runHash, _options.SenderCount, nonce, key) is { } judged)
                return (-1, judged);
            Write(socket, tls, DataPlaneHandshake.Proof(_key, _runHash, answer, nonce));
            recordKey = DataPlaneRecords.DeriveKey(key!, _key, _runHash, node, nonce, answer.AsSpan(16, DataPlaneHandshake.NonceSize), RecordDirection.ClientToServer);
            return (node, default);
        }
        catch (TimeoutException)
        {
            refusal = ConnectionRefusal.HandshakeTimeout;
        }
        catch (Exception e) when (e is SocketException or IOException)
        {
            refusal = IsTimeout(e) ? ConnectionRefusal.HandshakeTimeout : ConnectionRefusal.HandshakeClosed;
        }
        return (-1, refusal);
    }

    /// <summary>Counts a refusal and reports it to <see cref="Refused"/>.</summary>
    private void Refuse(ConnectionRefusal refusal, string remote)
    {
        Interlocked.Increment(ref _refusals[(int)refusal]);
        Refused?.Invoke(new DataPlaneRefusal(refusal, remote, DataPlaneHandshake.Describe(refusal)));
    }

    /// <summary>
    /// <paramref name="entry"/> stops proving itself: counts <paramref name="refusal"/> when set; false when the connection
    /// is not to be used (refused, or closed meanwhile to make room, which was counted then).
    /// </summary>
    private bool EndProving(UnprovenConnection entry, ConnectionRefusal? refusal)
    {
        lock (_unproven)
        {
            if (entry.Closed)
                return false;
            entry.Closed = true;
            _unproven.Remove(entry);
        }
        if (refusal is { } kind)
            Refuse(kind, entry.Remote);
        return refusal is null;
    }

    /// <summary>A connection still proving itself: whether any of its answer arrived, and whether it was closed to make room.</summary>
    private sealed class UnprovenConnection(Socket socket)
    {
        public Socket Socket { get; } = socket;
        public string Remote { get; } = RemoteOf(socket);
        public bool Spoke { get; set; }
        public bool Closed { get; set; }
    }

    private static string RemoteOf(Socket socket)
    {
        try
        {
            return socket.RemoteEndPoint?.ToString() ?? "?";
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return "?";
        }
    }

    /// <summary>
    /// Admits a new connection to the ones proving themselves; when they are at the cap, the one
    /// <see cref="DataPlaneHandshake.ToClose"/> picks is shut down (its reader sees it close) and counted.
    /// </summary>
    private UnprovenConnection Admit(Socket socket)
    {
        var entry = new UnprovenConnection(socket);
        UnprovenConnection? closed = null;
        lock (_unproven)
        {
            int index = DataPlaneHandshake.ToClose(_unproven.ConvertAll(u => u.Spoke), _options.SenderCount);
            if (index >= 0)
            {
                closed = _unproven[index];
                closed.Closed = true;
                _unproven.RemoveAt(index);
            }
            _unproven.Add(entry);
        }
        if (closed is not null)
        {
            Refuse(ConnectionRefusal.UnprovenCap, closed.Remote);
            try
            {
                closed.Socket.Shutdown(SocketShutdown.Both);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
            }
        }
        return entry;
    }

    private byte[]? KnownKey(string endpoint)
    {
        lock (_keysLock)
            return _keysByEndpoint.GetValueOrDefault(endpoint);
    }

    /// <summary>
    /// The key advertised for <paramref name="node"/>, waiting until <paramref name="deadline"/> for it: a peer may
    /// connect a moment before this node's start barrier passed and told the plane its key.
    /// </summary>
    private byte[]? WaitForKey(int node, DateTime deadline)
    {
        lock (_keysLock)
        {
            while (!_keysByNode.ContainsKey(node) && !_disposed)
            {
                var left = deadline - DateTime.UtcNow;
                if (left <= TimeSpan.Zero)
                    return null;
                Monitor.Wait(_keysLock, left);
            }
            return _keysByNode.GetValueOrDefault(node);
        }
    }

    private static void Write(Socket socket, SslStream? tls, ReadOnlySpan<byte> bytes)
    {
        if (tls is null)
            socket.Send(bytes);
        else
            tls.Write(bytes);
    }

    /// <summary>
    /// Reads until <paramref name="buffer"/> is full, the peer closes, or <paramref name="deadline"/> passes (throws
    /// <see cref="TimeoutException"/>): a handshake trickled a byte at a time is bounded as a whole, not per read.
    /// </summary>
    private static int ReceiveBefore(Socket socket, SslStream? tls, Span<byte> buffer, DateTime deadline)
    {
        int read = 0;
        while (read < buffer.Length)
        {
            int left = (int)Math.Ceiling((deadline - DateTime.UtcNow).TotalMilliseconds);
            if (left <= 0)
                throw new TimeoutException("the handshake took longer than the frame timeout");
            socket.ReceiveTimeout = left;
            int n = tls is null ? socket.Receive(buffer[read..]) : tls.Read(buffer[read..]);
            if (n == 0)
                return read;
            read += n;
        }
        return read;
    }

    private static bool IsTimeout(Exception e) =>
        (e as SocketException ?? e.InnerException as SocketException) is { SocketErrorCode: SocketError.TimedOut or SocketError.WouldBlock };

    private static IPAddress ResolveAddress(string host) =>
        IPAddress.TryParse(host, out var address) ? address
            : Dns.GetHostAddresses(host).FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork)
              ?? throw new SocketException((int)SocketError.HostNotFound);

    private void AcceptLoop()
    {
        while (!_disposed)
        {
            Socket socket;
            try
            {
                socket = _listener.Accept();
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                return;
            }
            if (_options.AcceptFrom is { } acceptFrom && socket.RemoteEndPoint is IPEndPoint remote
                && !acceptFrom(remote.Address.IsIPv4MappedToIPv6 ? remote.Address.MapToIPv4() : remote.Address))
            {
                // Not a cluster member: no byte of it is read.
                Refuse(ConnectionRefusal.NotMember, remote.ToString());
                socket.Dispose();
                continue;
            }
            // Connections that have not proved a node yet each hold a thread until the frame timeout: a bounded number,
            // and at the cap the oldest silent one makes room, so that idle connections cannot keep a real node out.
            var entry = Admit(socket);
            socket.NoDelay = true;
            socket.ReceiveBufferSize = _options.SocketBufferSize;
            socket.ReceiveTimeout = (int)_options.FrameTimeout.TotalMilliseconds;
            lock (_incoming)
            {
                if (_disposed)
                {
                    socket.Dispose();
                    EndProving(entry, null);
                    return;
                }
                _incoming.Add(socket);
            }
            new Thread(() => ReadLoop(socket, entry)) { IsBackground = true, Name = "distsgd-data-read" }.Start();
        }
    }

    private void ReadLoop(Socket socket, UnprovenConnection entry)
    {
        var headerBytes = new byte[FrameHeader.Size];
        // An encoded gradient or update is read here, then decoded into the record's array (allocated once per connection).
        var encoded = new byte[_options.MaxEncodedPayloadBytes()];
        int sender = -1;
        string reason = "closed by the sender";
        SslStream? tls = null;
        RecordOpener? opener = null;
        byte[]? recordBuffer = null;
        bool proving = true;
        try
        {
            if (_options.Tls is { } identity)
            {
                if ((tls = Authenticate(socket, identity)) is null)
                {
                    proving = false;
                    EndProving(entry, ConnectionRefusal.TlsFailed);
                    return;
                }
                lock (_unproven)
                    entry.Spoke = true;   // it holds a certificate of this cluster's CA
            }
            (int node, var refusal) = ProvenNode(socket, tls, entry, DateTime.UtcNow + _options.FrameTimeout, out var recordKey);
            proving = false;
            if (!EndProving(entry, node < 0 ? refusal : null))
                return;
            sender = node;
            // With TLS, frames come as records on the bare socket after the handshakes (the TLS stream stays open, unused).
            if (tls is not null)
            {
                opener = new RecordOpener(recordKey!, RecordDirection.ClientToServer);
                recordBuffer = RecordSocket.ReceiveBuffer();
            }
            socket.ReceiveTimeout = (int)_options.FrameTimeout.TotalMilliseconds;
            while (!_disposed)
            {
                // Between frames a connection may be idle for as long as a step takes: wait without the frame timeout.
                if (!socket.Poll(250_000, SelectMode.SelectRead))
                    continue;
                int got;
                if (opener is null)
                    got = ReceiveExact(socket, null, headerBytes);
                else if (socket.Available == 0)
                    got = 0;   // readable with nothing to read: closed
                else if (ReceiveRecords(socket, opener, headerBytes, recordBuffer!, exact: true) is { } refused)
                {
                    reason = RefuseRecord(refused, ref sender);
                    break;
                }
                else
                    got = headerBytes.Length;
                if (got == 0)
                    break;   // closed between frames
                if (got < FrameHeader.Size)
                {
                    reason = Bad($"truncated header ({got} of {FrameHeader.Size} bytes)");
                    break;
                }
                var parsed = FrameHeader.Read(headerBytes);
                if (parsed is not { } header)
                {
                    reason = Bad("bad frame header (magic, version, kind or reserved bytes)");
                    break;
                }
                if (header.Kind != _options.Accepts || header.Count < 0 || header.Count > _options.ParameterCount || header.Sender != sender)
                {
                    reason = Bad($"frame refused: kind {header.Kind}, sender {header.Sender}, {header.Count} floats " +
                                 $"(this connection proved node {sender}; this node accepts {_options.Accepts}, at most {_options.ParameterCount} floats)");
                    break;
                }
                var encoding = _options.EncodingOf(header.Kind, header.IsUpdate);
                if (FrameShapeError(header, encoding) is { } shape)
                {
                    reason = Bad($"frame refused: {shape}");
                    break;
                }
                long headerAt = System.Diagnostics.Stopwatch.GetTimestamp();
                bool judged = header.Kind is FrameKind.GradientReply or FrameKind.GradientShare;
                int length = DecodedLength(header, encoding);
                // A sparse gradient is decoded into its entries, written into an array that is all +0 (decision 0141).
                var (values, entries) = encoding.IsSparse && judged && length > 0 ? RentClear(encoding) : (Rent(length), null);
                var payload = encoding.IsIdentity ? MemoryMarshal.AsBytes(values.AsSpan()) : encoded.AsSpan(0, (int)encoding.PayloadBytes(header.Count));
                if (opener is not null && ReceiveRecords(socket, opener, payload, recordBuffer!, exact: false) is { } refusedPayload)
                {
                    reason = RefuseRecord(refusedPayload, ref sender);
                    break;
                }
                // A gradient's values are judged finite here, off the actor's thread: plain float32 part by part as it
                // arrives (each part still in this core's cache), anything else as it is decoded (decision 0134).
                bool finite = true;
                bool inPlace = opener is null && encoding.IsIdentity;
                got = opener is not null ? payload.Length
                    : inPlace && judged ? ReceiveJudging(socket, values, ref finite)
                    : ReceiveExact(socket, null, payload);
                if (got < payload.Length)
                {
                    reason = Bad($"frame cut short: {got} of {payload.Length} payload bytes");
                    break;
                }
                bool decodedFinite = false;
                string? invalid = entries is not null ? ShareCodec.DecodeEntries(encoding, payload, header.Count, entries, out decodedFinite)
                    : encoding.IsIdentity ? null : ShareCodec.Decode(encoding, payload, header.Count, values, out decodedFinite);
                if (invalid is not null)
                {
                    Return(values, entries);   // no entries were left in it: still clear
                    reason = Bad($"frame refused: step {header.Step} of node {sender}: {invalid}");
                    break;
                }
                entries?.ScatterInto(values);
                if (judged && !inPlace)
                    finite = encoding.IsIdentity ? FiniteValues.All(values) : decodedFinite;   // decoding judged (a sparse share by its entries)
                Interlocked.Increment(ref _framesReceived);
                FrameReceived?.Invoke(sender, header.Step, headerAt, System.Diagnostics.Stopwatch.GetTimestamp());
                _deliver(ToMessage(header, values, judged ? finite : null, entries));
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or IOException)
        {
            reason = IsTimeout(e)
                ? Bad($"no bytes for {_options.FrameTimeout.TotalMilliseconds:0} ms in the middle of a frame")
                : $"connection error: {e.Message}";
        }
        finally
        {
            if (proving)
                EndProving(entry, null);
            Interlocked.Increment(ref _closedConnections);
            lock (_incoming)
                _incoming.Remove(socket);
            tls?.Dispose();
            opener?.Dispose();
            ShutDown(socket);
            if (!_disposed && sender >= 0)
                _deliver(new DataConnectionLost(sender, reason));
        }
    }

    /// <summary>Why a header does not fit the run's encoding of its kind (its id, the count it may have), or null.</summary>
    private string? FrameShapeError(in FrameHeader header, ShareEncoding encoding)
    {
        if (header.Encoding != encoding.Id)
            return $"encoding {header.Encoding}, this run's {header.Kind} frames travel as {encoding} (encoding {encoding.Id})";
        if (encoding.IsSparse && header.Count > encoding.KeptCount(_options.ParameterCount))
            return $"{header.Count} entries, at most {encoding.KeptCount(_options.ParameterCount)} kept ({encoding})";
        if (encoding.IsSparse && header.Kind != FrameKind.ComputeGradient && header.SampleCount <= 0 && header.Count > 0)
            return $"{header.Count} entries for a gradient of no samples";
        return null;
    }

    /// <summary>The values a frame carries: a sparse one's are the model's (a gradient of no samples has none).</summary>
    private int DecodedLength(in FrameHeader header, ShareEncoding encoding) =>
        !encoding.IsSparse ? header.Count
        : header.Kind == FrameKind.ComputeGradient || header.SampleCount > 0 ? _options.ParameterCount : 0;

    private static RecordRefusal? ReceiveRecords(Socket socket, RecordOpener opener, Span<byte> target, byte[] recordBuffer, bool exact) =>
        target.IsEmpty ? null : RecordSocket.Receive(socket, opener, target, recordBuffer, exact);

    /// <summary>
    /// Counts a refused record and forgets which node the connection proved: a record that does not authenticate may
    /// be anyone's (bytes injected on the path), so the connection closes without a delivery and without making its
    /// node lost; the node's next send finds the connection closed and connects anew.
    /// </summary>
    private string RefuseRecord(RecordRefusal refusal, ref int sender)
    {
        Interlocked.Increment(ref _recordRefusals[(int)refusal]);
        string reason = $"record refused ({DataPlaneRecords.Name(refusal)}) on the connection of node {sender}";
        sender = -1;
        return reason;
    }

    private float[] Rent(int count)
    {
        if (count == 0)
            return [];
        if (_free.TryGetValue(count, out var free) && free.TryDequeue(out var reused))
            return reused;
        Interlocked.Increment(ref _arraysAllocated);
        return GC.AllocateUninitializedArray<float>(count);
    }

    /// <summary>A whole gradient's array that is all +0, with room for a sparse frame's entries (<see cref="_clear"/>).</summary>
    private (float[] Values, SparseVector? Entries) RentClear(ShareEncoding encoding)
    {
        if (_clear.TryDequeue(out var reused))
            return reused;
        Interlocked.Increment(ref _arraysAllocated);
        int length = _options.ParameterCount;
        return (new float[length], new SparseVector(length, encoding.KeptCount(length)));
    }

    private string Bad(string reason)
    {
        Interlocked.Increment(ref _badFrames);
        return reason;
    }

    /// <summary>
    /// The server side of an inbound TLS connection, within the frame timeout; null (the caller counts the refusal) when the
    /// peer does not complete it with a certificate of this node's CA. Which node the peer is, the data-plane
    /// handshake after it proves.
    /// </summary>
    private SslStream? Authenticate(Socket socket, NodeTls identity)
    {
        var tls = new SslStream(new NetworkStream(socket, ownsSocket: false), leaveInnerStreamOpen: false);
        try
        {
            tls.AuthenticateAsServer(identity.ServerOptions());
            return tls;
        }
        catch (Exception e) when (e is AuthenticationException or IOException or SocketException or ObjectDisposedException)
        {
            tls.Dispose();
            return null;
        }
    }

    /// <summary>Reads until <paramref name="buffer"/> is full or the peer closes; returns the bytes read (through <paramref name="tls"/> when set).</summary>
    private static int ReceiveExact(Socket socket, SslStream? tls, Span<byte> buffer)
    {
        int read = 0;
        while (read < buffer.Length)
        {
            int n = tls is null ? socket.Receive(buffer[read..]) : tls.Read(buffer[read..]);
            if (n == 0)
                return read;
            read += n;
        }
        return read;
    }

    /// <summary>
    /// Reads a plain float32 payload into <paramref name="values"/> until it is full or the peer closes (the bytes read), and
    /// judges each value as soon as its four bytes are in: <paramref name="finite"/> becomes false when one is NaN or ±∞.
    /// </summary>
    private static int ReceiveJudging(Socket socket, float[] values, ref bool finite)
    {
        var buffer = MemoryMarshal.AsBytes(values.AsSpan());
        int read = 0, judged = 0;
        while (read < buffer.Length)
        {
            int n = socket.Receive(buffer[read..]);
            if (n == 0)
                return read;
            read += n;
            int whole = read / sizeof(float);
            if (finite && !FiniteValues.All(values.AsSpan(judged, whole - judged)))
                finite = false;
            judged = whole;
        }
        return read;
    }

    private object ToMessage(in FrameHeader h, float[] values, bool? finite, SparseVector? entries)
    {
        // A foreign run keeps a run id that cannot match, so the step's gather drops and counts it as ForeignRun.
        string runId = h.RunHash == _runHash ? _options.RunId : $"foreign run {h.RunHash:x16}";
        return _decode(h, runId, values, finite, entries);
    }

    private static void ShutDown(Socket socket)
    {
        try
        {
            socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
        socket.Dispose();
    }
}
