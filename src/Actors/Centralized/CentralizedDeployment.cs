using Akka.Actor;
using Akka.Cluster.Tools.Singleton;
using DistSgd.Numerics.Data;

namespace DistSgd.Actors.Centralized;

/// <summary>
/// Puts the centralized mode's actors on cluster nodes: the MasterActor as a cluster singleton on nodes
/// with the master role, a WorkerActor (talking to the master through a singleton proxy) on worker nodes.
/// </summary>
public static class CentralizedDeployment
{
    /// <summary>Name of the singleton manager (and of the singleton under it).</summary>
    public const string MasterName = "master";

    /// <summary>Starts the singleton manager on a node that may host the master.</summary>
    public static IActorRef StartMaster(ActorSystem node, MasterSetup setup)
    {
        var settings = DistSgdSettings.Create(node);
        return node.ActorOf(ClusterSingletonManager.Props(
            MasterActor.Props(setup), PoisonPill.Instance,
            ClusterSingletonManagerSettings.Create(node).WithRole(settings.MasterRole).WithSingletonName(MasterName)),
            MasterName);
    }

    /// <summary>A proxy that always reaches the current master, wherever the singleton runs.</summary>
    public static IActorRef MasterProxy(ActorSystem node)
    {
        var settings = DistSgdSettings.Create(node);
        return node.ActorOf(ClusterSingletonProxy.Props($"/user/{MasterName}",
            ClusterSingletonProxySettings.Create(node).WithRole(settings.MasterRole).WithSingletonName(MasterName)),
            "master-proxy");
    }

    /// <summary>
    /// Starts this node's worker with its copy of the training data; <paramref name="expected"/> (this node's own
    /// description of the run) and <paramref name="reporter"/> as for <see cref="WorkerActor"/>.
    /// </summary>
    public static IActorRef StartWorker(ActorSystem node, Dataset train, int threads = 1, Protocol.RunPlan? expected = null,
                                        IActorRef? reporter = null, double slowdown = 1) =>
        node.ActorOf(WorkerActor.Props(MasterProxy(node), train, threads, expected, reporter, slowdown), "worker");
}
