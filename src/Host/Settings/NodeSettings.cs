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

    /// <summary>How the node finds the cluster: <see cref="DiscoverySettings.SeedNodes"/> (the default) or cluster bootstrap.</summary>
    public DiscoverySettings Discovery { get; init; } = DiscoverySettings.SeedNodes;

    /// <summary>The roles this node holds (mapped to distsgd.roles.* in the node's configuration).</summary>
    public required IReadOnlyList<NodeRole> Roles { get; init; }

    /// <summary>How long to try joining the cluster (through the seed nodes or the bootstrap) before giving up; null = distsgd.start-timeout.</summary>
    public TimeSpan? JoinTimeout { get; init; }

    /// <summary>Print the effective configuration and exit instead of starting the node.</summary>
    public bool PrintConfig { get; init; }

    /// <summary>The run id every node of one run shares (a decentralized run's topic is named after it).</summary>
    public required string RunId { get; init; }
}

/// <summary>A role a `distsgd node` holds (--roles), parsed once by the command line.</summary>
public enum NodeRole
{
    /// <summary>May host the master (centralized): the singleton runs on the oldest such node.</summary>
    Master,

    /// <summary>Computes gradients for the master (centralized).</summary>
    Worker,

    /// <summary>Holds a replica and all-gathers with the other peers (decentralized).</summary>
    Peer,
}

/// <summary>The names of <see cref="NodeRole"/>: the values of --roles, and how a role is written in the node's lines.</summary>
public static class NodeRoles
{
    private static readonly FlagValues<NodeRole> Values = new("--roles", "comma-separated roles among",
        [(NodeRole.Master, "master"), (NodeRole.Worker, "worker"), (NodeRole.Peer, "peer")]);

    /// <summary>The values of --roles, in the order its help and its errors list them.</summary>
    public static string[] Names => Values.Names;

    /// <summary>The role's name on the command line ("worker").</summary>
    public static string Name(this NodeRole role) => Values.Name(role);

    /// <summary>The role a --roles entry names; the command line has already refused any other value.</summary>
    public static NodeRole Parse(string name) => Values.Parse(name);

    /// <summary>"master,worker": the roles as --roles takes them.</summary>
    public static string Describe(IEnumerable<NodeRole> roles, string separator = ",") => string.Join(separator, roles.Select(Name));
}
