using System.IO.Compression;

namespace DistSgd.Numerics.Data;

/// <summary>
/// Opens data files for one sequential read, decompressing gzip transparently. A file is gzip when it
/// starts with the gzip magic bytes 0x1f 0x8b: the name is not trusted, because data sets are often
/// renamed or unpacked without their extension being changed.
/// </summary>
internal static class DataFile
{
    // Large enough that the kernel reads ahead in big chunks; small enough not to matter for memory.
    private const int FileBufferSize = 1 << 16;

    public static bool IsGzip(ReadOnlySpan<byte> firstBytes) =>
        firstBytes.Length >= 2 && firstBytes[0] == 0x1f && firstBytes[1] == 0x8b;

    /// <summary>A readable stream over the file's (decompressed) content. The caller disposes it.</summary>
    public static Stream OpenRead(string path)
    {
        if (Directory.Exists(path))
            throw new DataFormatException(path, "expected a data file, found a directory");
        FileStream file;
        try
        {
            file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileBufferSize, FileOptions.SequentialScan);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new DataFormatException(path, $"cannot read the file: {e.Message}", inner: e);
        }
        try
        {
            Span<byte> magic = stackalloc byte[2];
            int read = file.ReadAtLeast(magic, magic.Length, throwOnEndOfStream: false);
            file.Position = 0;
            return IsGzip(magic[..read]) ? new GZipStream(file, CompressionMode.Decompress, leaveOpen: false) : file;
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Reads until <paramref name="buffer"/> is full or the content ends, and returns how many bytes were
    /// read. A corrupt gzip stream becomes a <see cref="DataFormatException"/> naming the file.
    /// </summary>
    public static int ReadFully(Stream stream, Span<byte> buffer, string path)
    {
        try
        {
            return stream.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
        }
        catch (InvalidDataException e)
        {
            throw new DataFormatException(path, $"the gzip data is corrupt ({e.Message})", inner: e);
        }
    }

    /// <summary>
    /// The most content bytes the rest of <paramref name="stream"/> can hold: what is left of a raw file, or, for gzip,
    /// 1032 × the compressed bytes left (deflate's largest expansion ratio). A reader checks a length header against
    /// it before allocating, so a hostile header cannot make it allocate gigabytes for a file of a few bytes.
    /// </summary>
    public static long MaxContentBytes(Stream stream) => stream switch
    {
        GZipStream gzip when gzip.BaseStream.CanSeek => (gzip.BaseStream.Length - gzip.BaseStream.Position + 64) * 1032,
        { CanSeek: true } => stream.Length - stream.Position,
        _ => long.MaxValue,
    };

    /// <summary>Counts the bytes left in the stream (for the message about trailing data; not a hot path).</summary>
    public static long CountRemaining(Stream stream, string path)
    {
        var scratch = new byte[FileBufferSize];
        long total = 0;
        int read;
        while ((read = ReadFully(stream, scratch, path)) > 0)
            total += read;
        return total;
    }
}
