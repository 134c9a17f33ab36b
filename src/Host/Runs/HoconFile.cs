using Akka.Configuration;

namespace DistSgd.Host.Runs;

/// <summary>Reads a user's HOCON override file, with errors that name the file.</summary>
public static class HoconFile
{
    /// <summary>The parsed file, or null when no file was given.</summary>
    public static Config? Load(string? path)
    {
        if (path is null)
            return null;
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"--config: cannot read {path}: {e.Message}");
        }
        try
        {
            return ConfigurationFactory.ParseString(text);
        }
        catch (Exception e)
        {
            throw new UsageException($"--config: {path} is not valid HOCON: {e.Message}");
        }
    }
}
