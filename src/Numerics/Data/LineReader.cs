using System.Globalization;
using System.Text;

namespace DistSgd.Numerics.Data;

/// <summary>
/// Reads a text file line by line as UTF-8 byte spans into one reused buffer, so that a file of a million
/// lines costs no string per line. Lines end at '\n'; a '\r' before it is dropped; a UTF-8 byte order mark
/// at the start is skipped.
/// </summary>
internal sealed class LineReader : IDisposable
{
    private const int InitialBufferSize = 1 << 20;

    private readonly Stream _stream;
    private readonly string _path;
    private byte[] _buffer = new byte[InitialBufferSize];
    private int _start;   // first unread byte
    private int _end;     // one past the last byte in the buffer
    private bool _endOfStream;

    public LineReader(string path)
    {
        _path = path;
        _stream = DataFile.OpenRead(path);
        Fill();
        if (_buffer.AsSpan(_start, _end - _start).StartsWith("\uFEFF"u8))
            _start += 3;
    }

    /// <summary>1-based number of the line returned last.</summary>
    public int LineNumber { get; private set; }

    /// <summary>The next line without its terminator; valid until the next call. False at the end of the file.</summary>
    public bool TryReadLine(out ReadOnlySpan<byte> line)
    {
        while (true)
        {
            int newline = _buffer.AsSpan(_start, _end - _start).IndexOf((byte)'\n');
            if (newline >= 0)
            {
                line = TrimCarriageReturn(_buffer.AsSpan(_start, newline));
                _start += newline + 1;
                LineNumber++;
                return true;
            }
            if (_endOfStream)
            {
                if (_start == _end)
                {
                    line = default;
                    return false;
                }
                // The last line has no terminator.
                line = TrimCarriageReturn(_buffer.AsSpan(_start, _end - _start));
                _start = _end;
                LineNumber++;
                return true;
            }
            Fill();
        }
    }

    private void Fill()
    {
        // Keep the partial line, and make room: slide it to the front, or grow for a line longer than the buffer.
        int pending = _end - _start;
        if (_start > 0)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, pending);
        }
        else if (pending == _buffer.Length)
        {
            if (_buffer.Length >= Array.MaxLength / 2)
                throw new DataFormatException(_path, "a line is longer than 1 GiB", LineNumber + 1);
            Array.Resize(ref _buffer, _buffer.Length * 2);
        }
        _start = 0;
        _end = pending;
        int read = DataFile.ReadFully(_stream, _buffer.AsSpan(_end), _path);
        _end += read;
        if (_end < _buffer.Length)
            _endOfStream = true;
    }

    private static ReadOnlySpan<byte> TrimCarriageReturn(ReadOnlySpan<byte> line) =>
        line.Length > 0 && line[^1] == (byte)'\r' ? line[..^1] : line;

    public void Dispose() => _stream.Dispose();

    /// <summary>Text of a cell for an error message, shortened so a garbage line cannot flood it.</summary>
    public static string Quote(ReadOnlySpan<byte> text)
    {
        const int MaxShown = 40;
        string s = Encoding.UTF8.GetString(text.Length > MaxShown ? text[..MaxShown] : text);
        return text.Length > MaxShown ? $"\"{s}…\"" : $"\"{s}\"";
    }

    /// <summary>Parses an invariant-culture float; false for text that is not a finite number.</summary>
    public static bool TryParseFinite(ReadOnlySpan<byte> text, out float value) =>
        float.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out value) && float.IsFinite(value);

    public static bool IsBlank(ReadOnlySpan<byte> line) => line.Trim(" \t"u8).IsEmpty;
}
