using Akka.Configuration;
using DistSgd.Actors.Collectives;
using DistSgd.Actors.Protocol;
using DistSgd.Actors.Security;
using DistSgd.Actors.Transport;
using DistSgd.Actors;
using DistSgd.Numerics.Compression;
using DistSgd.Numerics.Cost;
using DistSgd.Numerics.Training;

namespace DistSgd.Host.Settings;

/// <summary>
/// The configuration a run works with, loaded once for `train`, `node` and every `bench` run: the --config file's keys
/// with --transport and the --tls-* flags over them (<see cref="Overrides"/>), and DistSgd's settings read from those
/// over the embedded reference.conf (<see cref="DistSgd"/>). A bad file or distsgd.* value fails in <see cref="Load"/>,
/// naming its key, before any data is read or any node started.
/// </summary>
public sealed class EffectiveConfig
{
    /// <summary>The environment variable that sets Akka's log level for a run's nodes (one of <see cref="HoconFile.LogLevels"/>).</summary>
    public const string AkkaLogLevelVariable = "DISTSGD_AKKA_LOGLEVEL";

    private EffectiveConfig(Config? overrides, string? akkaLogLevel)
    {
        Overrides = overrides;
        AkkaLogLevel = akkaLogLevel;
        WithReference = overrides is null ? DistSgdConfig.ReferenceConfig : overrides.WithFallback(DistSgdConfig.ReferenceConfig);
        DistSgd = DistSgdSettings.Create(WithReference);
    }

    /// <summary>The --config file's keys with the flags over them, or null when neither sets anything.</summary>
    public Config? Overrides { get; }

    /// <summary><see cref="Overrides"/> over DistSgd's reference.conf.</summary>
    public Config WithReference { get; }

    /// <summary>The distsgd.* settings in force.</summary>
    public DistSgdSettings DistSgd { get; }

    /// <summary>Akka's log level from <see cref="AkkaLogLevelVariable"/> (checked in <see cref="Load"/>), or null when it is not set.</summary>
    public string? AkkaLogLevel { get; }

    /// <summary>distsgd.checkpoint.* in force (read when asked: a bad value fails where the checkpoints are set up).</summary>
    public CheckpointSettings Checkpoint => CheckpointSettings.Create(WithReference);

    /// <summary>
    /// The collective of a run of <paramref name="settings"/>: distsgd.collective (or --collective), or auto's pick
    /// (<see cref="CollectiveChoice.Pick"/>) for its peers and transport; the centralized and sequential modes have none (allgather).
    /// </summary>
    /// <param name="parameters">The model's parameter count: auto prices a gradient of that many values on the run's wire.</param>
    public Collective CollectiveFor(TrainSettings settings, int parameters) =>
        settings.Mode != RunMode.Decentralized ? Collective.AllGather
            : DistSgd.Collective ?? CollectiveChoice.Pick(settings.ComputeNodes, DistSgd.Transport, Compressed, WireBytes(parameters), Link);

    /// <summary>
    /// The run's gradients travel as top-k shares: only the all-gather carries them (decision 0090). Local SGD's dense
    /// changes take the cost model's choice, as gradients do (decision 0136).
    /// </summary>
    private bool Compressed => DistSgd.Wire!.IsSparse;

    private LinkRate Link => DistSgd.Link ?? LinkRate.Unlimited;

    /// <summary>Bytes of a dense gradient of <paramref name="parameters"/> values on the run's wire (4 per value, 2 for a 16-bit wire).</summary>
    private long WireBytes(int parameters) => (long)parameters * (DistSgd.Wire!.Precision == WirePrecision.Fp32 ? sizeof(float) : 2);

    /// <summary>The line a decentralized run prints at its start: its collective, and whether auto chose it.</summary>
    public string DescribeCollective(TrainSettings settings, int parameters) =>
        CollectiveChoice.Describe(CollectiveFor(settings, parameters), DistSgd.Collective, settings.ComputeNodes, DistSgd.Transport, Compressed,
                                  WireBytes(parameters), Link);

    /// <summary>"akka" or "direct": what carries the run's payloads, from --transport or distsgd.transport.</summary>
    public string TransportName => DistSgd.Transport == PayloadTransport.Direct ? "direct" : "akka";

    /// <summary>The --config file's keys, with --transport and the --tls-* flags over them when given.</summary>
    public static EffectiveConfig Load(TrainSettings settings)
    {
        var overrides = HoconFile.Load(settings.ConfigFile);
        if (settings.Tls.Overrides(settings.Mode) is { } tls)
            overrides = overrides is null ? tls : tls.WithFallback(overrides);
        if (settings.Mode == RunMode.Sequential && (settings.Wire is not null || settings.Compress is not null || settings.SyncEvery > 1))
            throw new UsageException("--wire, --compress and --sync-every: a sequential run sends nothing; use them with --mode centralized or decentralized");
        foreach (var (key, flag) in new[] { ("transport", settings.Transport), ("wire", settings.Wire), ("compress", settings.Compress),
                                            ("sync-every", settings.SyncEvery?.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                                            ("link-rate", settings.LinkRate) })
            if (flag is not null)
            {
                var value = ConfigurationFactory.ParseString($"distsgd.{key} = \"{flag}\"");
                overrides = overrides is null ? value : value.WithFallback(overrides);
            }
        if (settings.Collective is { } collective)
        {
            if (settings.Mode != RunMode.Decentralized)
                throw new UsageException($"--collective {collective}: only the decentralized mode has a collective (--mode decentralized); found --mode {settings.Mode.Name()}");
            var flag = ConfigurationFactory.ParseString($"distsgd.collective = {collective}");
            overrides = overrides is null ? flag : flag.WithFallback(overrides);
        }
        return new EffectiveConfig(overrides, CheckAkkaLogLevel(Environment.GetEnvironmentVariable(AkkaLogLevelVariable)));
    }

    /// <summary>
    /// <paramref name="value"/> of <see cref="AkkaLogLevelVariable"/> when it is a level Akka knows (any case), or null when
    /// the variable is not set; anything else (an empty value too) is refused naming the variable, as a bad
    /// akka.loglevel in --config is (Akka itself would fail only once the nodes start, after the results folder is made).
    /// </summary>
    public static string? CheckAkkaLogLevel(string? value)
    {
        if (value is null)
            return null;
        if (!HoconFile.LogLevels.Contains(value.ToUpperInvariant()))
            throw new UsageException($"{AkkaLogLevelVariable}: expected one of {string.Join(", ", HoconFile.LogLevels)}, found '{value}'");
        return value.ToUpperInvariant();
    }

    /// <summary>The node's TLS identity from the --tls-* flags or --config (null: plain TCP), said on <paramref name="output"/>.</summary>
    public NodeTls? TlsIdentity(TrainSettings settings, TextWriter output)
    {
        var tls = Overrides is null ? null : NodeTls.FromConfig(Overrides);
        settings.Tls.CheckUsed(tls is not null);
        if (tls is not null)
            output.WriteLine($"tls: on, certificate {tls.Certificate.Subject} from {tls.Path}, peers must chain to {tls.Authorities[0].Subject}");
        return tls;
    }
}
