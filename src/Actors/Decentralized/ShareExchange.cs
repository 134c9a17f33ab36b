using Akka.Actor;
using DistSgd.Actors.Collectives;
using DistSgd.Actors.Protocol;
using DistSgd.Actors.Transport;
using DistSgd.Numerics.Compression;
using DistSgd.Numerics.Tensors;
using DistSgd.Numerics.Training;

namespace DistSgd.Actors.Decentralized;

/// <summary>
/// How a peer's own <see cref="GradientShare"/> reaches the other participants: through the run's collective
/// (<see cref="ICollective"/>: the all-gather over the topic or the data plane, or an all-reduce over the data plane). It
/// owns the data plane and the gradient arrays a share is computed into, which differ by transport.
/// </summary>
/// <remarks>
/// Over the topic, a fresh array per share: the mediator hands it to remoting, which serializes it later on another
/// thread. Over the data plane, one of two reused arrays: the sends copy it into the kernel before they return, and the
/// other array may still be needed to redo the last applied step (<see cref="StepUndo"/>).
/// </remarks>
/// <para>The run's <see cref="ShareEncoding"/> is applied here, at the sender (<see cref="Compress"/>): the share keeps what the
/// wire delivers, so this peer's own copy equals every other peer's decoded one.</para>
internal sealed class ShareExchange : IDisposable
{
    private readonly DirectDataPlane? _direct;
    private readonly int _parameterCount;
    private readonly float[][] _ownGradients;
    private readonly GradientCompressor? _compressor;
    /// <summary>The entries of <see cref="_ownGradients"/>' shares, one each, when sparse shares are averaged by their entries; else empty.</summary>
    private readonly SparseVector[] _ownEntries;

    /// <param name="wire">How the run's gradients travel (null: float32 as computed).</param>
    /// <param name="momentum">The momentum this peer applies to its gradients before top-k (<see cref="ShareEncoding.SenderMomentum"/>).</param>
    public ShareExchange(IActorRef mediator, string topic, DirectDataPlane? direct, int parameterCount, ICollective? collective = null,
                         ShareEncoding? wire = null, double momentum = 0)
    {
        _direct = direct;
        _parameterCount = parameterCount;
        _ownGradients = direct is null ? [] : [new float[parameterCount], new float[parameterCount]];
        Collective = collective ?? new AllGather(mediator, topic, direct);
        _compressor = wire is null || wire.IsIdentity ? null : new GradientCompressor(wire, parameterCount, momentum);
        // Over the data plane a sparse share's receivers average its entries (the topic delivers dense shares, and an
        // all-reduce densifies); this peer's own share carries them too, so its steps do.
        _ownEntries = direct is not null && wire is { IsSparse: true } && AllReduce is null
            ? [new SparseVector(parameterCount, wire.KeptCount(parameterCount)), new SparseVector(parameterCount, wire.KeptCount(parameterCount))]
            : [];
    }

    /// <summary>The run's collective (distsgd.collective).</summary>
    public ICollective Collective { get; }

    /// <summary>The collective when it is an all-reduce (the step's average is made there), else null.</summary>
    public IAllReduce? AllReduce => Collective as IAllReduce;

    /// <summary>This peer's data endpoint ("host:port"), or "" on the Akka transport.</summary>
    public string Endpoint => _direct?.Endpoint ?? "";

    /// <summary>This peer's data-plane key, advertised with <see cref="Endpoint"/>; null on the Akka transport.</summary>
    public byte[]? Key => _direct?.Key;

    /// <summary>True on the data plane: this peer's own share does not come back to it, it offers it to its buffer itself.</summary>
    public bool IsDirect => _direct is not null;

    /// <summary>Frames the data plane refused so far.</summary>
    public long BadFrames => _direct?.BadFrames ?? 0;

    /// <summary>The data plane's readers report each frame's arrival to <paramref name="trace"/> (nothing on the Akka transport).</summary>
    public void Trace(Steps.StepTrace trace)
    {
        if (_direct is not null)
            _direct.FrameReceived = (sender, step, headerAt, completeAt) => trace.Received(sender, step, headerAt, completeAt);
    }

    /// <summary>Connections the data plane refused before they proved a node, by name (<see cref="DataPlaneHandshake.Name"/>).</summary>
    public IReadOnlyDictionary<string, long> Refused => _direct?.RefusalsByName ?? new Dictionary<string, long>();

    /// <summary>
    /// Every node's data endpoint and key, known once the start barrier passed: each node's data connections must
    /// prove its key from now on (<see cref="DirectDataPlane.Trust"/>).
    /// </summary>
    public void Connect(int self, IReadOnlyDictionary<int, string> endpoints, IReadOnlyDictionary<int, byte[]> keys)
    {
        Collective.Connect(self, endpoints);
        foreach (var (nodeId, key) in keys)
            _direct?.Trust(nodeId, endpoints.GetValueOrDefault(nodeId, ""), key);
    }

    /// <summary>
    /// gradient ← what the run's encoding delivers, with error feedback when sparse (<see cref="GradientCompressor"/>);
    /// false when it is not finite (then cleared). Dense float32: unchanged. <paramref name="entries"/>: the compressed
    /// gradient's entries when this peer's step averages sparse shares by their entries (top-k, the all-gather over the data
    /// plane, <paramref name="gradient"/> one of this peer's own arrays; decision 0141), else null.
    /// </summary>
    public bool Compress(float[] gradient, out SparseVector? entries)
    {
        int own = Array.IndexOf(_ownGradients, gradient);
        entries = own >= 0 && _ownEntries.Length > 0 ? _ownEntries[own] : null;
        return _compressor?.Compress(gradient, entries) ?? true;
    }

    /// <summary>The array to compute this peer's next gradient into.</summary>
    public float[] GradientArray(StepUndo undo) =>
        _direct is null ? new float[_parameterCount] : undo.Uses(_ownGradients[0]) ? _ownGradients[1] : _ownGradients[0];

    /// <summary>Sends <paramref name="share"/> through the collective (<see cref="ICollective.Send"/>); returns the payload bytes sent.</summary>
    public long Send(GradientShare share, int epoch, int stepInEpoch, IReadOnlyCollection<int> participants, Action<int, string> unreachable) =>
        Collective.Send(share, epoch, stepInEpoch, participants, unreachable);

    /// <summary>
    /// The share of a step that can no longer be redone: a frame's array (with its entries, when sparse) goes back to the
    /// data plane for the next frames; this peer's own arrays stay.
    /// </summary>
    public void Release(GradientShare share)
    {
        var gradient = share.Gradient;
        if (_direct is not null && !ReferenceEquals(gradient, _ownGradients[0]) && !ReferenceEquals(gradient, _ownGradients[1]))
            _direct.Return(gradient, share.Entries);
    }

    public void Dispose()
    {
        Collective.Dispose();
        _direct?.Dispose();
    }
}
