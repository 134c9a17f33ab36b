using System.Collections.Concurrent;
using System.Net;
using Akka.Actor;

namespace DistSgd.Actors.Transport;

/// <summary>
/// Whether an IP address belongs to a current member of the node's cluster: the filter the direct data plane
/// applies to every inbound connection, so a process that can merely reach the port cannot feed a step.
/// </summary>
public static class ClusterMemberAddresses
{
    private static readonly ConcurrentDictionary<string, IPAddress[]> Resolved = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>A check that reads the cluster's current membership (a thread-safe snapshot) on every call.</summary>
    public static Func<IPAddress, bool> For(ActorSystem system)
    {
        var cluster = Akka.Cluster.Cluster.Get(system);
        return address =>
        {
            // This node's own address always counts (its other actors, and a node not yet joined).
            if (cluster.SelfAddress.Host is { } self && Addresses(self).Any(a => a.Equals(address)))
                return true;
            foreach (var member in cluster.State.Members)
            {
                if (member.Address.Host is { } host && Addresses(host).Any(a => a.Equals(address)))
                    return true;
            }
            return false;
        };
    }

    /// <summary>The addresses of a member's advertised host (an IP, or a name resolved once and cached).</summary>
    internal static IPAddress[] Addresses(string host) =>
        Resolved.GetOrAdd(host, h =>
        {
            if (IPAddress.TryParse(h, out var ip))
                return [ip.IsIPv4MappedToIPv6 ? ip.MapToIPv4() : ip];
            try
            {
                return Dns.GetHostAddresses(h).Select(a => a.IsIPv4MappedToIPv6 ? a.MapToIPv4() : a).ToArray();
            }
            catch (System.Net.Sockets.SocketException)
            {
                return [];
            }
        });
}
