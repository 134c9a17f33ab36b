namespace DistSgd.Numerics.Data;

/// <summary>
/// A data file that cannot be read as what it claims to be. The message names the file, where in it
/// the problem is (line and column for text formats, byte offset or record for binary ones), what was
/// expected and what was found.
/// </summary>
public sealed class DataFormatException : Exception
{
    public DataFormatException(string path, string problem, int line = 0, int column = 0, Exception? inner = null)
        : base(Format(path, problem, line, column), inner)
    {
        Path = path;
        Problem = problem;
        Line = line;
        Column = column;
    }

    public string Path { get; }
    public string Problem { get; }

    /// <summary>1-based line of a text file, 0 when not applicable.</summary>
    public int Line { get; }

    /// <summary>1-based column of a text file, 0 when not applicable.</summary>
    public int Column { get; }

    private static string Format(string path, string problem, int line, int column) =>
        line > 0
            ? column > 0 ? $"{path}:{line}:{column}: {problem}" : $"{path}:{line}: {problem}"
            : $"{path}: {problem}";
}
