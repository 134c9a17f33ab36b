using System.Diagnostics;
using System.IO.Pipelines;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using DistSgd.Actors.Transport;

namespace DistSgd.Bench;

/// <summary>
/// `-- socket [--bytes N] [--iterations N]`: the raw loopback floor for the direct data plane, and the choice of
/// its socket layer. One payload of N bytes (default: the default MLP's 940,584-byte gradient) goes to an echo
/// thread and comes back whole, N bytes each way, timed per round trip; the table shows the median and p90.
/// </summary>
/// <remarks>
/// Three ways to read a payload into the float[] a message record keeps:
/// <list type="bullet">
/// <item>blocking <see cref="Socket.Receive(Span{byte})"/> on a dedicated thread, straight into the float[]
/// (what <c>DirectDataPlane</c> does: one kernel → array copy);</item>
/// <item>async <see cref="NetworkStream"/> reads into a pooled byte[], then a copy into the float[];</item>
/// <item><see cref="PipeReader"/> over the stream, segments copied into the float[].</item>
/// </list>
/// And the data plane with TLS on: blocking <see cref="SslStream"/> reads straight into the float[] over TLS 1.2/1.3
/// with client certificates (ECDSA P-256, as scripts/make-certs.sh makes them), both directions encrypted.
/// And the encrypted data plane's path (<see cref="DataPlaneRecords"/>): AEGIS-128L records of <c>--chunk</c> bytes
/// (default 256 KB) sealed into a send buffer and sent on the bare socket, read into a receive buffer and opened into the float[].
/// The plain blocking contestant is the baseline measured in the same run.
/// The contestants interleave (one round trip each, in turn) so the machine's drift hits them alike.
/// </remarks>
public static class SocketRoundTrip
{
    public static int Run(string[] args)
    {
        int bytes = QuickBenchOptions.Int(args, "--bytes", 940_584);
        int iterations = QuickBenchOptions.Int(args, "--iterations", 1000);
        var payload = new float[bytes / sizeof(float)];
        for (int i = 0; i < payload.Length; i++)
            payload[i] = i;

        using var blocking = new Contestant("blocking Socket.Receive into float[]", bytes, Mode.Blocking);
        using var stream = new Contestant("async NetworkStream, pooled byte[] + copy", bytes, Mode.Stream);
        using var pipe = new Contestant("System.IO.Pipelines PipeReader + copy", bytes, Mode.Pipe);
        using var tls = new Contestant("TLS: blocking SslStream.Read into float[]", bytes, Mode.Tls);
        CipherSuitesPolicy? aes128 = null;
        if (OperatingSystem.IsLinux())
            aes128 = new CipherSuitesPolicy([TlsCipherSuite.TLS_AES_128_GCM_SHA256, TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]);
        using var tls128 = new Contestant("TLS, AES-128-GCM preferred", bytes, Mode.Tls, aes128);
        int chunk = QuickBenchOptions.Int(args, "--chunk", DataPlaneRecords.DefaultChunk);
        using var records = new Contestant($"AEGIS-128L records ({chunk >> 10} KB) on the socket", bytes, Mode.Records, chunk: chunk);
        var contestants = new[] { blocking, stream, pipe, tls, tls128, records };
        for (int warm = 0; warm < 50; warm++)
            foreach (var c in contestants)
                c.RoundTrip(payload);
        var samples = contestants.ToDictionary(c => c, _ => new List<double>());
        for (int i = 0; i < iterations; i++)
            foreach (var c in contestants)
                samples[c].Add(c.RoundTrip(payload));

        Console.WriteLine($"loopback round trip of {bytes:N0} bytes each way, {iterations} times, interleaved; TLS: {tls.Protocol}, {tls.Cipher} (and {tls128.Cipher})");
        Console.WriteLine("| socket layer | median ms | p90 ms | GB/s (both ways, median) |");
        Console.WriteLine("| --- | ---: | ---: | ---: |");
        foreach (var c in contestants)
        {
            var sorted = samples[c].Order().ToList();
            double median = sorted[sorted.Count / 2], p90 = sorted[(int)(sorted.Count * 0.9)];
            Console.WriteLine($"| {c.Name} | {median:F3} | {p90:F3} | {2.0 * bytes / (median / 1000) / 1e9:F2} |");
        }
        return 0;
    }

    private enum Mode { Blocking, Stream, Pipe, Tls, Records }

