using Akka.Actor;
using Akka.Cluster.Tools.PublishSubscribe;
using DistSgd.Actors.Protocol;
using DistSgd.Actors.Transport;
using DistSgd.Numerics.Training;

namespace DistSgd.Actors.Collectives;

/// <summary>
/// The seed's all-gather and the reference: this peer's whole share to every other participant, published on the run's
/// topic (the Akka transport) or sent to every participant's data endpoint in node-id order; each peer's step gather
/// averages every share in node-id order. (N−1)·G bytes sent per peer and step.
/// </summary>
public sealed class AllGather(IActorRef mediator, string topic, DirectDataPlane? direct) : ICollective
{
    /// <summary>Every node's data endpoint, in node-id order (an array: sending enumerates it at every step without allocating).</summary>
    private (int NodeId, string Endpoint)[] _endpoints = [];

    public Collective Kind => Collective.AllGather;

    /// <summary>Test hook: the first share sent at this step or later goes to the first other participant only, then <see cref="Crash"/> is called (the peer stops once it gathered the step).</summary>
    internal long CrashAt { get; set; } = -1;

    /// <summary>Test hook: stops the node (see <see cref="CrashAt"/>).</summary>
    internal Action? Crash { get; set; }

    public void Connect(int self, IReadOnlyDictionary<int, string> endpoints) =>
        _endpoints = endpoints.OrderBy(e => e.Key).Select(e => (e.Key, e.Value)).ToArray();

    public long Send(IGradientContribution share, int epoch, int stepInEpoch, IReadOnlyCollection<int> participants, Action<int, string> unreachable)
    {
        if (direct is null)
        {
            mediator.Tell(new Publish(topic, share));
            return WireFormat.PayloadBytes(share) * (participants.Count - 1);
        }
        var header = new FrameHeader(FrameKind.GradientShare, 0, share.Step, share.Participant, epoch, stepInEpoch,
                                     share.SampleCount, share.LossSum, share.ComputeSeconds, 0);
        long bytes = 0;
        foreach (var (nodeId, endpoint) in _endpoints)
        {
            if (nodeId == share.Participant || !participants.Contains(nodeId))
                continue;
            if (direct.Send(endpoint, header, share.Gradient))
                bytes += direct.LastFrameBytes;   // the frame as encoded (distsgd.wire, distsgd.compress)
            else
                unreachable(nodeId, endpoint);
            if (CrashAt >= 0 && share.Step >= CrashAt)
            {
                CrashAt = -1;
                Crash?.Invoke();
                break;
            }
        }
        return bytes;
    }

    /// <summary>The data plane is the owner's (<c>ShareExchange</c>), which disposes it.</summary>
    public void Dispose()
    {
    }
}
