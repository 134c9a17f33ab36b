using Akka.Configuration;
using DistSgd.Actors;
using DistSgd.Actors.Security;
using DistSgd.Actors.Transport;

namespace DistSgd.Host.Settings;

/// <summary>
/// The configuration a run works with, loaded once for `train`, `node` and every `bench` run: the --config file's keys
/// with --transport and the --tls-* flags over them (<see cref="Overrides"/>), and DistSgd's settings read from those
/// over the embedded reference.conf (<see cref="DistSgd"/>). A bad file or distsgd.* value fails in <see cref="Load"/>,
/// naming its key, before any data is read or any node started.
/// </summary>
public sealed class EffectiveConfig
{
    private EffectiveConfig(Config? overrides)
    {
        Overrides = overrides;
        WithReference = overrides is null ? DistSgdConfig.ReferenceConfig : overrides.WithFallback(DistSgdConfig.ReferenceConfig);
        DistSgd = DistSgdSettings.Create(WithReference);
    }

    /// <summary>The --config file's keys with the flags over them, or null when neither sets anything.</summary>
    public Config? Overrides { get; }

    /// <summary><see cref="Overrides"/> over DistSgd's reference.conf.</summary>
    public Config WithReference { get; }

    /// <summary>The distsgd.* settings in force.</summary>
    public DistSgdSettings DistSgd { get; }

    /// <summary>distsgd.checkpoint.* in force (read when asked: a bad value fails where the checkpoints are set up).</summary>
    public CheckpointSettings Checkpoint => CheckpointSettings.Create(WithReference);

    /// <summary>"akka" or "direct": what carries the run's payloads, from --transport or distsgd.transport.</summary>
    public string TransportName => DistSgd.Transport == PayloadTransport.Direct ? "direct" : "akka";

    /// <summary>The --config file's keys, with --transport and the --tls-* flags over them when given.</summary>
    public static EffectiveConfig Load(TrainSettings settings)
    {
        var overrides = HoconFile.Load(settings.ConfigFile);
        if (settings.Tls.Overrides(settings.Mode) is { } tls)
            overrides = overrides is null ? tls : tls.WithFallback(overrides);
        if (settings.Transport is { } transport)
        {
            var flag = ConfigurationFactory.ParseString($"distsgd.transport = {transport}");
            overrides = overrides is null ? flag : flag.WithFallback(overrides);
        }
        return new EffectiveConfig(overrides);
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
