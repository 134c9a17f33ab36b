using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using DistSgd.Actors.Centralized;
using DistSgd.Actors.Tests.Security;
using DistSgd.Actors.Transport;

namespace DistSgd.Actors.Tests.Transport;

/// <summary>
/// The encrypted data plane under an attacker on the path: a relay between a worker and the master passes the TLS and
/// identity handshakes and a first frame, then changes the second frame's records. Each change is refused, counted by
/// kind, delivers nothing, and never makes the worker lost (no <see cref="DataConnectionLost"/>).
/// </summary>
public sealed class RecordTamperingTests : IDisposable
{
    private const string RunId = "tamper-run";
    private const int Parameters = 250_000;   // 1,000,000 payload bytes: 4 records of at most 256 KB
    private static readonly int HeaderRecord = DataPlaneRecords.HeaderSize + FrameHeader.Size + DataPlaneRecords.TagSize;
    private static readonly int FirstPayloadRecord = DataPlaneRecords.HeaderSize + DataPlaneRecords.DefaultChunk + DataPlaneRecords.TagSize;
    private static readonly int FrameBytes = HeaderRecord + Parameters * sizeof(float) + 4 * (DataPlaneRecords.HeaderSize + DataPlaneRecords.TagSize);
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    private readonly TestCertificates _ca = new();
    private readonly BlockingCollection<object> _delivered = new();
    private readonly DirectDataPlane _master;
    private readonly DirectDataPlane _worker;
    private readonly Relay _relay;

    public RecordTamperingTests()
    {
        _master = new DirectDataPlane(new DataPlaneOptions(RunId, Parameters, FrameKind.GradientReply, SenderCount: 2, "127.0.0.1", 0,
                                                           TimeSpan.FromSeconds(2), Tls: _ca.Load("master")), GradientReply.FromFrame, _delivered.Add);
        _worker = new DirectDataPlane(new DataPlaneOptions(RunId, Parameters, FrameKind.ComputeGradient, SenderCount: 1, "127.0.0.1", 0,
                                                           TimeSpan.FromSeconds(2), Tls: _ca.Load("worker")), ComputeGradient.FromFrame, _ => { });
        _relay = new Relay(int.Parse(_master.Endpoint.Split(':')[1]));
        _master.Trust(1, _worker.Endpoint, _worker.Key);
        _worker.Trust(0, _relay.Endpoint, _master.Key);   // the worker dials the relay, believing it the master
    }

    public void Dispose()
    {
        _relay.Dispose();
        _worker.Dispose();
        _master.Dispose();
        _ca.Dispose();
    }

    private static FrameHeader Header(long step) => new(FrameKind.GradientReply, 0, step, 1, 1, (int)step, 8, 1.5, 0.001, 0);

    private static float[] Gradient(float seed) => Enumerable.Range(0, Parameters).Select(i => seed + i * 0.25f).ToArray();

    /// <summary>Sends frame 1 untouched (it arrives), then frame 2 through <paramref name="change"/>; returns what was delivered after frame 1.</summary>
    private List<object> FirstIntactThenChanged(Func<byte[], (byte[] Send, bool Close)> change)
    {
        var first = Gradient(1f);
        Assert.True(_worker.Send(_relay.Endpoint, Header(1), first));
        Assert.True(_delivered.TryTake(out var delivered, Wait), "the intact first frame did not arrive");
        Assert.Equal(first, Assert.IsType<GradientReply>(delivered).Gradient);
        _relay.ChangeNext(FrameBytes, change);
        Assert.True(_worker.Send(_relay.Endpoint, Header(2), Gradient(2f)));
        var deadline = DateTime.UtcNow + Wait;
        while (_master.RecordRefusals.Count == 0 && DateTime.UtcNow < deadline)
            Thread.Sleep(20);
        var after = new List<object>();
        while (_delivered.TryTake(out var message, TimeSpan.FromMilliseconds(300)))
            after.Add(message);
        return after;
    }

    private static byte[] Flip(byte[] bytes, int at)
    {
        var changed = (byte[])bytes.Clone();
        changed[at] ^= 0x10;
        return changed;
    }

    private void RefusedOnceAs(RecordRefusal kind, List<object> after, int deliveredFrames = 0)
    {
        Assert.Equal(new Dictionary<RecordRefusal, long> { [kind] = 1 }, _master.RecordRefusals);
        Assert.Equal(1L, _master.RefusalsByName[DataPlaneRecords.Name(kind)]);
        Assert.DoesNotContain(after, m => m is DataConnectionLost);
        Assert.Equal(deliveredFrames, after.Count(m => m is GradientReply));
        Assert.Equal(1 + deliveredFrames, _master.FramesReceived);
    }

