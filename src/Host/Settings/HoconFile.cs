using System.Text.RegularExpressions;
using Akka.Configuration;
using Akka.Configuration.Hocon;
using DistSgd.Actors;

namespace DistSgd.Host.Settings;

/// <summary>
/// Reads a user's HOCON override file, with errors that name the file. <c>include "other.conf"</c>,
/// <c>include file("…")</c> and <c>include required("…")</c> are read relative to the including file's folder, as a
/// user expects from HOCON; a file that is not there is refused naming the including file, its line and the path looked
/// for (a silently ignored include would run with keys the user believes set). url() and classpath() includes are refused.
/// </summary>
public static partial class HoconFile
{
    /// <summary>How deep includes may nest: deeper is taken for a cycle.</summary>
    public const int MaxIncludeDepth = 16;

    [GeneratedRegex("""^\s*include\s+(?:required\(\s*)?(?<kind>file\(|url\(|classpath\()?\s*"(?<name>[^"]*)"\s*\)?\s*\)?""")]
    private static partial Regex IncludeLine();

    /// <summary>A string as a quoted HOCON value (backslashes and quotes escaped).</summary>
    public static string Quote(string s) => "\"" + s.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"";

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
        // Akka's parser accepts an unclosed '{' or a stray '}' and silently drops or misplaces keys; a user's
        // override file is checked for that first, so the mistake is named with its line.
        if (Unbalanced(text) is { } problem)
            throw new UsageException($"--config: {path} is not valid HOCON: {problem}");
        Config config;
        try
        {
            config = ConfigurationFactory.ParseString(Includes(path, text, 0, out var resolve), resolve);
        }
        catch (Exception e) when (e is not UsageException)
        {
            throw new UsageException($"--config: {path} is not valid HOCON: {e.Message}");
        }
        // A misspelt key (distsgd.step-timout) would otherwise be ignored silently and its default used.
        if (UnknownDistSgdKey(config) is { } unknown)
            throw new UsageException($"--config: {path}{LineOf(text, unknown)}: unknown key distsgd.{unknown}; expected one of " +
                                     string.Join(", ", KnownDistSgdKeys().Select(k => "distsgd." + k)));
        if (BadLogLevel(config) is { } level)
            throw new UsageException($"--config: {path}{LineOf(text, level.Key)}: {level.Key}: expected one of {string.Join(", ", LogLevels)}, found '{level.Value}'");
        return config;
    }

    /// <summary>The log levels Akka accepts for akka.loglevel and akka.stdout-loglevel.</summary>
    public static readonly string[] LogLevels = ["OFF", "ERROR", "WARNING", "INFO", "DEBUG"];

    /// <summary>The first of akka.loglevel and akka.stdout-loglevel set to a level Akka does not know, with its value, or null.</summary>
    public static KeyValuePair<string, string>? BadLogLevel(Config config)
    {
        foreach (string key in (string[])["akka.loglevel", "akka.stdout-loglevel"])
        {
            if (config.HasPath(key) && config.GetString(key) is { } value && !LogLevels.Contains(value.ToUpperInvariant()))
                return new(key, value);
        }
        return null;
    }

    /// <summary>
    /// <paramref name="text"/> with every include in the plain <c>include "name"</c> form Akka's parser reads, each checked
    /// to name a file beside <paramref name="path"/>; <paramref name="resolve"/> reads those files (and their own includes).
    /// </summary>
    private static string Includes(string path, string text, int depth, out Func<string, HoconRoot> resolve)
    {
        string folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
        var lines = text.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            // "include" then a space, and not a key named include (include = …, include { … }, include-x = …).
            string line = lines[i].TrimStart();
            if (!line.StartsWith("include", StringComparison.Ordinal) || line.Length == 7 || !char.IsWhiteSpace(line[7])
                || line[7..].TrimStart() is { Length: > 0 } rest && rest[0] is '=' or ':' or '{')
                continue;
            var match = IncludeLine().Match(lines[i]);
            if (!match.Success)
                throw new UsageException($"--config: {path}:{i + 1}: expected include \"file.conf\", file(\"…\") or required(\"…\"), found '{lines[i].Trim()}'");
            string name = match.Groups["name"].Value;
            if (match.Groups["kind"].Value is "url(" or "classpath(")
                throw new UsageException($"--config: {path}:{i + 1}: only files can be included (a path relative to {folder}), found '{lines[i].Trim()}'");
            if (depth >= MaxIncludeDepth)
                throw new UsageException($"--config: {path}:{i + 1}: includes nest deeper than {MaxIncludeDepth}; does a file include itself?");
            string included = Path.Combine(folder, name);
            if (!File.Exists(included))
                throw new UsageException($"--config: {path}:{i + 1}: include \"{name}\": no such file {included}");
            lines[i] = lines[i][..match.Index] + lines[i][match.Index..(match.Index + match.Length)].Replace("required(", "").Replace("file(", "")
                           .Replace(")", "") + lines[i][(match.Index + match.Length)..];
        }
        resolve = name =>
        {
            string included = Path.Combine(folder, name);
            string nested = File.ReadAllText(included);
            return Parser.Parse(Includes(included, nested, depth + 1, out var inner), inner);
        };
        return string.Join('\n', lines);
    }

    /// <summary>The distsgd.* keys of the embedded reference.conf (the dispatcher's, which Akka reads, aside).</summary>
    public static IEnumerable<string> KnownDistSgdKeys() =>
        LeafPaths(DistSgdConfig.ReferenceConfig.GetValue("distsgd"), "").Where(k => !IsDispatcherKey(k));

    /// <summary>The first distsgd.* key of <paramref name="config"/> that the reference.conf does not have (relative to distsgd), or null.</summary>
    public static string? UnknownDistSgdKey(Config config)
    {
        if (!config.HasPath("distsgd"))
            return null;
        var reference = DistSgdConfig.ReferenceConfig;
        return LeafPaths(config.GetValue("distsgd"), "")
            .FirstOrDefault(k => !IsDispatcherKey(k) && !reference.HasPath("distsgd." + k));
    }

    // The compute dispatcher takes any of Akka's dispatcher keys (throughput, executor settings).
    private static bool IsDispatcherKey(string key) => key.StartsWith("compute-dispatcher", StringComparison.Ordinal);

    private static IEnumerable<string> LeafPaths(HoconValue? value, string prefix)
    {
        if (value is null || !value.IsObject())
        {
            if (prefix.Length > 0)
                yield return prefix;
            yield break;
        }
        foreach (var (key, child) in value.GetObject().Items)
        {
            foreach (string path in LeafPaths(child, prefix.Length == 0 ? key : $"{prefix}.{key}"))
                yield return path;
        }
    }

    /// <summary>":N" for the first line that sets the key's last segment, or "" when it cannot be found.</summary>
    private static string LineOf(string text, string key)
    {
        string last = key[(key.LastIndexOf('.') + 1)..];
        var lines = text.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            int at = lines[i].IndexOf(last, StringComparison.Ordinal);
            if (at >= 0 && lines[i][(at + last.Length)..].TrimStart() is { Length: > 0 } rest && rest[0] is '=' or ':' or '{')
                return $":{i + 1}:{at + 1}";
        }
        return "";
    }

    /// <summary>
    /// The first unbalanced brace or bracket of a HOCON text (outside strings and comments), as "line N: …", or null.
    /// </summary>
    public static string? Unbalanced(string text)
    {
        var open = new Stack<(char Bracket, int Line)>();
        int line = 1;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (c == '\n')
            {
                line++;
                continue;
            }
            if (c == '#' || (c == '/' && i + 1 < text.Length && text[i + 1] == '/'))
            {
                while (i + 1 < text.Length && text[i + 1] != '\n')
                    i++;
                continue;
            }
            if (c == '"')
            {
                bool triple = i + 2 < text.Length && text[i + 1] == '"' && text[i + 2] == '"';
                string end = triple ? "\"\"\"" : "\"";
                int from = i + end.Length;
                int close = from;
                while (close < text.Length)
                {
                    close = text.IndexOf(end, close, StringComparison.Ordinal);
                    if (close < 0 || triple || text[close - 1] != '\\')
                        break;
                    close++;
                }
                if (close < 0 || close >= text.Length)
                    return $"line {line}: a string opened here is never closed";
                line += text.AsSpan(i, close - i).Count('\n');
                i = close + end.Length - 1;
                continue;
            }
            if (c is '{' or '[')
                open.Push((c, line));
            else if (c is '}' or ']')
            {
                char expected = c == '}' ? '{' : '[';
                if (open.Count == 0)
                    return $"line {line}: '{c}' closes nothing";
                var (bracket, at) = open.Pop();
                if (bracket != expected)
                    return $"line {line}: '{c}' closes the '{bracket}' of line {at}";
            }
        }
        return open.Count > 0 ? $"line {open.Peek().Line}: '{open.Peek().Bracket}' is never closed" : null;
    }
}
