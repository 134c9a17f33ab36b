using Akka.Actor;
using Akka.Configuration;

namespace DistSgd.Actors;

/// <summary>The distsgd.* settings of a node, read from its configuration (reference.conf, then hocon/ overrides).</summary>
/// <param name="ReadyInterval">How often a decentralized peer republishes PeerReady until the start barrier passes.</param>
/// <param name="AkkaChunkSize">Bytes per piece of a vector message over Akka.Remote; 0 sends it whole.</param>
public sealed record DistSgdSettings(TimeSpan StepTimeout, TimeSpan StartTimeout, string MasterRole, string WorkerRole,
                                     string PeerRole, TimeSpan ReadyInterval, int AkkaChunkSize = 0)
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
            section.GetString("roles.master", "master"),
            section.GetString("roles.worker", "worker"),
            section.GetString("roles.peer", "peer"),
            Positive(section, "ready-interval"),
            ChunkSize(section, "akka-chunk-size"));
        return settings;
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