    [Fact]
    public void A_flipped_bit_in_a_frame_header_record_is_refused_as_tampered()
    {
        RefusedOnceAs(RecordRefusal.Tampered, FirstIntactThenChanged(frame => (Flip(frame, DataPlaneRecords.HeaderSize + 24), false)));
    }

    [Fact]
    public void A_flipped_bit_in_a_record_header_is_refused_as_tampered()
    {
        // The length's high byte of the first payload record: still a valid length, so only the tag can tell.
        var after = FirstIntactThenChanged(frame => (Flip(frame, HeaderRecord + 5), false));
        Assert.Contains(_master.RecordRefusals.Keys.Single(), new[] { RecordRefusal.Tampered, RecordRefusal.BadLength });
        Assert.DoesNotContain(after, m => m is DataConnectionLost or GradientReply);
    }

    [Fact]
    public void A_flipped_bit_in_the_payload_is_refused_as_tampered()
    {
        RefusedOnceAs(RecordRefusal.Tampered, FirstIntactThenChanged(frame => (Flip(frame, HeaderRecord + DataPlaneRecords.HeaderSize + 100_000), false)));
    }

    [Fact]
    public void A_replayed_frame_is_refused_and_delivered_once()
    {
        // The frame passes, then its bytes come again: the second copy carries counters already used.
        RefusedOnceAs(RecordRefusal.Replayed, FirstIntactThenChanged(frame => ([.. frame, .. frame], false)), deliveredFrames: 1);
    }

    [Fact]
    public void Reordered_records_are_refused()
    {
        var after = FirstIntactThenChanged(frame =>
        {
            var swapped = (byte[])frame.Clone();
            int a = HeaderRecord, b = HeaderRecord + FirstPayloadRecord;
            frame.AsSpan(b, FirstPayloadRecord).CopyTo(swapped.AsSpan(a));
            frame.AsSpan(a, FirstPayloadRecord).CopyTo(swapped.AsSpan(b));
            return (swapped, false);
        });
        RefusedOnceAs(RecordRefusal.Reordered, after);
    }

    [Fact]
    public void A_truncated_frame_is_refused()
    {
        RefusedOnceAs(RecordRefusal.Truncated, FirstIntactThenChanged(frame => (frame[..(frame.Length / 2)], true)));
    }

    /// <summary>A TCP relay to the master that passes bytes both ways and can change the next N bytes the client sends.</summary>
    private sealed class Relay : IDisposable
    {
        private readonly Socket _listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        private readonly int _target;
        private readonly List<Socket> _sockets = new();
        private Func<byte[], (byte[] Send, bool Close)>? _change;
        private int _size;

        public Relay(int target)
        {
            _target = target;
            _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            _listener.Listen(4);
            new Thread(Accept) { IsBackground = true }.Start();
        }

        public string Endpoint => $"127.0.0.1:{((IPEndPoint)_listener.LocalEndPoint!).Port}";

        public void ChangeNext(int size, Func<byte[], (byte[] Send, bool Close)> change)
        {
            _size = size;
            Volatile.Write(ref _change, change);
        }

        private void Accept()
        {
            try
            {
                while (true)
                {
                    var client = _listener.Accept();
                    var server = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                    server.Connect(IPAddress.Loopback, _target);
                    lock (_sockets)
                        _sockets.AddRange([client, server]);
                    new Thread(() => Pump(server, client, changing: false)) { IsBackground = true }.Start();
                    new Thread(() => Pump(client, server, changing: true)) { IsBackground = true }.Start();
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
            }
        }

        private void Pump(Socket from, Socket to, bool changing)
        {
            var buffer = new byte[64 << 10];
            var held = new List<byte>();
            try
            {
                int n;
                while ((n = from.Receive(buffer)) > 0)
                {
                    if (!changing || Volatile.Read(ref _change) is not { } change)
                    {
                        to.Send(buffer.AsSpan(0, n));
                        continue;
                    }
                    held.AddRange(buffer.AsSpan(0, n));
                    if (held.Count < _size)
                        continue;
                    var (send, close) = change([.. held.Take(_size)]);
                    to.Send(send);
                    if (close)
                    {
                        to.Shutdown(SocketShutdown.Both);
                        from.Shutdown(SocketShutdown.Both);
                        return;
                    }
                    to.Send(held.Skip(_size).ToArray());
                    held.Clear();
                    _change = null;
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
            }
        }

        public void Dispose()
        {
            _listener.Dispose();
            lock (_sockets)
                foreach (var socket in _sockets)
                    socket.Dispose();
        }
    }
}
