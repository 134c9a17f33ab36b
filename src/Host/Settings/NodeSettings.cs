namespace DistSgd.Host.Settings;

/// <summary>
/// How `distsgd node` places this process in a cluster (the run itself is a <see cref="TrainSettings"/>, described
/// with the same flags as `train` on every node).
/// </summary>
public sealed record NodeSettings
{
    /// <summary>Address to bind remoting to (0.0.0.0 listens on every interface; then give --public-host).</summary>
    public required string Host { get; init; }

    /// <summary>Remoting port; 0 picks a free one (only sensible for a node that is not a seed).</summary>
    public required int Port { get; init; }

    /// <summary>The address other nodes reach this one at (NAT, containers), or null for <see cref="Host"/>.</summary>
    public string? PublicHost { get; init; }

    /// <summary>Seed node addresses (akka.tcp://distsgd@host:port); empty = this node starts a new cluster.</summary>
    public required IReadOnlyList<string> SeedNodes { get; init; }

    /// <summary>The roles this node holds: master, worker, peer (the CLI names, mapped to distsgd.roles.*).</summary>
    public required IReadOnlyList<string> Roles { get; init; }

    /// <summary>How long to try joining the cluster through the seed nodes before giving up; null = distsgd.start-timeout.</summary>
    public TimeSpan? JoinTimeout { get; init; }

    /// <summary>Print the effective configuration and exit instead of starting the node.</summary>
    public bool PrintConfig { get; init; }

    /// <summary>The run id every node of one run shares (a decentralized run's topic is named after it).</summary>
    public required string RunId { get; init; }
}

/// <summary>The values of --roles.</summary>
public static class NodeRoles
{
    public const string Master = "master";
    public const string Worker = "worker";
    public const string Peer = "peer";
    public static readonly string[] All = [Master, Worker, Peer];
}
