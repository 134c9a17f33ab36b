namespace DistSgd.Numerics.Data;

/// <summary>How <see cref="CsvReader"/> reads a file. Immutable; the defaults read a headerless
/// comma-separated file whose first column is a class label.</summary>
public sealed record CsvOptions
{
    /// <summary>0-based index of the label column; negative counts from the end (-1 = the last column).</summary>
    public int LabelColumn { get; init; }

    /// <summary>True when the first non-blank line names the columns rather than holding data.</summary>
    public bool HasHeader { get; init; }

    /// <summary>The cell separator, an ASCII character (',' ';' '\t' ' ' …).</summary>
    public char Separator { get; init; } = ',';

    public LearningTask Task { get; init; } = LearningTask.Classification;

    /// <summary>For classification: the number of classes, or null for (largest label + 1). Give it for a
    /// test file that may lack the highest class.</summary>
    public int? ClassCount { get; init; }

    /// <summary>The data set's name; null for the file path.</summary>
    public string? Name { get; init; }
}

/// <summary>
/// Reads a numeric CSV file into a <see cref="Dataset"/>: one sample per line, one label column, every
/// other column a feature. Numbers use the invariant culture ('.' decimal point) whatever the machine's
/// locale. Blank lines are skipped; a cell may be wrapped in double quotes.
/// </summary>
/// <remarks>
/// Errors are <see cref="DataFormatException"/>s whose <see cref="DataFormatException.Line"/> is the 1-based
/// line of the file and whose <see cref="DataFormatException.Column"/> is the 1-based CSV column (cell
/// number, not character offset), because that is what a spreadsheet shows the user. The file is read as
/// UTF-8 bytes through one reused buffer and cells are parsed in place: no string per line or cell.
/// </remarks>
public static class CsvReader
{
    // Class indices are stored as floats, which hold every integer up to 2^24 exactly.
    private const float MaxClassLabel = 1 << 24;

    public static Dataset Load(string path, CsvOptions? options = null)
    {
        options ??= new CsvOptions();
        Validate(options);
        byte separator = (byte)options.Separator;
        bool classification = options.Task == LearningTask.Classification;

        using var reader = new LineReader(path);
        ReadOnlySpan<byte> line;
        do
        {
            if (!reader.TryReadLine(out line))
                throw new DataFormatException(path, "the file is empty: expected at least one row of data");
        } while (LineReader.IsBlank(line));

        int columns = CountColumns(line, separator);
        int firstLine = reader.LineNumber;
        int labelColumn = options.LabelColumn >= 0 ? options.LabelColumn : columns + options.LabelColumn;
        if (labelColumn < 0 || labelColumn >= columns)
            throw new DataFormatException(path,
                $"label column {options.LabelColumn} is out of range: the file has {columns} columns, " +
                $"so expected 0..{columns - 1} (or -1..-{columns} counting from the end)", firstLine);
        if (columns < 2)
            throw new DataFormatException(path,
                "expected at least 2 columns (a label and a feature), found 1" +
                (options.Separator == ',' ? "" : $"; is '{options.Separator}' the right separator?"), firstLine);
        int featureCount = columns - 1;

        var features = new GrowableBuffer<float>(1 << 16);
        var targets = new GrowableBuffer<float>(1 << 12);
        float maxLabel = -1;
        bool haveRow = !options.HasHeader;
        while (true)
        {
            if (haveRow && !LineReader.IsBlank(line))
            {
                var row = features.AppendZeroed(featureCount);
                float label = ParseRow(path, reader.LineNumber, line, separator, columns, labelColumn, row, options);
                if (classification && label > maxLabel)
                    maxLabel = label;
                targets.Add(label);
            }
            haveRow = true;
            if (!reader.TryReadLine(out line))
                break;
        }

        if (targets.Count == 0)
            throw new DataFormatException(path, "expected at least one row of data after the header, found none");

        int classCount = classification ? options.ClassCount ?? (int)maxLabel + 1 : 0;
        return new Dataset(options.Name ?? path, features.ToArray(), featureCount, targets.ToArray(), classCount);
    }

    private static void Validate(CsvOptions options)
    {
        char s = options.Separator;
        if (s > 127 || s == '"' || s == '\n' || s == '\r' || char.IsAsciiDigit(s) || s is '.' or '-' or '+')
            throw new ArgumentException(
                $"separator '{s}' cannot separate numbers: expected an ASCII character that is not a digit, sign, '.' or quote",
                nameof(options));
        if (options.ClassCount is { } classes && options.Task == LearningTask.Classification && classes < 1)
            throw new ArgumentException($"class count must be at least 1, found {classes}", nameof(options));
    }

    /// <summary>Parses one data line into <paramref name="features"/> and returns its label.</summary>
    private static float ParseRow(string path, int lineNumber, ReadOnlySpan<byte> line, byte separator, int columns,
                                  int labelColumn, Span<float> features, CsvOptions options)
    {
        float label = 0;
        int column = 0;
        int feature = 0;
        var rest = line;
        while (true)
        {
            if (column == columns)
                throw Ragged(path, lineNumber, line, separator, columns);
            int end = rest.IndexOf(separator);
            var cell = Unquote(end >= 0 ? rest[..end] : rest);
            if (!LineReader.TryParseFinite(cell, out float value))
                throw new DataFormatException(path,
                    $"column {column + 1}: expected a number, found {Describe(cell)}", lineNumber, column + 1);
            if (column == labelColumn)
            {
                label = value;
                if (options.Task == LearningTask.Classification)
                    CheckClassLabel(path, lineNumber, column, cell, value, options.ClassCount);
            }
            else
            {
                features[feature++] = value;
            }
            column++;
            if (end < 0)
                break;
            rest = rest[(end + 1)..];
        }
        if (column != columns)
            throw Ragged(path, lineNumber, line, separator, columns);
        return label;
    }

    private static void CheckClassLabel(string path, int lineNumber, int column, ReadOnlySpan<byte> cell, float value,
                                        int? classCount)
    {
        if (value < 0 || value != MathF.Floor(value) || value >= MaxClassLabel)
            throw new DataFormatException(path,
                $"column {column + 1}: expected a class label (a whole number ≥ 0), found {Describe(cell)}",
                lineNumber, column + 1);
        if (classCount is { } classes && value >= classes)
            throw new DataFormatException(path,
                $"column {column + 1}: expected a class label in 0..{classes - 1}, found {Describe(cell)}",
                lineNumber, column + 1);
    }

    private static DataFormatException Ragged(string path, int lineNumber, ReadOnlySpan<byte> line, byte separator,
                                              int columns) =>
        new(path, $"expected {columns} columns, found {line.Count(separator) + 1}", lineNumber);

    /// <summary>Counts the cells of a line, honouring quotes so a header name may contain the separator.</summary>
    private static int CountColumns(ReadOnlySpan<byte> line, byte separator)
    {
        int count = 1;
        bool quoted = false;
        foreach (byte b in line)
        {
            if (b == (byte)'"') quoted = !quoted;
            else if (b == separator && !quoted) count++;
        }
        return count;
    }

    private static ReadOnlySpan<byte> Unquote(ReadOnlySpan<byte> cell)
    {
        var trimmed = cell.Trim(" \t"u8);
        return trimmed.Length >= 2 && trimmed[0] == (byte)'"' && trimmed[^1] == (byte)'"' ? trimmed[1..^1] : cell;
    }

    private static string Describe(ReadOnlySpan<byte> cell) =>
        LineReader.IsBlank(cell) ? "an empty cell" : LineReader.Quote(cell);
}
