using Akka.Configuration;

namespace DistSgd.Host.Runs;

/// <summary>Reads a user's HOCON override file, with errors that name the file.</summary>
public static class HoconFile
{
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
        try
        {
            return ConfigurationFactory.ParseString(text);
        }
        catch (Exception e)
        {
            throw new UsageException($"--config: {path} is not valid HOCON: {e.Message}");
        }
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
