using Akka.Actor;
using Akka.Configuration;
using DistSgd.Actors.Protocol;
using DistSgd.Actors.Transport;
using DistSgd.Numerics.Compression;
using DistSgd.Numerics.Cost;
using DistSgd.Numerics.Training;

namespace DistSgd.Actors;

/// <summary>The distsgd.* settings of a node, read from its configuration (reference.conf, then hocon/ overrides).</summary>
/// <param name="ReadyInterval">How often a decentralized peer republishes PeerReady until the start barrier passes.</param>
/// <param name="AkkaChunkSize">Bytes per piece of a vector message over Akka.Remote; 0 sends it whole.</param>
/// <param name="Transport">What carries the vector payloads of the steps (distsgd.transport).</param>
/// <param name="DirectHostname">Address the direct data plane listens on and advertises; empty = the node's remoting address.</param>
/// <param name="DirectPort">Port of the direct data plane's listener; 0 picks a free one.</param>
/// <param name="DirectFrameTimeout">How long a started frame may take to arrive, or a send to be accepted, before the connection is closed.</param>
/// <param name="DirectMembersOnly">Accept data connections only from the addresses of current cluster members.</param>
/// <param name="StandbyMasters">Worker nodes of the simulated cluster (train) that also hold the master role, ready to take the master over.</param>
/// <param name="StepTrace">Whether each decentralized peer and the centralized master record a <see cref="Steps.StepTrace"/> (distsgd.step-trace).</param>
/// <param name="LogFile">The file the node's log goes to (distsgd.log-file), or empty.</param>
/// <param name="Wire">How the gradients of a run this node starts travel (distsgd.wire, distsgd.compress, distsgd.fp16-scale);
/// the run's plan carries it to every node (<see cref="Protocol.RunPlan.Wire"/>).</param>
/// <param name="SyncEvery">Steps between model averages of a run this node starts, H (distsgd.sync-every; 1: gradient averaging).</param>
/// <param name="Collective">The decentralized peers' collective (distsgd.collective), or null for auto
/// (<see cref="Collectives.CollectiveChoice.Pick"/>).</param>
/// <param name="Slowdown">Tests and benchmarks: a slowed compute node's gradients take this many times as long (distsgd.debug.slowdown; 1 = off).</param>
/// <param name="SlowNode">Which compute node of this process is slowed, by its place among them (distsgd.debug.slow-node; −1 = every one).</param>
/// <param name="TraceFile">The file every traced node of this process goes to, one track each (distsgd.trace-file, --trace), or empty.</param>
/// <param name="TraceMaxSpans">The spans each node's trace keeps, the newest (distsgd.trace-max-spans).</param>
/// <param name="Link">Each node's link, for auto's choice of collective (distsgd.link-rate; null = none, this machine's loopback).</param>
/// <param name="MaxPeers">Decentralized: the most peers a run takes at once, late ones included (distsgd.max-peers; 0 = twice the planned peers).</param>
public sealed record DistSgdSettings(TimeSpan StepTimeout, TimeSpan StartTimeout, string MasterRole, string WorkerRole,
                                     string PeerRole, TimeSpan ReadyInterval, int AkkaChunkSize = 0,
                                     PayloadTransport Transport = PayloadTransport.Akka, string DirectHostname = "",
                                     int DirectPort = 0, TimeSpan DirectFrameTimeout = default, bool DirectMembersOnly = true,
                                     int StandbyMasters = 0, bool StepTrace = false, string LogFile = "", Collective? Collective = null,
                                     double Slowdown = 1, int SlowNode = -1, ShareEncoding? Wire = null, int SyncEvery = 1,
                                     string TraceFile = "", int TraceMaxSpans = Steps.StepTrace.DefaultMaxSpans, int MaxPeers = 0,
                                     LinkRate? Link = null)
{
    public const string ComputeDispatcher = "distsgd.compute-dispatcher";

    public static DistSgdSettings Create(ActorSystem system) => Create(system.Settings.Config);

    /// <summary>Reads and checks the settings; an out-of-range value names its key.</summary>
    public static DistSgdSettings Create(Config config)
    {
        var section = config.GetConfig("distsgd")
            ?? throw new ConfigurationException("the configuration has no distsgd section (is DistSgd's reference.conf loaded?)");
        var settings = new DistSgdSettings(
            Positive(section, "step-timeout"),
            Positive(section, "start-timeout"),
            Role(section, "roles.master", "master"),
            Role(section, "roles.worker", "worker"),
            Role(section, "roles.peer", "peer"),
            Positive(section, "ready-interval"),
            ChunkSize(section, "akka-chunk-size"),
            TransportOf(section),
            section.GetString("direct.hostname", ""),
            Port(section, "direct.port"),
            Positive(section, "direct.frame-timeout"),
            Switch(section, "direct.members-only", true),
            section.GetInt("standby-masters", 0),
            Switch(section, "step-trace", false),
            section.GetString("log-file", ""),
            CollectiveOf(section),
            SlowdownFactor(section, "debug.slowdown"),
            section.GetInt("debug.slow-node", -1),
            WireOf(section),
            section.GetInt("sync-every", 1),
            section.GetString("trace-file", ""),
            section.GetInt("trace-max-spans", Steps.StepTrace.DefaultMaxSpans),
            section.GetInt("max-peers", 0),
            LinkOf(section));
        if (settings.MaxPeers < 0)
            throw new ConfigurationException($"distsgd.max-peers: expected 0 (twice the planned peers) or a number of peers, found {settings.MaxPeers}");
        if (settings.TraceMaxSpans < 1)
            throw new ConfigurationException($"distsgd.trace-max-spans: expected 1 or more spans, found {settings.TraceMaxSpans}");
        if (settings.Collective is { } collective && collective.Reduces() && settings.Transport != PayloadTransport.Direct)
            throw new ConfigurationException(
                $"distsgd.collective = {collective.Name()} runs on the direct transport only, but distsgd.transport = akka " +
                "(on akka only allgather does: set distsgd.transport = direct, or distsgd.collective = allgather or auto)");
        if (settings.SlowNode < -1)
            throw new ConfigurationException($"distsgd.debug.slow-node: expected -1 (every compute node) or a compute node's place from 0, found {settings.SlowNode}");
        if (settings.SyncEvery is < 1 or > 1_000_000)
            throw new ConfigurationException($"distsgd.sync-every: expected a number of steps from 1 (gradient averaging) to 1000000, found {settings.SyncEvery}");
        if (!settings.Wire!.IsIdentity && settings.Transport == PayloadTransport.Akka)
            throw new ConfigurationException(
                $"distsgd.wire = {ShareEncoding.Name(settings.Wire.Precision)}, distsgd.compress = {settings.Wire.CompressName}: compressed gradients " +
                "travel only on the data plane; set distsgd.transport = direct (--transport direct) or leave distsgd.wire = fp32 and distsgd.compress = none");
        if (settings.Collective?.Refusal(settings.Wire) is { } refusal)
            throw new ConfigurationException(refusal);
        if (settings.StandbyMasters < 0)
            throw new ConfigurationException($"distsgd.standby-masters: expected 0 or more worker nodes, found {settings.StandbyMasters}");
        if (new[] { settings.MasterRole, settings.WorkerRole, settings.PeerRole }.Distinct(StringComparer.Ordinal).Count() < 3)
            throw new ConfigurationException(
                $"distsgd.roles: expected three different role names, found master = '{settings.MasterRole}', worker = '{settings.WorkerRole}', peer = '{settings.PeerRole}'");
        return settings;
    }

    /// <summary>The slowdown of the compute node at <paramref name="place"/> among this process's compute nodes (0 = the first started).</summary>
    public double SlowdownAt(int place) => SlowNode < 0 || SlowNode == place ? Slowdown : 1;

    /// <summary>
    /// The folder step traces are written to: the folder of distsgd.log-file (the results folder of <c>distsgd train</c>),
    /// or the working directory without a log file.
    /// </summary>
    /// <summary>Whether coordinators and workers record a <see cref="Steps.StepTrace"/>: distsgd.step-trace, or a trace file.</summary>
    public bool Traced => StepTrace || TraceFile.Length > 0;

    public string StepTraceFolder => Path.GetDirectoryName(Path.GetFullPath(LogFile.Length > 0 ? LogFile : "x")) ?? ".";

    /// <summary>
    /// Where this node's data plane listens and what it advertises: distsgd.direct.hostname when set (both), else
    /// the remoting hostname for listening and its public-hostname (or the hostname) for advertising, like Akka.Remote.
    /// </summary>
    public static (string Bind, string Advertised) DataPlaneAddress(ActorSystem system)
    {
        var settings = Create(system);
        if (settings.DirectHostname.Length > 0)
            return (settings.DirectHostname, settings.DirectHostname);
        var config = system.Settings.Config;
        string bind = config.GetString("akka.remote.dot-netty.tcp.hostname", "");
        string advertised = config.GetString("akka.remote.dot-netty.tcp.public-hostname", "");
        if (string.IsNullOrWhiteSpace(bind))
            bind = "0.0.0.0";
        if (string.IsNullOrWhiteSpace(advertised))
            advertised = bind == "0.0.0.0" ? System.Net.Dns.GetHostName() : bind;
        return (bind, advertised);
    }

    /// <summary>The options of a data plane on <paramref name="system"/> for one run, whose gradients travel as <paramref name="gradients"/>.</summary>
    public static DataPlaneOptions DataPlane(ActorSystem system, string runId, int parameterCount, FrameKind accepts, int senderCount,
                                             ShareEncoding? gradients = null)
    {
        var settings = Create(system);
        var (bind, advertised) = DataPlaneAddress(system);
        return new DataPlaneOptions(runId, parameterCount, accepts, senderCount, bind, settings.DirectPort, settings.DirectFrameTimeout,
                                    AdvertisedHost: advertised,
                                    AcceptFrom: settings.DirectMembersOnly ? ClusterMemberAddresses.For(system) : null,
                                    Tls: Security.NodeTls.Of(system), Gradients: gradients);
    }

    private static ShareEncoding WireOf(Config section)
    {
        var precision = ShareEncoding.ParsePrecision(section.GetString("wire", "fp32"), out string? error)
            ?? throw new ConfigurationException($"distsgd.wire: {error}");
        var (kept, corrected) = ShareEncoding.ParseCompress(section.GetString("compress", "none"), out error)
            ?? throw new ConfigurationException($"distsgd.compress: {error}");
        string scaleText = section.GetString("fp16-scale", "1024");
        if (!float.TryParse(scaleText, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out float scale)
            || !HalfFloats.IsScale(scale))
            throw new ConfigurationException($"distsgd.fp16-scale: expected a power of two from 2^-24 to 2^24 (e.g. 1024), found '{scaleText}'");
        return new ShareEncoding(precision, kept, scale, corrected);
    }

    private static Collective? CollectiveOf(Config section)
    {
        string value = section.GetString("collective", "auto");
        return value == "auto" ? null
            : CollectiveNames.Parse(value)
              ?? throw new ConfigurationException($"distsgd.collective: expected auto, allgather, ring or pairwise, found '{value}'");
    }

    private static LinkRate LinkOf(Config section)
    {
        string value = section.GetString("link-rate", "none");
        return LinkRate.TryParse(value, out var rate) ? rate
            : throw new ConfigurationException($"distsgd.link-rate: expected none or a rate such as 100mbit, 1gbit, 25gbit, found '{value}'");
    }

    private static PayloadTransport TransportOf(Config section)
    {
        string value = section.GetString("transport", "akka");
        return value switch
        {
            "akka" => PayloadTransport.Akka,
            "direct" => PayloadTransport.Direct,
            _ => throw new ConfigurationException($"distsgd.transport: expected akka or direct, found '{value}'"),
        };
    }

    private static double SlowdownFactor(Config section, string key)
    {
        string text = section.GetString(key, "1");
        if (!double.TryParse(text, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double value)
            || !double.IsFinite(value) || value < 1 || value > 1000)
            throw new ConfigurationException($"distsgd.{key}: expected a factor from 1 (off) to 1000, found '{text}'");
        return value;
    }

    private static string Role(Config section, string key, string fallback)
    {
        string value = section.GetString(key, fallback);
        if (string.IsNullOrWhiteSpace(value) || value.Any(char.IsWhiteSpace) || value.Contains(','))
            throw new ConfigurationException($"distsgd.{key}: expected a role name (no spaces or commas), found '{value}'");
        return value;
    }

    private static bool Switch(Config section, string key, bool fallback)
    {
        if (!section.HasPath(key))
            return fallback;
        string value = section.GetString(key) ?? "";
        return value.Trim().ToLowerInvariant() switch
        {
            "on" or "true" or "yes" => true,
            "off" or "false" or "no" => false,
            _ => throw new ConfigurationException($"distsgd.{key}: expected on or off, found '{value}'"),
        };
    }

    private static int Port(Config section, string key)
    {
        int value;
        try
        {
            value = section.GetInt(key, 0);
        }
        catch (Exception e) when (e is not ConfigurationException)
        {
            throw new ConfigurationException($"distsgd.{key}: expected a port number, found '{section.GetString(key)}'");
        }
        if (value is < 0 or > 65535)
            throw new ConfigurationException($"distsgd.{key}: expected 0 (any free port) to 65535, found {value}");
        return value;
    }

    private static int ChunkSize(Config section, string key)
    {
        long? value;
        try
        {
            value = section.GetByteSize(key);
        }
        catch (Exception e) when (e is not ConfigurationException)
        {
            throw new ConfigurationException($"distsgd.{key}: expected a size such as 64KiB or 0, found '{section.GetString(key)}'");
        }
        if (value is null or < 0 or > 64L << 20 || (value > 0 && value < 1024))
            throw new ConfigurationException($"distsgd.{key}: expected 0 (off) or a size from 1KiB to 64MiB, found '{section.GetString(key)}'");
        return (int)value;
    }

    private static TimeSpan Positive(Config section, string key)
    {
        TimeSpan value;
        try
        {
            value = section.GetTimeSpan(key, null, allowInfinite: false);
        }
        catch (Exception e) when (e is not ConfigurationException)
        {
            throw new ConfigurationException($"distsgd.{key}: expected a duration such as 30s, found '{section.GetString(key)}'");
        }
        if (value <= TimeSpan.Zero)
            throw new ConfigurationException($"distsgd.{key}: expected a positive duration, found {value}");
        return value;
    }
}

/// <summary>DistSgd's embedded reference.conf.</summary>
public static class DistSgdConfig
{
    private static readonly Lazy<Config> Reference = new(() =>
    {
        using var stream = typeof(DistSgdConfig).Assembly.GetManifestResourceStream("DistSgd.Actors.reference.conf")
            ?? throw new InvalidOperationException("DistSgd.Actors is built without its embedded reference.conf");
        using var reader = new StreamReader(stream);
        return ConfigurationFactory.ParseString(reader.ReadToEnd());
    });

    public static Config ReferenceConfig => Reference.Value;
}
