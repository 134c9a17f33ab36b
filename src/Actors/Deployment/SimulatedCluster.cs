using Akka.Actor;
using Akka.Configuration;
using DistSgd.Actors.Security;

namespace DistSgd.Actors.Deployment;

/// <summary>
/// The single-process simulated cluster: several ActorSystems, each with its own remoting port on
/// 127.0.0.1, joined into one real Akka cluster over TCP. The same code path as a multi-machine
/// cluster; only the addresses differ.
/// </summary>
public sealed class SimulatedCluster : IAsyncDisposable
{
    private SimulatedCluster(IReadOnlyList<ActorSystem> nodes) => Nodes = nodes;

    /// <summary>The nodes, in the order of the role lists they were started with.</summary>
    public IReadOnlyList<ActorSystem> Nodes { get; }

    /// <summary>
    /// Starts one node per entry of <paramref name="nodeRoles"/> and waits until every member is Up.
    /// The first node is the seed; the others join it. With <paramref name="tls"/> (read from <paramref name="overrides"/>
    /// by <see cref="NodeTls.FromConfig"/>) every node uses that certificate on Akka.Remote and on the data plane.
    /// </summary>
    public static async Task<SimulatedCluster> StartAsync(IReadOnlyList<string[]> nodeRoles, long frameSize,
                                                          TimeSpan timeout, string logLevel = "WARNING", Config? overrides = null,
                                                          NodeTls? tls = null)
    {
        if (nodeRoles.Count == 0)
            throw new ArgumentException("a cluster needs at least one node", nameof(nodeRoles));
        var nodes = new List<ActorSystem>();
        try
        {
            foreach (var roles in nodeRoles)
                nodes.Add(NodeConfig.CreateActorSystem(NodeConfig.Build("127.0.0.1", 0, roles, frameSize, logLevel: logLevel, overrides: overrides, quietShutdown: true), tls));

            var seed = Akka.Cluster.Cluster.Get(nodes[0]).SelfAddress;
            var allUp = nodes.Select(node =>
            {
                var up = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                var cluster = Akka.Cluster.Cluster.Get(node);
                cluster.RegisterOnMemberUp(() => up.TrySetResult());
                cluster.Join(seed);
                return up.Task;
            }).ToList();

            var waiting = Task.WhenAll(allUp);
            if (await Task.WhenAny(waiting, Task.Delay(timeout)) != waiting)
                throw new TimeoutException($"the simulated cluster of {nodes.Count} nodes did not come Up within {timeout.TotalSeconds:0}s");
            return new SimulatedCluster(nodes);
        }
        catch
        {
            await Task.WhenAll(nodes.Select(n => n.Terminate()));
            throw;
        }
    }

    /// <summary>
    /// Leaves the cluster gracefully (CoordinatedShutdown) on every node at once, since leaving one by one costs
    /// a few gossip rounds per node, and stops every node.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        // The run is over: the associations the nodes now close are expected, not news.
        foreach (var node in Nodes)
            NodeLogger.MuteForShutdown(node);
        var shutdowns = Task.WhenAll(Nodes.Select(node => CoordinatedShutdown.Get(node).Run(CoordinatedShutdown.ClrExitReason.Instance)));
        await Task.WhenAny(shutdowns, Task.Delay(TimeSpan.FromSeconds(10)));
        await Task.WhenAll(Nodes.Select(n => n.Terminate()));
    }
}
