using DistSgd.Actors.Steps;

namespace DistSgd.Actors.Tests.Architecture;

/// <summary>
/// The namespaces of DistSgd.Actors form layers, each using only those below it: Protocol (and Security) at the
/// bottom; Transport on Protocol; the root (settings), Steps and Membership on those; the two modes on those and
/// never on each other; Deployment on top.
/// </summary>
public class NamespaceLayerTests
{
    private const string Root = "DistSgd.Actors";

    private static readonly string[][] Layers =
    [
        ["Protocol", "Security"],
        ["Transport"],
        [""],
        ["Steps", "Membership"],
        ["Centralized", "Decentralized"],
        ["Deployment"],
    ];

    /// <summary>Edges that break the layers today, each with who removes it; the list only shrinks.</summary>
    private static readonly HashSet<(string From, string To)> KnownBreaks =
    [
        // DistSgdSerializer knows every message: it belongs above the modes (a Serialization namespace), with the
        // payload sizes the modes count moved down to Protocol.
        ("Protocol", "Centralized"), ("Protocol", "Decentralized"), ("Protocol", "Transport"),
    ];

    /// <summary>The layer of a namespace below the root (its first part; "" is the root's own).</summary>
    private static int LayerOf(string local)
    {
        int layer = Array.FindIndex(Layers, l => l.Contains(local));
        Assert.True(layer >= 0, $"namespace {Name(local)} of {Root} is in no layer of {nameof(NamespaceLayerTests)}: add it");
        return layer;
    }

    private static string Local(string ns) => ns == Root ? "" : ns[(Root.Length + 1)..].Split('.')[0];

    [Fact]
    public void Every_namespace_uses_only_the_layers_below_it()
    {
        var edges = NamespaceDependencies.Of(typeof(Replica).Assembly, Root)
            .Select(e => (From: Local(e.From), To: Local(e.To))).Where(e => e.From != e.To).Distinct().ToList();
        Assert.NotEmpty(edges);
        var upward = edges.Where(e => LayerOf(e.From) <= LayerOf(e.To) && !KnownBreaks.Contains(e))
                          .Select(e => $"{Name(e.From)} → {Name(e.To)}").ToList();
        Assert.True(upward.Count == 0, "namespaces using their own layer or one above: " + string.Join(", ", upward));
    }

    [Fact]
    public void The_scan_sees_a_dependency_on_a_lower_layer()
    {
        var edges = NamespaceDependencies.Of(typeof(Replica).Assembly, Root);
        Assert.Contains(($"{Root}.Centralized", $"{Root}.Steps"), edges);
        Assert.Contains(($"{Root}.Transport", $"{Root}.Protocol"), edges);
    }

    private static string Name(string local) => local.Length == 0 ? "(root)" : local;
}
