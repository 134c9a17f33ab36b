using System.Globalization;

namespace DistSgd.Host.Settings;

/// <summary>How a `distsgd node` finds the cluster it joins (--discovery), parsed once by the command line.</summary>
public enum ClusterDiscovery
{
    /// <summary>The default: the addresses in --seed-nodes (none: this node starts a new cluster).</summary>
    SeedNodes,

    /// <summary>Akka.Management's cluster bootstrap over config discovery: the contact points are --discovery-endpoints.</summary>
    Config,

    /// <summary>Akka.Management's cluster bootstrap over the Kubernetes API: the contact points are the pods a label selector names.</summary>
    Kubernetes,
}

/// <summary>The names of <see cref="ClusterDiscovery"/>: the values of --discovery.</summary>
public static class ClusterDiscoveries
{
    private static readonly FlagValues<ClusterDiscovery> Values = new("--discovery", "one of",
        [(ClusterDiscovery.SeedNodes, "seed-nodes"), (ClusterDiscovery.Config, "config"), (ClusterDiscovery.Kubernetes, "kubernetes")]);

    /// <summary>The values of --discovery, in the order its help and its errors list them.</summary>
    public static string[] Names => Values.Names;

    /// <summary>The method's name on the command line ("config").</summary>
    public static string Name(this ClusterDiscovery discovery) => Values.Name(discovery);

    /// <summary>The method a --discovery value names; any other value fails naming the flag.</summary>
    public static ClusterDiscovery Parse(string name) => Values.Parse(name);
}

/// <summary>One contact point's Akka.Management HTTP endpoint (host:port), as --discovery-endpoints lists them.</summary>
public readonly record struct ManagementEndpoint(string Host, int Port)
{
    public override string ToString() => $"{Host}:{Port.ToString(CultureInfo.InvariantCulture)}";
}

/// <summary>
/// How a `distsgd node` joins its cluster: through seed nodes (the default), or through Akka.Management's cluster
/// bootstrap, which finds the contact points by a discovery method, asks each for the cluster it is in, and lets the
/// contact point with the lowest address start the cluster when none has formed (decision 0106). Built only by
/// <see cref="Create"/>, which refuses every combination of flags that cannot work, naming the flag.
/// </summary>
public sealed record DiscoverySettings
{
    /// <summary>Akka.Management's default HTTP port (akka.management.http.port).</summary>
    public const int DefaultManagementPort = 8558;

    /// <summary>The label selector --kubernetes-selector defaults to: the label deploy/kubernetes/ puts on every pod.</summary>
    public const string DefaultKubernetesSelector = "app=distsgd";

    /// <summary>Akka.Management's own default for required-contact-point-nr, taken for Kubernetes discovery.</summary>
    public const int DefaultKubernetesContactPoints = 2;

    /// <summary>Joining through seed nodes: no Akka.Management, no HTTP endpoint.</summary>
    public static readonly DiscoverySettings SeedNodes = new() { Method = ClusterDiscovery.SeedNodes };

    private DiscoverySettings()
    {
    }

    public ClusterDiscovery Method { get; private init; }

    /// <summary>The contact points' management endpoints (config discovery; the same list on every node).</summary>
    public IReadOnlyList<ManagementEndpoint> Endpoints { get; private init; } = [];

    /// <summary>This node's Akka.Management HTTP port, on which the other nodes' bootstrap asks it for its cluster.</summary>
    public int ManagementPort { get; private init; }

    /// <summary>How many contact points bootstrap must have found before the lowest one may start a new cluster.</summary>
    public int RequiredContactPoints { get; private init; }

    /// <summary>The Kubernetes label selector of the pods that are contact points (Kubernetes discovery).</summary>
    public string KubernetesSelector { get; private init; } = "";

    /// <summary>The namespace of those pods; null = the pod's own (read from its service account).</summary>
    public string? KubernetesNamespace { get; private init; }

    /// <summary>True when the node joins through Akka.Management's cluster bootstrap.</summary>
    public bool Bootstraps => Method != ClusterDiscovery.SeedNodes;