    /// <summary>A client socket and an echo thread that reads a whole payload, then writes it back.</summary>
    private sealed class Contestant : IDisposable
    {
        private readonly Socket _client;
        private readonly Socket _server;
        private readonly Thread _echo;
        private readonly Mode _mode;
        private readonly float[] _received;
        private readonly byte[] _pooled;
        private readonly NetworkStream _clientStream;
        private readonly PipeReader _clientPipe;
        private readonly SslStream? _clientTls;
        private readonly SslStream? _serverTls;
        private readonly RecordSealer? _clientSealer, _serverSealer;
        private readonly RecordOpener? _clientOpener, _serverOpener;
        private readonly byte[] _clientSend, _serverSend;
        private readonly byte[] _clientReceive = RecordSocket.ReceiveBuffer();

        public Contestant(string name, int bytes, Mode mode, CipherSuitesPolicy? ciphers = null, int chunk = DataPlaneRecords.DefaultChunk)
        {
            _clientSend = RecordSocket.SendBuffer(chunk);
            _serverSend = RecordSocket.SendBuffer(chunk);
            if (mode == Mode.Records)
            {
                // Keys as the data plane derives them after its handshake: one per direction.
                byte[] Key(RecordDirection d) => DataPlaneRecords.DeriveKey(RandomNumberGenerator.GetBytes(32), RandomNumberGenerator.GetBytes(32), 1, 0,
                                                                             RandomNumberGenerator.GetBytes(32), RandomNumberGenerator.GetBytes(32), d);
                var up = Key(RecordDirection.ClientToServer);
                var down = Key(RecordDirection.ServerToClient);
                (_clientSealer, _serverOpener) = (new RecordSealer(up, RecordDirection.ClientToServer), new RecordOpener(up, RecordDirection.ClientToServer));
                (_serverSealer, _clientOpener) = (new RecordSealer(down, RecordDirection.ServerToClient), new RecordOpener(down, RecordDirection.ServerToClient));
            }
            Name = name;
            _mode = mode;
            _received = new float[bytes / sizeof(float)];
            _pooled = new byte[bytes];
            using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            listener.Listen(1);
            _client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true, SendBufferSize = 4 << 20, ReceiveBufferSize = 4 << 20 };
            _client.Connect(listener.LocalEndPoint!);
            _server = listener.Accept();
            _server.NoDelay = true;
            _server.SendBufferSize = _server.ReceiveBufferSize = 4 << 20;
            _clientStream = new NetworkStream(_client);
            _clientPipe = PipeReader.Create(_clientStream, new StreamPipeReaderOptions(bufferSize: 256 << 10));
            if (mode == Mode.Tls)
                (_clientTls, _serverTls) = Handshake(_clientStream, new NetworkStream(_server), ciphers);
            _echo = new Thread(() => Echo(bytes)) { IsBackground = true };
            _echo.Start();
        }

        public string Name { get; }

        public string Protocol => _clientTls?.SslProtocol.ToString() ?? "none";

        public string Cipher => _clientTls?.NegotiatedCipherSuite.ToString() ?? "none";

