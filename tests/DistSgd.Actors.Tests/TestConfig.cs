using Akka.Configuration;
using DistSgd.Actors.Deployment;

namespace DistSgd.Actors.Tests;

/// <summary>Configuration of a TestKit node: a cluster provider on a free loopback port, short timeouts.</summary>
internal static class TestConfig
{
    /// <summary>
    /// DistributedPubSub gossips its registry every 200 ms instead of every second, so a start barrier passes
    /// sooner; the barrier's logic is the same, it only waits fewer seconds.
    /// </summary>
    public static Config FastPubSub => ConfigurationFactory.ParseString("akka.cluster.pub-sub.gossip-interval = 200ms");

    /// <summary>distsgd.transport = akka or direct, for the whole-cluster specs that run on both.</summary>
    public static Config Transport(string transport) => ConfigurationFactory.ParseString($"distsgd.transport = {transport}");

    /// <remarks>
    /// A TestKit node never joins a cluster, and terminating it through CoordinatedShutdown's cluster phases
    /// often waits out their 5 s timeouts; it is simply stopped instead (shutdown adds nothing to what it tests).
    /// </remarks>
    public static Config Node(string roles = "\"master\", \"worker\"", string stepTimeout = "2s") =>
        // These specs drive the protocol's Akka messages with probes, so payloads stay on the Akka transport.
        ConfigurationFactory.ParseString($"distsgd.step-timeout = {stepTimeout}\ndistsgd.start-timeout = 10s\ndistsgd.transport = akka\n" +
                                         "akka.coordinated-shutdown.run-by-actor-system-terminate = off")
            .WithFallback(NodeConfig.Build("127.0.0.1", 0, roles.Split(',').Select(r => r.Trim().Trim('"')), 4 << 20));
}
