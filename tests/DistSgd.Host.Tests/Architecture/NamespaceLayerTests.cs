using DistSgd.Actors.Steps;

namespace DistSgd.Host.Tests.Architecture;

/// <summary>
/// The namespaces of DistSgd.Actors form layers, each using only those below it: Protocol (and Security) at the
/// bottom; Transport on Protocol; the root (settings), Steps and Membership on those; the two modes on those and
/// never on each other; Codec (the serializer, which knows every message) above the modes; Deployment on top.
/// </summary>
public class NamespaceLayerTests
{
    private const string Root = "DistSgd.Actors";

    private static readonly string[][] Layers =
    [
        ["Protocol", "Security"],
        ["Transport"],
        ["", "Collectives"],
        ["Steps", "Membership"],
        ["Centralized", "Decentralized"],
        ["Codec"],
        ["Deployment"],
    ];

    /// <summary>The layer of a namespace below the root (its first part; "" is the root's own).</summary>
    private static int LayerOf(string local)
    {
        int layer = Array.FindIndex(Layers, l => l.Contains(local));
        Assert.True(layer >= 0, $"namespace {Name(local)} of {Root} is in no layer of {nameof(NamespaceLayerTests)}: add it");
        return layer;
    }

    private static string Local(string ns) => ns == Root ? "" : ns[(Root.Length + 1)..].Split('.')[0];

    private static List<(string From, string To)> Edges() =>
        NamespaceDependencies.Of([typeof(Replica).Assembly], ns => ns == Root || ns.StartsWith(Root + ".", StringComparison.Ordinal))
            .SelectMany(node => node.Value.Select(to => (From: Local(node.Key), To: Local(to))))
            .Where(e => e.From != e.To).Distinct().ToList();

    [Fact]
    public void Every_namespace_uses_only_the_layers_below_it()
    {
        var edges = Edges();
        Assert.NotEmpty(edges);
        var upward = edges.Where(e => LayerOf(e.From) <= LayerOf(e.To)).Select(e => $"{Name(e.From)} → {Name(e.To)}").ToList();
        Assert.True(upward.Count == 0, "namespaces using their own layer or one above: " + string.Join(", ", upward));
    }

    [Fact]
    public void The_scan_sees_a_dependency_on_a_lower_layer()
    {
        var edges = Edges();
        Assert.Contains(("Centralized", "Steps"), edges);
        Assert.Contains(("Transport", "Protocol"), edges);
        Assert.Contains(("Codec", "Decentralized"), edges);
    }

    private static string Name(string local) => local.Length == 0 ? "(root)" : local;
}
