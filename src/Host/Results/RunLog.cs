using Akka.Configuration;

namespace DistSgd.Host.Results;

/// <summary>The results folder's Akka log: where the simulated cluster's nodes write everything they log.</summary>
public static class RunLog
{
    public const string FileName = "distsgd.log";

    /// <summary>
    /// The run's overrides with <c>distsgd.log-file</c> set to the results folder's log (unless the user's --config sets it)
    /// and Akka's level at INFO for the file, unless <paramref name="logLevel"/> (DISTSGD_AKKA_LOGLEVEL, checked) asks for another.
    /// </summary>
    public static (Config Overrides, string LogLevel) Into(string resultsFolder, Config? overrides, string? logLevel)
    {
        string path = Path.GetFullPath(Path.Combine(resultsFolder, FileName));
        var file = ConfigurationFactory.ParseString($"distsgd.log-file = \"{path.Replace("\\", "\\\\").Replace("\"", "\\\"")}\"");
        var config = overrides is null ? file : overrides.HasPath("distsgd.log-file") ? overrides : overrides.WithFallback(file);
        return (config, logLevel ?? "INFO");
    }
}
