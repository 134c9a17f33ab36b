using System.Globalization;

namespace DistSgd.Numerics.Data;

/// <summary>How <see cref="LibSvmReader"/> reads a file. Immutable.</summary>
public sealed record LibSvmOptions
{
    /// <summary>The declared number of features; null to take the largest index in the file. Declare it when
    /// several files (train, test) must share a dimension; an index past it is then an error.</summary>
    public int? FeatureCount { get; init; }

    public LearningTask Task { get; init; } = LearningTask.Classification;

    /// <summary>For classification: the number of classes, or null for (largest class + 1).</summary>
    public int? ClassCount { get; init; }

    /// <summary>The data set's name; null for the file path.</summary>
    public string? Name { get; init; }
}

/// <summary>
/// Reads the LIBSVM / SVMlight sparse text format, <c>label index:value index:value …</c>, with 1-based
/// strictly ascending indices, into a dense <see cref="Dataset"/> (absent features are 0).
/// </summary>
/// <remarks>
/// Classification labels are whole numbers ≥ 0, used as class indices as they are, or the binary
/// convention −1/+1, mapped to classes 0/1 (a file may not mix the two: with −1 present, every label must
/// be −1 or +1). Tokens are separated by spaces or tabs; '#' starts a comment to the end of the line; blank
/// lines are skipped. Errors are <see cref="DataFormatException"/>s with the 1-based line and the 1-based
/// character column where the offending token starts. Entries are gathered sparsely and made dense once the
/// dimension is known, so reading costs memory in proportion to the non-zeros, not per line.
/// </remarks>
public static class LibSvmReader
{
    private const float MaxClassLabel = 1 << 24;

    /// <summary>The largest feature index read: every sample holds every feature, so an index is a length in disguise.</summary>
    public const int MaxFeatureIndex = 1 << 24;

    public static Dataset Load(string path, LibSvmOptions? options = null)
    {
        options ??= new LibSvmOptions();
        if (options.FeatureCount is { } declared && declared < 1)
            throw new ArgumentException($"feature count must be at least 1, found {declared}", nameof(options));
        if (options.ClassCount is { } classes && options.Task == LearningTask.Classification && classes < 1)
            throw new ArgumentException($"class count must be at least 1, found {classes}", nameof(options));
        bool classification = options.Task == LearningTask.Classification;

        var targets = new GrowableBuffer<float>(1 << 12);
        var rowEnds = new GrowableBuffer<int>(1 << 12);
        var indices = new GrowableBuffer<int>(1 << 16);
        var values = new GrowableBuffer<float>(1 << 16);
        int maxIndex = 0;
        float maxClass = -1;
        // The −1/+1 convention and the 0,1,2… convention cannot be mixed; remember where each was first seen.
        int firstMinusOneLine = 0, firstOtherLine = 0;
        float firstOtherLabel = 0;

        using var reader = new LineReader(path);
        while (reader.TryReadLine(out var line))
        {
            int comment = line.IndexOf((byte)'#');
            if (comment >= 0)
                line = line[..comment];
            int lineNumber = reader.LineNumber;
            int pos = SkipBlanks(line, 0);
            if (pos == line.Length)
                continue;

            int tokenEnd = TokenEnd(line, pos);
            var token = line[pos..tokenEnd];
            if (!LineReader.TryParseFinite(token, out float label))
                throw new DataFormatException(path,
                    $"expected a label (a number) at the start of the line, found {LineReader.Quote(token)}",
                    lineNumber, pos + 1);
            if (classification)
            {
                if (label == -1)
                {
                    if (firstMinusOneLine == 0) firstMinusOneLine = lineNumber;
                    label = 0;
                }
                else if (label < 0 || label != MathF.Floor(label) || label >= MaxClassLabel)
                {
                    throw new DataFormatException(path,
                        $"expected a class label (a whole number ≥ 0, or -1/+1), found {LineReader.Quote(token)}",
                        lineNumber, pos + 1);
                }
                else if (label != 1 && firstOtherLine == 0)
                {
                    firstOtherLine = lineNumber;
                    firstOtherLabel = label;
                }
                if (options.ClassCount is { } allowed && label >= allowed)
                    throw new DataFormatException(path,
                        $"expected a class label in 0..{allowed - 1}, found {LineReader.Quote(token)}",
                        lineNumber, pos + 1);
                if (label > maxClass)
                    maxClass = label;
            }
            targets.Add(label);

            int previous = 0;
            pos = SkipBlanks(line, tokenEnd);
            while (pos < line.Length)
            {
                tokenEnd = TokenEnd(line, pos);
                int index = ParsePair(path, lineNumber, line[pos..tokenEnd], pos + 1, previous, options.FeatureCount,
                                      out float value);
                previous = index;
                if (index > maxIndex)
                    maxIndex = index;
                if (value != 0)
                {
                    indices.Add(index - 1);
                    values.Add(value);
                }
                pos = SkipBlanks(line, tokenEnd);
            }
            rowEnds.Add(indices.Count);
        }

        if (targets.Count == 0)
            throw new DataFormatException(path, "the file holds no samples: expected lines of 'label index:value …'");
        if (firstMinusOneLine > 0 && firstOtherLine > 0)
            throw new DataFormatException(path,
                $"labels mix two conventions: line {firstMinusOneLine} has -1 (the binary -1/+1 convention) and " +
                $"line {firstOtherLine} has {firstOtherLabel.ToString(CultureInfo.InvariantCulture)} " +
                "(class indices 0, 1, 2, …); expected one or the other",
                Math.Max(firstMinusOneLine, firstOtherLine));
        int featureCount = options.FeatureCount ?? maxIndex;
        if (featureCount == 0)
            throw new DataFormatException(path,
                "no sample has a feature, so the dimension cannot be inferred; declare FeatureCount");

        if ((long)targets.Count * featureCount > Array.MaxLength)
            throw new DataFormatException(path,
                $"{targets.Count} samples × {featureCount} features need {(long)targets.Count * featureCount} dense values, more than one array can hold");
        var features = new float[(long)targets.Count * featureCount];
        var allIndices = indices.AsSpan();
        var allValues = values.AsSpan();
        var ends = rowEnds.AsSpan();
        int start = 0;
        for (int row = 0; row < ends.Length; row++)
        {
            var rowFeatures = features.AsSpan(row * featureCount, featureCount);
            for (int k = start; k < ends[row]; k++)
                rowFeatures[allIndices[k]] = allValues[k];
            start = ends[row];
        }
        int classCount = classification ? options.ClassCount ?? (int)maxClass + 1 : 0;
        return new Dataset(options.Name ?? path, features, featureCount, targets.ToArray(), classCount);
    }

