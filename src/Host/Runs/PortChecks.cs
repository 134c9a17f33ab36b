using System.Net;
using System.Net.Sockets;
using DistSgd.Actors;
using DistSgd.Actors.Transport;
using DistSgd.Host.Settings;

namespace DistSgd.Host.Runs;

/// <summary>
/// Ports checked before a run starts: a port another process holds, or a fixed direct port that several nodes of one
/// host would share, is bad input (exit 2, naming the flag or key), not a stack trace, a hang or a failed run.
/// </summary>
public static class PortChecks
{
    /// <summary>
    /// Refuses a fixed distsgd.direct.port for train's simulated cluster when it has more than one node: all of them run
    /// on 127.0.0.1, and only the first could listen there.
    /// </summary>
    public static void CheckSimulatedCluster(TrainSettings settings, DistSgdSettings distsgd)
    {
        int nodes = settings.Mode == RunMode.Decentralized ? settings.ComputeNodes : settings.ComputeNodes + 1;
        if (settings.Mode.IsDistributed() && distsgd.Transport == PayloadTransport.Direct && distsgd.DirectPort != 0 && nodes > 1)
            throw new UsageException(
                $"distsgd.direct.port: train runs its {nodes} nodes on one host, so they cannot share the fixed port {distsgd.DirectPort}; expected 0 (any free port)");
    }

    /// <summary>
    /// Refuses a node whose remoting port (--port) or fixed direct port (distsgd.direct.port) cannot be listened on, or
    /// that asks for the same port twice; port 0 (any free port) always passes.
    /// </summary>
    public static void CheckNode(NodeSettings node, DistSgdSettings distsgd)
    {
        string? problem = CannotListen(node.Host, node.Port);
        if (problem is not null)
            throw new UsageException($"--host {node.Host} --port {node.Port}: cannot listen for Akka remoting there: {problem}");
        if (node.Discovery.Bootstraps && CannotListen(node.Host, node.Discovery.ManagementPort) is { } managementProblem)
            throw new UsageException($"--management-port {node.Discovery.ManagementPort}: cannot listen for Akka.Management's HTTP endpoint on {node.Host}: {managementProblem}");
        if (distsgd.Transport != PayloadTransport.Direct || distsgd.DirectPort == 0)
            return;
        string directHost = distsgd.DirectHostname.Length > 0 ? distsgd.DirectHostname : node.Host;
        if (distsgd.DirectPort == node.Port)
            throw new UsageException($"distsgd.direct.port: {distsgd.DirectPort} is also --port (Akka remoting's); expected another port, or 0 (any free port)");
        if (node.Discovery.Bootstraps && distsgd.DirectPort == node.Discovery.ManagementPort)
            throw new UsageException($"distsgd.direct.port: {distsgd.DirectPort} is also --management-port (Akka.Management's); expected another port, or 0 (any free port)");
        problem = CannotListen(directHost, distsgd.DirectPort);
        if (problem is not null)
            throw new UsageException($"distsgd.direct.port: cannot listen on {directHost}:{distsgd.DirectPort} for the direct data plane: {problem}");
    }

    /// <summary>
    /// Why nothing can listen on <paramref name="host"/>:<paramref name="port"/> now, or null when it can (or when
    /// <paramref name="port"/> is 0, or the host does not resolve: the listener then names that itself).
    /// </summary>
    public static string? CannotListen(string host, int port)
    {
        if (port == 0)
            return null;
        IPAddress? address = host is "" or "0.0.0.0" ? IPAddress.Any : IPAddress.TryParse(host, out var parsed) ? parsed : Resolve(host);
        if (address is null)
            return null;
        var listener = new TcpListener(address, port);
        try
        {
            listener.Start();
            return null;
        }
        catch (SocketException e)
        {
            return e.SocketErrorCode == SocketError.AddressAlreadyInUse
                ? "the port is in use (by another process, or another node of this host)"
                : e.Message;
        }
        finally
        {
            listener.Stop();
        }
    }

    private static IPAddress? Resolve(string host)
    {
        try
        {
            return Dns.GetHostAddresses(host).FirstOrDefault();
        }
        catch (SocketException)
        {
            return null;
        }
    }
}
