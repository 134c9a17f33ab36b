using Akka.Configuration;

namespace DistSgd.Actors;

/// <summary>The distsgd.checkpoint.* settings: when a run writes checkpoints and how many it keeps.</summary>
/// <param name="EverySteps">A checkpoint every this many global steps; 0 = off.</param>
/// <param name="EverySeconds">A checkpoint when this many seconds have passed since the last; 0 = off.</param>
/// <param name="AtEpochEnd">A checkpoint at the end of every epoch (before the next one's first step).</param>
/// <param name="Keep">How many checkpoints are kept (the newest); older ones are deleted.</param>
public sealed record CheckpointSettings(long EverySteps, double EverySeconds, bool AtEpochEnd, int Keep)
{
    /// <summary>Reads and checks distsgd.checkpoint; a bad value names its key.</summary>
    public static CheckpointSettings Create(Config config)
    {
        var section = config.GetConfig("distsgd.checkpoint")
            ?? throw new ConfigurationException("the configuration has no distsgd.checkpoint section (is DistSgd's reference.conf loaded?)");
        return new CheckpointSettings(
            (long)Number(section, "every-steps", 0, long.MaxValue, "a whole number of steps ≥ 0 (0 = off)", whole: true),
            Number(section, "every-seconds", 0, 1e9, "a number of seconds ≥ 0 (0 = off)", whole: false),
            Boolean(section, "at-epoch-end"),
            (int)Number(section, "keep", 1, 1_000_000, "a number of checkpoints from 1 to 1000000", whole: true));
    }

    private static double Number(Config section, string key, double min, double max, string expected, bool whole)
    {
        string text = section.GetString(key, "");
        if (!double.TryParse(text, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double value)
            || value < min || value > max || (whole && value != Math.Floor(value)))
            throw new ConfigurationException($"distsgd.checkpoint.{key}: expected {expected}, found '{text}'");
        return value;
    }

    private static bool Boolean(Config section, string key)
    {
        string text = section.GetString(key, "");
        return text.ToLowerInvariant() switch
        {
            "on" or "true" or "yes" => true,
            "off" or "false" or "no" => false,
            _ => throw new ConfigurationException($"distsgd.checkpoint.{key}: expected on or off, found '{text}'"),
        };
    }
}