    /// <summary>Parses "index:value" and returns the 1-based index.</summary>
    private static int ParsePair(string path, int lineNumber, ReadOnlySpan<byte> pair, int column, int previous,
                                 int? declared, out float value)
    {
        int colon = pair.IndexOf((byte)':');
        if (colon < 0)
            throw new DataFormatException(path,
                $"expected index:value, found {LineReader.Quote(pair)}", lineNumber, column);
        var indexText = pair[..colon];
        var valueText = pair[(colon + 1)..];
        if (!int.TryParse(indexText, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int index))
            throw new DataFormatException(path,
                $"expected a feature index (a whole number ≥ 1) before ':', found {LineReader.Quote(indexText)}",
                lineNumber, column);
        if (index < 1)
            throw new DataFormatException(path,
                $"feature indices are 1-based: expected an index ≥ 1, found {index}", lineNumber, column);
        if (index > MaxFeatureIndex)
            throw new DataFormatException(path,
                $"expected a feature index up to {MaxFeatureIndex} (features are stored densely), found {index}", lineNumber, column);
        if (index <= previous)
            throw new DataFormatException(path,
                $"feature indices must ascend: expected an index above {previous}, found {index}", lineNumber, column);
        if (declared is { } dimension && index > dimension)
            throw new DataFormatException(path,
                $"feature index {index} is past the declared feature count {dimension}", lineNumber, column);
        if (!LineReader.TryParseFinite(valueText, out value))
            throw new DataFormatException(path,
                $"expected a number after '{index}:', found {LineReader.Quote(valueText)}",
                lineNumber, column + colon + 1);
        return index;
    }

    private static int SkipBlanks(ReadOnlySpan<byte> line, int pos)
    {
        while (pos < line.Length && line[pos] is (byte)' ' or (byte)'\t')
            pos++;
        return pos;
    }

    private static int TokenEnd(ReadOnlySpan<byte> line, int pos)
    {
        int length = line[pos..].IndexOfAny((byte)' ', (byte)'\t');
        return length < 0 ? line.Length : pos + length;
    }
}
