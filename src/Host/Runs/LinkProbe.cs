using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace DistSgd.Host.Runs;

/// <summary>What <see cref="LinkProbe.Measure"/> found: α and β of the path to the echo server.</summary>
/// <param name="MessageSeconds">α: half the median round trip of a 64-byte message.</param>
/// <param name="SecondsPerByte">β: (half the median round trip of a payload − α) / payload bytes.</param>
/// <param name="PayloadBytes">The payload each round trip carried each way.</param>
public sealed record LinkMeasurement(double MessageSeconds, double SecondsPerByte, int PayloadBytes)
{
    /// <summary>The payload's rate, 8 / β, in bits per second.</summary>
    public double BitsPerSecond => 8 / SecondsPerByte;
}

/// <summary>
/// `distsgd bench link`: α and β of a TCP path between two hosts, with the data plane's socket settings (no Nagle, 4 MiB
/// buffers, blocking reads straight into the payload). One side echoes (<see cref="Serve"/>), the other sends a message
/// of 64 bytes and one of the payload's size in turn and times each round trip (<see cref="Measure"/>): a message goes
/// out whole and comes back whole, so a round trip is 2·(α + n·β).
/// </summary>
public static class LinkProbe
{
    public const int SmallBytes = 64;
    private const int SocketBuffer = 4 << 20;
    private const int MaxPayload = 1 << 30;

    /// <summary>Echoes every message of every connection on <paramref name="endpoint"/> until <paramref name="connections"/> have ended or cancelled.</summary>
    public static void Serve(IPEndPoint endpoint, int connections, CancellationToken cancellation, Action<IPEndPoint>? listening = null)
    {
        using var listener = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        listener.Bind(endpoint);
        listener.Listen(connections);
        listening?.Invoke((IPEndPoint)listener.LocalEndPoint!);
        using var stop = cancellation.Register(listener.Dispose);
        for (int served = 0; served < connections && !cancellation.IsCancellationRequested; served++)
        {
            Socket connection;
            try
            {
                connection = listener.Accept();
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException && cancellation.IsCancellationRequested)
            {
                return;
            }
            using (connection)
            using (cancellation.Register(connection.Dispose))
            {
                Configure(connection);
                var buffer = new byte[SmallBytes];
                var header = new byte[4];
                try
                {
                    while (true)
                    {
                        if (!ReadExactly(connection, header))
                            break;
                        int length = BinaryPrimitives.ReadInt32LittleEndian(header);
                        if (length is < 0 or > MaxPayload)
                            throw new InvalidDataException($"bench link: a message of {length} bytes announced; expected 0 to {MaxPayload}");
                        if (buffer.Length < length)
                            buffer = new byte[length];
                        if (!ReadExactly(connection, buffer.AsSpan(0, length)))
                            break;
                        connection.Send(header);
                        connection.Send(buffer.AsSpan(0, length));
                    }
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException)
                {
                    // The client went away mid-message, or the probe was cancelled: the next connection.
                }
            }
        }
    }

    /// <summary>
    /// Times <paramref name="repeats"/> round trips of a 64-byte message and of <paramref name="payloadBytes"/> bytes to
    /// the echo server at <paramref name="endpoint"/> (after 3 of each to warm up), and fits α and β from the medians.
    /// </summary>
    public static LinkMeasurement Measure(IPEndPoint endpoint, int payloadBytes, int repeats, TimeSpan connectTimeout)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(payloadBytes, SmallBytes);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(payloadBytes, MaxPayload);
        using var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        Configure(socket);
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                socket.Connect(endpoint);
                break;
            }
            catch (SocketException) when (deadline.Elapsed < connectTimeout)
            {
                Thread.Sleep(100);   // the server may not listen yet (another host starting)
            }
            catch (SocketException e)
            {
                throw new IOException($"bench link: no echo server at {endpoint} within {connectTimeout.TotalSeconds:0} s: {e.Message}");
            }
        }
        var payload = new byte[payloadBytes];
        Random.Shared.NextBytes(payload);
        var echo = new byte[payloadBytes];
        var small = new double[repeats];
        var large = new double[repeats];
        for (int i = -3; i < repeats; i++)
        {
            double s = RoundTrip(socket, payload.AsSpan(0, SmallBytes), echo), l = RoundTrip(socket, payload, echo);
            if (i < 0)
                continue;
            small[i] = s;
            large[i] = l;
        }
        double alpha = Median(small) / 2;
        double beta = Math.Max(Median(large) / 2 - alpha, 1e-15) / payloadBytes;
        return new LinkMeasurement(alpha, beta, payloadBytes);
    }

    private static double RoundTrip(Socket socket, ReadOnlySpan<byte> message, byte[] echo)
    {
        Span<byte> header = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(header, message.Length);
        long start = Stopwatch.GetTimestamp();
        socket.Send(header);
        socket.Send(message);
        if (!ReadExactly(socket, header) || !ReadExactly(socket, echo.AsSpan(0, message.Length)))
            throw new IOException("bench link: the echo server closed the connection mid-message");
        return Stopwatch.GetElapsedTime(start).TotalSeconds;
    }

    private static void Configure(Socket socket)
    {
        socket.NoDelay = true;
        socket.SendBufferSize = SocketBuffer;
        socket.ReceiveBufferSize = SocketBuffer;
    }

    private static bool ReadExactly(Socket socket, Span<byte> into)
    {
        while (into.Length > 0)
        {
            int read = socket.Receive(into);
            if (read == 0)
                return false;
            into = into[read..];
        }
        return true;
    }

    internal static double Median(double[] values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }
}
