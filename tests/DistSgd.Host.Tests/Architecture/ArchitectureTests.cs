using System.Reflection;
using DistSgd.Host.Runs;
using DistSgd.Numerics.Data;

namespace DistSgd.Host.Tests.Architecture;

public class ArchitectureTests
{
    /// <summary>
    /// The assemblies whose namespaces must form no cycle: every DistSgd assembly (this test project sees them all).
    /// DistSgd.Actors also keeps its layers (<see cref="NamespaceLayerTests"/>).
    /// </summary>
    private static readonly Assembly[] Acyclic =
    [
        typeof(TrainRun).Assembly,
        typeof(DistSgd.Actors.DistSgdSettings).Assembly,
        typeof(Dataset).Assembly,
    ];

    [Fact]
    public void The_namespaces_of_the_DistSgd_assemblies_form_no_cycle()
    {
        var graph = NamespaceDependencies.Of(Acyclic, ns => ns.StartsWith("DistSgd.", StringComparison.Ordinal));
        Assert.Contains("DistSgd.Host.Runs", graph.Keys);
        Assert.Contains("DistSgd.Numerics.Training", graph.Keys);
        Assert.Contains("DistSgd.Actors.Steps", graph.Keys);
        var cycle = NamespaceDependencies.FindCycle(graph);
        Assert.True(cycle is null, $"namespaces in a cycle: {string.Join(" → ", cycle ?? [])}");
    }

    [Fact]
    public void The_dependencies_are_read_from_the_binaries_including_lambdas_and_async_methods()
    {
        var graph = NamespaceDependencies.Of([typeof(TrainRun).Assembly], ns => ns.StartsWith("DistSgd.", StringComparison.Ordinal));
        // The coordinators' reporters (CallbackActor, Actors.Deployment) are made inside a lambda and the simulated
        // cluster is started in an async method: both compile to nested types that count for the run's namespace.
        Assert.Contains("DistSgd.Actors.Deployment", graph["DistSgd.Host.Runs"]);
        Assert.Contains("DistSgd.Host.Display", graph["DistSgd.Host.Runs"]);
        Assert.Contains("DistSgd.Host.Settings", graph["DistSgd.Host.Display"]);
        Assert.DoesNotContain("DistSgd.Host.Runs", graph["DistSgd.Host.Display"]);
    }

    [Fact]
    public void The_cycle_finder_names_the_namespaces_of_a_cycle()
    {
        var graph = new Dictionary<string, HashSet<string>>
        {
            ["A"] = ["B"],
            ["B"] = ["C", "D"],
            ["C"] = [],
            ["D"] = ["B"],
        };
        Assert.Equal(["B", "D", "B"], NamespaceDependencies.FindCycle(graph));
    }

    [Fact]
    public void The_cycle_finder_accepts_a_graph_that_only_joins_again()
    {
        // A diamond: two paths to the same namespace are no cycle.
        var graph = new Dictionary<string, HashSet<string>>
        {
            ["A"] = ["B", "C"],
            ["B"] = ["D"],
            ["C"] = ["D"],
            ["D"] = [],
        };
        Assert.Null(NamespaceDependencies.FindCycle(graph));
    }

    [Fact]
    public void The_cycle_finder_sees_a_namespace_that_uses_a_namespace_using_it()
    {
        var graph = new Dictionary<string, HashSet<string>> { ["Runs"] = ["Display"], ["Display"] = ["Runs"] };
        Assert.Equal(["Display", "Runs", "Display"], NamespaceDependencies.FindCycle(graph));
    }
}
