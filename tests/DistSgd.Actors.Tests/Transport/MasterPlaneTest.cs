using System.Collections.Concurrent;
using System.Net.Sockets;
using DistSgd.Actors.Centralized;
using DistSgd.Actors.Transport;
using DistSgd.Numerics.Compression;

namespace DistSgd.Actors.Tests.Transport;

/// <summary>
/// A master's data plane of two workers on loopback that knows both workers' keys (as the control plane would have
/// told it), and raw client sockets to it that a test drives byte by byte.
/// </summary>
public abstract class MasterPlaneTest : IDisposable
{
    protected static readonly TimeSpan Wait = TimeSpan.FromSeconds(5);

    private readonly List<Socket> _clients = new();

    /// <param name="gradients">How the run's gradient frames travel (null: float32).</param>
    protected MasterPlaneTest(string runId, int parameters, TimeSpan frameTimeout, ShareEncoding? gradients = null)
    {
        RunId = runId;
        Master = new DirectDataPlane(new DataPlaneOptions(runId, parameters, FrameKind.GradientReply, SenderCount: 2, "127.0.0.1", 0, frameTimeout,
                                                          Gradients: gradients),
                                     GradientReply.FromFrame, Delivered.Add);
        for (int node = 0; node < Keys.Length; node++)
            Master.Trust(node, $"worker{node}:1", Keys[node]);
    }

    protected string RunId { get; }

    protected DirectDataPlane Master { get; }

    /// <summary>What the plane delivered: records and <see cref="DataConnectionLost"/>s.</summary>
    protected BlockingCollection<object> Delivered { get; } = new();

    /// <summary>Worker 0's and worker 1's keys.</summary>
    protected byte[][] Keys { get; } = [DataPlaneHandshake.NewRandom(), DataPlaneHandshake.NewRandom()];

    public void Dispose()
    {
        foreach (var client in _clients)
            client.Dispose();
        Master.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>A fresh connection that has proved nothing yet.</summary>
    protected Socket Open()
    {
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        client.Connect("127.0.0.1", int.Parse(Master.Endpoint.Split(':')[1]));
        _clients.Add(client);
        return client;
    }

    /// <summary>A connection that proved it is worker <paramref name="node"/>.</summary>
    protected Socket Connect(int node)
    {
        var client = Open();
        HandshakeClient.Prove(client, RunId, node, Keys[node], Master.Key);
        return client;
    }

    /// <summary>True when the plane closed the client's connection (reads reach the end, or fail) within the wait.</summary>
    protected static bool ClosedByPeer(Socket client)
    {
        client.ReceiveTimeout = (int)Wait.TotalMilliseconds;
        try
        {
            var buffer = new byte[256];
            while (client.Receive(buffer) > 0)
            {
            }
            return true;
        }
        catch (SocketException e)
        {
            return e.SocketErrorCode != SocketError.TimedOut;
        }
    }
}
