using Akka.Actor;
using Akka.Actor.Setup;
using Akka.Configuration;
using DistSgd.Actors.Security;

namespace DistSgd.Actors.Deployment;

/// <summary>Builds the configuration of one cluster node: remoting address, roles, frame size, then DistSgd's defaults.</summary>
public static class NodeConfig
{
    /// <summary>The ActorSystem name every node of a DistSgd cluster shares (Akka only joins equal names).</summary>
    public const string SystemName = "distsgd";

    /// <summary>Akka.Remote's frame limit as DotNetty enforces it (a signed 32-bit length); we stay well below.</summary>
    public const long LargestFrame = 1L << 30;

    /// <summary>Room for the message envelope (actor paths, manifest, run id) around a vector payload.</summary>
    private const int EnvelopeAllowance = 64 * 1024;

    /// <summary>
    /// The maximum-frame-size that carries a vector message of <paramref name="parameterCount"/> floats with
    /// room to spare (at least 4 MiB). Throws with a message when the model cannot fit any Akka.Remote frame.
    /// </summary>
    public static long FrameSizeFor(int parameterCount)
    {
        long payload = (long)parameterCount * sizeof(float) + EnvelopeAllowance;
        long frame = Math.Max(4L << 20, payload + payload / 4);
        if (frame > LargestFrame)
            throw new ArgumentException(
                $"the model has {parameterCount:N0} parameters: one gradient message is {payload:N0} bytes, more than Akka.Remote's " +
                $"largest frame ({LargestFrame:N0} bytes); use a smaller model (--hidden)");
        return frame;
    }

    /// <param name="hostname">Address to bind (and advertise unless <paramref name="publicHostname"/> is given).</param>
    /// <param name="port">Remoting port; 0 picks a free one.</param>
    /// <param name="quietShutdown">Log through <see cref="NodeLogger"/>, which a host can mute once the run has ended
    /// (TestKit systems keep their own test loggers and leave this off).</param>
    public static Config Build(string hostname, int port, IEnumerable<string> roles, long frameSize,
                               string? publicHostname = null, string logLevel = "WARNING", Config? overrides = null,
                               bool quietShutdown = false)
    {
        string roleList = string.Join(", ", roles.Select(r => $"\"{r}\""));
        var node = ConfigurationFactory.ParseString($$"""
            akka {
              loglevel = {{logLevel}}
              # Akka's fallback console logger (before the loggers start, after they stop): warnings and errors only
              # where NodeLogger sends the rest to distsgd.log-file.
              stdout-loglevel = {{(quietShutdown ? "WARNING" : logLevel)}}
              {{(quietShutdown ? $"loggers = [\"{typeof(NodeLogger).FullName}, {typeof(NodeLogger).Assembly.GetName().Name}\"]" : "")}}
              actor.provider = cluster
              # Association errors of nodes leaving at the end of a run are expected, not warnings.
              remote.log-remote-lifecycle-events = off
              remote.dot-netty.tcp {
                hostname = "{{hostname}}"
                {{(publicHostname is null ? "" : $"public-hostname = \"{publicHostname}\"")}}
                port = {{port}}
                maximum-frame-size = {{frameSize}}b
                send-buffer-size = {{Math.Max(frameSize, 8L << 20)}}b
                receive-buffer-size = {{Math.Max(frameSize, 8L << 20)}}b
              }
              # Started with the node, not with the first peer: pub-sub gossip from nodes that are further along
              # must find its serializer registered (else "Cannot find serializer with id [9]").
              extensions = ["Akka.Cluster.Tools.PublishSubscribe.DistributedPubSubExtensionProvider, Akka.Cluster.Tools"]
              # Akka.Cluster.Tools 1.5 logs "failed to find an associated singleton … after 30 seconds" within the first
              # second of a worker's proxy; a worker reports a master that never shows up itself (distsgd.start-timeout).
              cluster.singleton-proxy.log-singleton-identification-failure = off
              cluster {
                roles = [{{roleList}}]
                # Singleton and pub-sub must not wait for stragglers of a previous run.
                run-coordinated-shutdown-when-down = on
              }
              coordinated-shutdown.exit-clr = off
            }
            """);
        var config = overrides is null ? node : overrides.WithFallback(node);
        return config.WithFallback(DistSgdConfig.ReferenceConfig);
    }

    /// <summary>
    /// Starts a node's ActorSystem from its whole configuration: plain, or, with <paramref name="tls"/> (read by
    /// <see cref="NodeTls.FromConfig"/> from the same configuration), with TLS on Akka.Remote and on the data plane.
    /// </summary>
    public static ActorSystem CreateActorSystem(Config config, NodeTls? tls)
    {
        if (tls is null)
        {
            if (config.GetBoolean(NodeTls.EnableSslKey, false))
                throw new InvalidOperationException($"{NodeTls.EnableSslKey} is on: load the node's certificate with NodeTls.FromConfig and pass it");
            return ActorSystem.Create(SystemName, config);
        }
        var setup = BootstrapSetup.Create().WithConfig(NodeTls.WithoutSecrets(config)).And(tls.AkkaSetup()).And(new NodeTlsSetup(tls));
        return ActorSystem.Create(SystemName, setup);
    }
}
