using Akka.Actor;

namespace DistSgd.Actors.Decentralized;

/// <summary>
/// Puts the decentralized mode's actors on cluster nodes: one <see cref="PeerActor"/> per node with the peer
/// role, all talking through DistributedPubSub on the run's topic.
/// </summary>
public static class DecentralizedDeployment
{
    /// <summary>Name of the peer actor on every node.</summary>
    public const string PeerName = "peer";

    /// <summary>The DistributedPubSub topic of a run: its shares, hashes and resyncs, and nothing else.</summary>
    public static string Topic(string runId) => $"distsgd-run-{runId}";

    /// <summary>Starts this node's peer for the run described by <paramref name="setup"/>.</summary>
    public static IActorRef StartPeer(ActorSystem node, PeerSetup setup) =>
        node.ActorOf(PeerActor.Props(setup), PeerName);
}