    /// <summary>
    /// Checks the join flags together and builds the settings, or throws a <see cref="UsageException"/> naming the flag:
    /// a flag of one method given with another, seed nodes with a discovery method, config discovery without endpoints,
    /// a malformed or repeated endpoint, a management port equal to the remoting port, more required contact points
    /// than endpoints, a bind-all host that does not say how others reach it, a selector Akka cannot use. A null value is a
    /// flag not given.
    /// </summary>
    public static DiscoverySettings Create(ClusterDiscovery method, bool seedNodesGiven, string? endpoints, int? managementPort,
                                           int? requiredContactPoints, string? kubernetesSelector, string? kubernetesNamespace,
                                           int remotingPort, string host, string? publicHost)
    {
        string methodName = method.Name();
        if (method == ClusterDiscovery.SeedNodes)
        {
            string? stray = endpoints is not null ? "--discovery-endpoints"
                : managementPort is not null ? "--management-port"
                : requiredContactPoints is not null ? "--required-contact-points"
                : kubernetesSelector is not null ? "--kubernetes-selector"
                : kubernetesNamespace is not null ? "--kubernetes-namespace"
                : null;
            if (stray is not null)
                throw new UsageException($"{stray}: only with --discovery config or kubernetes (cluster bootstrap); this node joins through --seed-nodes");
            return SeedNodes;
        }
        if (seedNodesGiven)
            throw new UsageException($"--seed-nodes: not with --discovery {methodName}: the nodes find each other through cluster bootstrap; give one or the other");
        if (method == ClusterDiscovery.Kubernetes && endpoints is not null)
            throw new UsageException("--discovery-endpoints: only with --discovery config; --discovery kubernetes finds the contact points by --kubernetes-selector");
        if (method == ClusterDiscovery.Config && (kubernetesSelector ?? kubernetesNamespace) is not null)
            throw new UsageException($"{(kubernetesSelector is not null ? "--kubernetes-selector" : "--kubernetes-namespace")}: only with --discovery kubernetes");
        int port = managementPort ?? DefaultManagementPort;
        if (port is < 1 or > 65535)
            throw new UsageException($"--management-port: expected a port from 1 to 65535, found '{port}'");
        if (port == remotingPort)
            throw new UsageException($"--management-port: {port} is also --port (Akka remoting's); expected another port");
        if (host is "0.0.0.0" or "::" && publicHost is null)
            throw new UsageException($"--public-host: --host {host} listens on every interface, so --discovery {methodName} needs the address the other nodes reach this one at");
        if (requiredContactPoints is < 1)
            throw new UsageException($"--required-contact-points: expected a number >= 1, found '{requiredContactPoints}'");

        if (method == ClusterDiscovery.Config)
        {
            if (string.IsNullOrWhiteSpace(endpoints))
                throw new UsageException("--discovery-endpoints: --discovery config needs the contact points' management endpoints, host:port,… (the same list on every node)");
            var list = ParseEndpoints(endpoints);
            int required = requiredContactPoints ?? list.Count;
            if (required > list.Count)
                throw new UsageException($"--required-contact-points: {required} is more than the {list.Count} --discovery-endpoints");
            return new DiscoverySettings { Method = method, Endpoints = list, ManagementPort = port, RequiredContactPoints = required };
        }

        string selector = kubernetesSelector ?? DefaultKubernetesSelector;
        if (selector.Trim().Length == 0 || selector.IndexOfAny(['{', '}', '"', '\\']) >= 0)
            throw new UsageException($"--kubernetes-selector: expected a label selector such as {DefaultKubernetesSelector} (no braces or quotes), found '{selector}'");
        if (kubernetesNamespace is not null && !IsDnsLabel(kubernetesNamespace))
            throw new UsageException($"--kubernetes-namespace: expected a namespace name (lower-case letters, digits and '-', at most 63), found '{kubernetesNamespace}'");
        return new DiscoverySettings
        {
            Method = method,
            ManagementPort = port,
            RequiredContactPoints = requiredContactPoints ?? DefaultKubernetesContactPoints,
            KubernetesSelector = selector.Trim(),
            KubernetesNamespace = kubernetesNamespace,
        };
    }

    /// <summary>Parses "host:port,host:port": each host non-empty, each port from 1 to 65535, no endpoint twice.</summary>
    public static IReadOnlyList<ManagementEndpoint> ParseEndpoints(string text)
    {
        var list = new List<ManagementEndpoint>();
        foreach (string entry in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            int colon = entry.LastIndexOf(':');
            string host = colon > 0 ? entry[..colon] : "";
            if (host.Length == 0 || host.Any(char.IsWhiteSpace) || host.IndexOfAny(['"', '\\', '/', '@']) >= 0
                || !int.TryParse(entry[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port is < 1 or > 65535)
                throw new UsageException($"--discovery-endpoints: expected host:port with a port from 1 to 65535 (the node's --management-port), found '{entry}'");
            var endpoint = new ManagementEndpoint(host, port);
            if (list.Contains(endpoint))
                throw new UsageException($"--discovery-endpoints: {endpoint} is listed twice");
            list.Add(endpoint);
        }
        if (list.Count == 0)
            throw new UsageException($"--discovery-endpoints: expected host:port,… found '{text}'");
        return list;
    }

    private static bool IsDnsLabel(string name) =>
        name.Length is > 0 and <= 63 && name.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '-')
        && name[0] != '-' && name[^1] != '-';
}
