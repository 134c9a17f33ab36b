using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace DistSgd.Actors.Steps;

/// <summary>
/// The run's live metrics as <see cref="System.Diagnostics.Metrics"/> instruments of the meter <see cref="MeterName"/>,
/// which any listener can read (the host exports them to Prometheus with OpenTelemetry, --metrics-port). Counters
/// grow with every step a coordinator applies (or, on a worker, every gradient it computes); gauges are read when a
/// listener collects. Every measurement carries the tags <c>node</c> (the node's cluster address) and <c>role</c>
/// (master, worker, peer, sequential), so the nodes of a simulated cluster, which share a process, stay apart.
/// </summary>
/// <remarks>
/// Names, as Prometheus shows them: distsgd_steps_total, distsgd_samples_total, distsgd_compute_seconds_total,
/// distsgd_communication_seconds_total, distsgd_sent_bytes_total, distsgd_received_bytes_total,
/// distsgd_dropped_messages_total (tag kind: stale_step, duplicate, …), distsgd_loss, distsgd_throughput_per_second
/// (samples/s), distsgd_members_up. A counter's Add with two tags allocates nothing, listened to or not, so the step
/// stays allocation-free (decision 0067).
/// </remarks>
public static class RunMeters
{
    /// <summary>The meter's name: what a listener subscribes to.</summary>
    public const string MeterName = "DistSgd";

    private static readonly Meter Meter = new(MeterName, typeof(RunMeters).Assembly.GetName().Version?.ToString());
    private static readonly ConcurrentDictionary<NodeMeters, bool> Live = new();
    private static readonly ConcurrentDictionary<string, Func<int>> Members = new();

    internal static readonly Counter<long> Steps =
        Meter.CreateCounter<long>("distsgd.steps", "{step}", "Steps applied (a worker: gradients computed).");
    internal static readonly Counter<long> Samples =
        Meter.CreateCounter<long>("distsgd.samples", "{sample}", "Training samples in the steps applied (a worker: in its gradients).");
    internal static readonly Counter<double> ComputeSeconds =
        Meter.CreateCounter<double>("distsgd.compute", "s", "Gradient computation: per step the slowest participant's (a worker: its own).");
    internal static readonly Counter<double> CommunicationSeconds =
        Meter.CreateCounter<double>("distsgd.communication", "s", "Per step, the step's wall time minus the slowest participant's compute.");
    internal static readonly Counter<long> BytesSent =
        Meter.CreateCounter<long>("distsgd.sent", "By", "Payload bytes sent (θ, gradients, shares).");
    internal static readonly Counter<long> BytesReceived =
        Meter.CreateCounter<long>("distsgd.received", "By", "Payload bytes received.");
    internal static readonly Counter<long> DroppedMessages =
        Meter.CreateCounter<long>("distsgd.dropped_messages", "{message}", "Messages dropped, by kind (stale_step, duplicate, foreign_run, …).");

    static RunMeters()
    {
        Meter.CreateObservableGauge("distsgd.loss", () => Live.Keys.Where(n => n.HasSteps).Select(n => new Measurement<double>(n.Loss, n.Tags)),
                                    description: "Mean training loss of the last second's steps.");
        Meter.CreateObservableGauge("distsgd.throughput", () => Live.Keys.Where(n => n.HasSteps).Select(n => new Measurement<double>(n.Throughput, n.Tags)),
                                    "{sample}/s", "Training samples per second over the last second.");
        Meter.CreateObservableGauge("distsgd.members.up", () => Members.Select(m => new Measurement<int>(m.Value(), new KeyValuePair<string, object?>("node", m.Key))),
                                    "{member}", "Cluster members Up, as this node sees them.");
    }

    /// <summary>Reports <paramref name="count"/> as the members Up that node <paramref name="node"/> sees, until <see cref="ForgetMembers"/>.</summary>
    public static void ObserveMembers(string node, Func<int> count) => Members[node] = count;

    public static void ForgetMembers(string node) => Members.TryRemove(node, out _);

    internal static void Register(NodeMeters node) => Live[node] = true;

    internal static void Unregister(NodeMeters node) => Live.TryRemove(node, out _);
}

/// <summary>
/// One coordinator's (or worker's) side of <see cref="RunMeters"/>: it adds its steps, bytes and drops under its own
/// node and role tags, and keeps the loss and throughput its gauges show. Allocates nothing per call.
/// </summary>
public sealed class NodeMeters : IDisposable
{
    private static readonly long Second = Stopwatch.Frequency;
    private readonly KeyValuePair<string, object?> _node;
    private readonly KeyValuePair<string, object?> _role;
    private long _windowStart = Stopwatch.GetTimestamp();
    private long _windowSamples;
    private double _windowLoss;

    /// <summary>The meters of an actor of <paramref name="system"/> in <paramref name="role"/>, tagged with the node's address.</summary>
    public static NodeMeters Of(Akka.Actor.ActorSystem system, string role) =>
        new(((Akka.Actor.ExtendedActorSystem)system).Provider.DefaultAddress.ToString(), role);

    /// <param name="node">The node's cluster address (or "local" for a sequential run).</param>
    /// <param name="role">master, worker, peer or sequential.</param>
    public NodeMeters(string node, string role)
    {
        _node = new("node", node);
        _role = new("role", role);
        Tags = [_node, _role];
        RunMeters.Register(this);
    }

    internal KeyValuePair<string, object?>[] Tags { get; }

    internal bool HasSteps { get; private set; }

    /// <summary>Mean loss of the samples of the last full second's steps.</summary>
    public double Loss { get; private set; } = double.NaN;

    /// <summary>Samples per second over the last full second.</summary>
    public double Throughput { get; private set; }

    /// <summary>A step was applied (or a gradient computed): its samples, summed loss and times.</summary>
    public void Step(long samples, double lossSum, double computeSeconds, double communicationSeconds)
    {
        RunMeters.Steps.Add(1, _node, _role);
        RunMeters.Samples.Add(samples, _node, _role);
        RunMeters.ComputeSeconds.Add(computeSeconds, _node, _role);
        if (communicationSeconds > 0)
            RunMeters.CommunicationSeconds.Add(communicationSeconds, _node, _role);
        _windowSamples += samples;
        _windowLoss += lossSum;
        long now = Stopwatch.GetTimestamp();
        if (now - _windowStart < Second && HasSteps)
            return;
        Throughput = _windowSamples * (double)Second / Math.Max(1, now - _windowStart);
        Loss = _windowSamples > 0 ? _windowLoss / _windowSamples : double.NaN;
        (_windowStart, _windowSamples, _windowLoss) = (now, 0, 0);
        HasSteps = true;
    }

    public void Sent(long bytes) => RunMeters.BytesSent.Add(bytes, _node, _role);

    public void Received(long bytes) => RunMeters.BytesReceived.Add(bytes, _node, _role);

    /// <summary>A message was dropped; <paramref name="kind"/> is its <see cref="DroppedMessages"/> name.</summary>
    public void Dropped(string kind) => RunMeters.DroppedMessages.Add(1, _node, new KeyValuePair<string, object?>("kind", kind));

    /// <summary>The gauges stop showing this node.</summary>
    public void Dispose() => RunMeters.Unregister(this);
}
