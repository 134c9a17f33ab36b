using Akka.Actor;
using Akka.Cluster.Tools.PublishSubscribe;
using DistSgd.Actors.Protocol;
using DistSgd.Actors.Transport;
using DistSgd.Numerics.Compression;

namespace DistSgd.Actors.Decentralized;

/// <summary>
/// How a peer's own <see cref="GradientShare"/> reaches the other participants: published on the run's topic (the
/// Akka transport), or sent to every participant's data endpoint (the data plane, distsgd.transport = direct). It also
/// owns the gradient arrays a share is computed into, which differ by transport.
/// </summary>
/// <remarks>
/// Over the topic, a fresh array per share: the mediator hands it to remoting, which serializes it later on another
/// thread. Over the data plane, one of two reused arrays: the sends copy it into the kernel before they return, and the
/// other array may still be needed to redo the last applied step (<see cref="StepUndo"/>).
/// </remarks>
/// <para>The run's <see cref="ShareEncoding"/> is applied here, at the sender (<see cref="Compress"/>): the share keeps what the
/// wire delivers, so this peer's own copy equals every other peer's decoded one.</para>
internal sealed class ShareExchange(IActorRef mediator, string topic, DirectDataPlane? direct, int parameterCount, ShareEncoding wire) : IDisposable
{
    private readonly GradientCompressor? _compressor = wire.IsIdentity ? null : new GradientCompressor(wire, parameterCount);

    private readonly float[][] _ownGradients = direct is null ? [] : [new float[parameterCount], new float[parameterCount]];
    /// <summary>Every node's data endpoint, in node-id order (an array: sending enumerates it at every step without allocating).</summary>
    private (int NodeId, string Endpoint)[] _endpoints = [];

    /// <summary>This peer's data endpoint ("host:port"), or "" on the Akka transport.</summary>
    public string Endpoint => direct?.Endpoint ?? "";

    /// <summary>This peer's data-plane key, advertised with <see cref="Endpoint"/>; null on the Akka transport.</summary>
    public byte[]? Key => direct?.Key;

    /// <summary>True on the data plane: this peer's own share does not come back to it, it offers it to its buffer itself.</summary>
    public bool IsDirect => direct is not null;

    /// <summary>Frames the data plane refused so far.</summary>
    public long BadFrames => direct?.BadFrames ?? 0;

    /// <summary>The data plane's readers report each frame's arrival to <paramref name="trace"/> (nothing on the Akka transport).</summary>
    public void Trace(Steps.StepTrace trace)
    {
        if (direct is not null)
            direct.FrameReceived = (sender, step, headerAt, completeAt) => trace.Received(sender, step, headerAt, completeAt);
    }

    /// <summary>Connections the data plane refused before they proved a node, by name (<see cref="DataPlaneHandshake.Name"/>).</summary>
    public IReadOnlyDictionary<string, long> Refused => direct?.RefusalsByName ?? new Dictionary<string, long>();

    /// <summary>
    /// Every node's data endpoint and key, known once the start barrier passed: each node's data connections must
    /// prove its key from now on (<see cref="DirectDataPlane.Trust"/>).
    /// </summary>
    public void Connect(IReadOnlyDictionary<int, string> endpoints, IReadOnlyDictionary<int, byte[]> keys)
    {
        _endpoints = endpoints.OrderBy(e => e.Key).Select(e => (e.Key, e.Value)).ToArray();
        foreach (var (nodeId, key) in keys)
            direct?.Trust(nodeId, endpoints.GetValueOrDefault(nodeId, ""), key);
    }

    /// <summary>
    /// gradient ← what the run's encoding delivers, with error feedback when sparse (<see cref="GradientCompressor"/>);
    /// false when it is not finite (then cleared). Dense float32: unchanged.
    /// </summary>
    public bool Compress(Span<float> gradient) => _compressor?.Compress(gradient) ?? true;

    /// <summary>The array to compute this peer's next gradient into.</summary>
    public float[] GradientArray(StepUndo undo) =>
        direct is null ? new float[parameterCount] : undo.Uses(_ownGradients[0]) ? _ownGradients[1] : _ownGradients[0];

    /// <summary>
    /// Sends <paramref name="share"/> to every participant but <paramref name="self"/>, in node-id order; returns the
    /// payload bytes sent and calls <paramref name="unreachable"/> for each endpoint a send failed to. A peer that cannot
    /// be reached is not forgotten here: its own reader sees the connection close and stops waiting for this one.
    /// </summary>
    public long Send(GradientShare share, int epoch, int stepInEpoch, int self, IReadOnlyCollection<int> participants,
                     Action<int, string> unreachable)
    {
        if (direct is null)
        {
            mediator.Tell(new Publish(topic, share));
            return WireFormat.PayloadBytes(share) * (participants.Count - 1);
        }
        var header = new FrameHeader(FrameKind.GradientShare, 0, share.Step, share.NodeId, epoch, stepInEpoch,
                                     share.SampleCount, share.LossSum, share.ComputeSeconds, 0);
        long bytes = 0;
        foreach (var (nodeId, endpoint) in _endpoints)
        {
            if (nodeId == self || !participants.Contains(nodeId))
                continue;
            if (direct.Send(endpoint, header, share.Gradient))
                bytes += direct.LastFrameBytes;
            else
                unreachable(nodeId, endpoint);
        }
        return bytes;
    }

    /// <summary>
    /// A gradient of a step that can no longer be redone: a frame's array goes back to the data plane for the next
    /// frames; this peer's own arrays stay.
    /// </summary>
    public void Release(float[] gradient)
    {
        if (direct is not null && !ReferenceEquals(gradient, _ownGradients[0]) && !ReferenceEquals(gradient, _ownGradients[1]))
            direct.Return(gradient);
    }

    public void Dispose() => direct?.Dispose();
}
