using DistSgd.Actors.Centralized;
using DistSgd.Actors.Decentralized;

namespace DistSgd.Actors.Deployment;

/// <summary>
/// Where a run's coordinator lives on a node, as the deployments place it, so that a host reaches it (to stop it before
/// the node goes down) without knowing how they name their actors.
/// </summary>
public static class CoordinatorPaths
{
    /// <summary>The master on a node that hosts the master's singleton manager: the singleton is the manager's child, under the same name.</summary>
    public static string Master { get; } = $"/user/{CentralizedDeployment.MasterName}/{CentralizedDeployment.MasterName}";

    /// <summary>The peer on a node of a decentralized run.</summary>
    public static string Peer { get; } = $"/user/{DecentralizedDeployment.PeerName}";
}