        /// <summary>A TLS connection as the data plane makes it: one CA, node certificates, client certificate required.</summary>
        private static (SslStream Client, SslStream Server) Handshake(Stream client, Stream server, CipherSuitesPolicy? ciphers)
        {
            using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var caRequest = new CertificateRequest("CN=bench CA", caKey, HashAlgorithmName.SHA256);
            caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
            using var ca = caRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
            X509Certificate2 Node(string name)
            {
                using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
                var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
                using var signed = request.Create(ca, DateTimeOffset.UtcNow.AddHours(-1), DateTimeOffset.UtcNow.AddHours(12), [1, 2, 3, (byte)name.Length]);
                return signed.CopyWithPrivateKey(key);
            }
            var anchor = X509CertificateLoader.LoadCertificate(ca.RawData);
            bool Validate(X509Certificate? certificate)
            {
                if (certificate is null)
                    return false;
                using var chain = new X509Chain();
                chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                chain.ChainPolicy.CustomTrustStore.Add(anchor);
                chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                return chain.Build(X509CertificateLoader.LoadCertificate(certificate.GetRawCertData()));
            }
            var clientTls = new SslStream(client);
            var serverTls = new SslStream(server);
            var protocols = SslProtocols.Tls12 | SslProtocols.Tls13;
            var serving = serverTls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
            {
                ServerCertificate = Node("server"), ClientCertificateRequired = true, EnabledSslProtocols = protocols, CipherSuitesPolicy = ciphers,
                RemoteCertificateValidationCallback = (_, c, _, _) => Validate(c),
            });
            clientTls.AuthenticateAsClient(new SslClientAuthenticationOptions
            {
                TargetHost = "localhost", ClientCertificates = [Node("client")], EnabledSslProtocols = protocols,
                RemoteCertificateValidationCallback = (_, c, _, _) => Validate(c),
            });
            serving.GetAwaiter().GetResult();
            return (clientTls, serverTls);
        }

        private void Echo(int bytes)
        {
            var buffer = new float[bytes / sizeof(float)];
            var span = MemoryMarshal.AsBytes(buffer.AsSpan());
            var received = RecordSocket.ReceiveBuffer();
            try
            {
                while (_mode == Mode.Records)
                {
                    if (RecordSocket.Receive(_server, _serverOpener!, span, received) is not null)
                        return;
                    RecordSocket.Send(_server, _serverSealer!, span, _serverSend);
                }
                while (true)
                {
                    for (int read = 0; read < span.Length;)
                    {
                        int n = _serverTls is null ? _server.Receive(span[read..]) : _serverTls.Read(span[read..]);
                        if (n == 0)
                            return;
                        read += n;
                    }
                    if (_serverTls is null)
                        _server.Send(span);
                    else
                        _serverTls.Write(span);
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or IOException)
            {
            }
        }

        /// <summary>One round trip in milliseconds; the payload comes back into a float[] by this contestant's method.</summary>
        public double RoundTrip(float[] payload)
        {
            long started = Stopwatch.GetTimestamp();
            if (_mode == Mode.Records)
                RecordSocket.Send(_client, _clientSealer!, MemoryMarshal.AsBytes(payload.AsSpan()), _clientSend);
            else if (_clientTls is null)
                _client.Send(MemoryMarshal.AsBytes(payload.AsSpan()));
            else
                _clientTls.Write(MemoryMarshal.AsBytes(payload.AsSpan()));
            var target = MemoryMarshal.AsBytes(_received.AsSpan());
            switch (_mode)
            {
                case Mode.Tls:
                    for (int read = 0; read < target.Length;)
                        read += _clientTls!.Read(target[read..]);
                    break;
                case Mode.Records:
                    if (RecordSocket.Receive(_client, _clientOpener!, target, _clientReceive) is { } refused)
                        throw new InvalidOperationException($"the echo's records were refused: {refused}");
                    break;
                case Mode.Blocking:
                    for (int read = 0; read < target.Length;)
                        read += _client.Receive(target[read..]);
                    break;
                case Mode.Stream:
                    for (int read = 0; read < _pooled.Length;)
                        read += _clientStream.ReadAsync(_pooled.AsMemory(read)).AsTask().GetAwaiter().GetResult();
                    _pooled.CopyTo(target);
                    break;
                case Mode.Pipe:
                    for (int read = 0; read < target.Length;)
                    {
                        var result = _clientPipe.ReadAsync().AsTask().GetAwaiter().GetResult();
                        var buffer = result.Buffer.Slice(0, Math.Min(result.Buffer.Length, target.Length - read));
                        foreach (var segment in buffer)
                        {
                            segment.Span.CopyTo(target[read..]);
                            read += segment.Length;
                        }
                        _clientPipe.AdvanceTo(buffer.End);
                    }
                    break;
            }
            double ms = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            if (_received[^1] != payload[^1])
                throw new InvalidOperationException("the payload came back wrong");
            return ms;
        }

        public void Dispose()
        {
            _clientTls?.Dispose();
            _serverTls?.Dispose();
            _clientSealer?.Dispose();
            _serverSealer?.Dispose();
            _clientOpener?.Dispose();
            _serverOpener?.Dispose();
            _client.Dispose();
            _server.Dispose();
        }
    }
}

/// <summary>Tiny flag reader for the hand-rolled benches.</summary>
internal static class QuickBenchOptions
{
    public static int Int(string[] args, string name, int fallback) =>
        Text(args, name) is { } text ? int.Parse(text, System.Globalization.CultureInfo.InvariantCulture) : fallback;

    /// <summary>The value after <paramref name="name"/>, or null when the flag is not given.</summary>
    public static string? Text(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }
}
