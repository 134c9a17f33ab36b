using System.Buffers;
using System.Buffers.Binary;
using System.Numerics.Tensors;

namespace DistSgd.Numerics.Data;

/// <summary>The images of an IDX file: <see cref="Count"/> images of <see cref="Rows"/> × <see cref="Columns"/>
/// unsigned bytes, image after image, each row-major.</summary>
public sealed record IdxImages(int Count, int Rows, int Columns, byte[] Pixels)
{
    public int PixelsPerImage => Rows * Columns;
}

/// <summary>
/// Reads IDX files, the format of MNIST and Fashion-MNIST, raw or gzipped (recognised by the gzip magic
/// bytes, not the file name).
/// </summary>
/// <remarks>
/// An IDX file is a 4-byte magic number 0x0000TTDD (TT = element type, 0x08 for unsigned bytes; DD = the
/// number of dimensions), DD big-endian int32 sizes, then the elements. Images are 0x00000803
/// (count, rows, columns); labels are 0x00000801 (count). A file is read in one pass straight into an
/// array of its exact size, so a 60000 × 784 image file costs one allocation.
/// </remarks>
public static class IdxReader
{
    public const int ImagesMagic = 0x00000803;
    public const int LabelsMagic = 0x00000801;

    // 64 KiB: fits in L2 with room to spare, and large enough that per-chunk overhead is negligible.
    private const int ChunkSize = 1 << 16;

    /// <summary>Reads an image file (magic 0x00000803).</summary>
    public static IdxImages ReadImages(string path)
    {
        using var stream = DataFile.OpenRead(path);
        var (count, rows, columns) = ReadImageHeader(stream, path);
        var pixels = GC.AllocateUninitializedArray<byte>(count * rows * columns);
        ReadPayload(stream, path, pixels, Shape(count, rows, columns));
        return new IdxImages(count, rows, columns, pixels);
    }

    /// <summary>Reads a label file (magic 0x00000801): one unsigned byte per sample.</summary>
    public static byte[] ReadLabels(string path)
    {
        using var stream = DataFile.OpenRead(path);
        Span<int> dims = stackalloc int[1];
        ReadHeader(stream, path, LabelsMagic, "labels (unsigned bytes, 1 dimension: count)", ["label count"], dims);
        CheckFits(stream, path, $"{dims[0]} labels", dims[0]);
        var labels = GC.AllocateUninitializedArray<byte>(dims[0]);
        ReadPayload(stream, path, labels, $"{dims[0]} labels");
        return labels;
    }

    /// <summary>
    /// Loads an image file and its label file as a classification data set. Features are the raw pixel
    /// values 0..255 as floats; scale them with <see cref="PixelScaling"/>.
    /// </summary>
    public static Dataset Load(string imagesPath, string labelsPath, int classCount = 10, string? name = null)
    {
        if (classCount is < 1 or > 256)
            throw new ArgumentOutOfRangeException(nameof(classCount), classCount,
                "IDX labels are single bytes, so the class count must be in 1..256");
        var (features, count, pixelsPerImage) = ReadImagesAsFloats(imagesPath);
        var labels = ReadLabels(labelsPath);
        if (count != labels.Length)
            throw new DataFormatException(imagesPath,
                $"the image file holds {count} images but the label file {labelsPath} holds {labels.Length} labels; " +
                "expected one label per image");

        int firstBad = labels.AsSpan().IndexOfAnyInRange((byte)classCount, byte.MaxValue);
        if (firstBad >= 0)
            throw new DataFormatException(labelsPath,
                $"label at index {firstBad} is {labels[firstBad]}; expected a class in 0..{classCount - 1}");

        var targets = new float[labels.Length];
        TensorPrimitives.ConvertChecked<byte, float>(labels, targets);
        return new Dataset(name ?? imagesPath, features, pixelsPerImage, targets, classCount);
    }

    /// <summary>
    /// Loads one split of the MNIST file layout in <paramref name="directory"/>: <paramref name="split"/> is
    /// "train" or "t10k" ("test" is accepted for "t10k"), and each of
    /// {split}-images-idx3-ubyte and {split}-labels-idx1-ubyte may be gzipped (".gz") or raw.
    /// </summary>
    public static Dataset LoadDirectory(string directory, string split, int classCount = 10)
    {
        string prefix = split switch
        {
            "train" => "train",
            "t10k" or "test" => "t10k",
            _ => throw new ArgumentException(
                $"unknown split \"{split}\"; expected \"train\" or \"t10k\" (or \"test\")", nameof(split)),
        };
        if (!Directory.Exists(directory))
            throw new DirectoryNotFoundException($"{directory}: no such directory (looking for the {prefix} IDX files)");
        string images = FindFile(directory, $"{prefix}-images-idx3-ubyte");
        string labels = FindFile(directory, $"{prefix}-labels-idx1-ubyte");
        return Load(images, labels, classCount, $"{Path.GetFileName(Path.TrimEndingDirectorySeparator(directory))}/{prefix}");
    }

    private static string FindFile(string directory, string baseName)
    {
        string[] candidates = [baseName + ".gz", baseName];
        foreach (var candidate in candidates)
        {
            string path = Path.Combine(directory, candidate);
            if (File.Exists(path))
                return path;
        }
        throw new FileNotFoundException(
            $"{directory}: found neither {string.Join(" nor ", candidates)}", Path.Combine(directory, baseName));
    }

    /// <summary>
    /// Reads an image file straight into floats: the data is decompressed a cache-sized chunk at a time and
    /// each chunk converted (byte → float is exact) into the result, so no intermediate 47 MB byte array is
    /// made and the chunk is still in cache when it is converted.
    /// </summary>
    private static (float[] Features, int Count, int PixelsPerImage) ReadImagesAsFloats(string path)
    {
        using var stream = DataFile.OpenRead(path);
        var (count, rows, columns) = ReadImageHeader(stream, path);
        int size = count * rows * columns;
        var features = GC.AllocateUninitializedArray<float>(size);
        var chunk = ArrayPool<byte>.Shared.Rent(ChunkSize);
        try
        {
            int done = 0;
            while (done < size)
            {
                int wanted = Math.Min(ChunkSize, size - done);
                int read = DataFile.ReadFully(stream, chunk.AsSpan(0, wanted), path);
                TensorPrimitives.ConvertChecked<byte, float>(chunk.AsSpan(0, read), features.AsSpan(done, read));
                done += read;
                if (read < wanted)
                    throw Truncated(path, Shape(count, rows, columns), size, done);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(chunk);
        }
        CheckNoTrailingData(stream, path, Shape(count, rows, columns), size);
        return (features, count, rows * columns);
    }

    private static (int Count, int Rows, int Columns) ReadImageHeader(Stream stream, string path)
    {
        Span<int> dims = stackalloc int[3];
        ReadHeader(stream, path, ImagesMagic, "images (unsigned bytes, 3 dimensions: count, rows, columns)",
                   ["image count", "row count", "column count"], dims);
        // Three int32 sizes can overflow even a long (checked arithmetic would throw): bound the first product first.
        long imageCountTimesRows = (long)dims[0] * dims[1];
        long size = imageCountTimesRows > Array.MaxLength ? long.MaxValue : imageCountTimesRows * dims[2];
        if (size > Array.MaxLength)
            throw new DataFormatException(path,
                $"{dims[0]} images of {dims[1]}×{dims[2]} pixels need {(double)dims[0] * dims[1] * dims[2]:G4} bytes, more than one array can hold");
        CheckFits(stream, path, Shape(dims[0], dims[1], dims[2]), size);
        return (dims[0], dims[1], dims[2]);
    }

    private static string Shape(int count, int rows, int columns) => $"{count} images × {rows} rows × {columns} columns";

    private static void ReadHeader(Stream stream, string path, int expectedMagic, string what,
                                   ReadOnlySpan<string> dimNames, Span<int> dims)
    {
        int headerSize = 4 + 4 * dims.Length;
        Span<byte> header = stackalloc byte[headerSize];
        int read = DataFile.ReadFully(stream, header[..4], path);
        if (read < 4)
            throw new DataFormatException(path,
                $"truncated header: expected a 4-byte magic number, found {read} bytes");
        int magic = BinaryPrimitives.ReadInt32BigEndian(header);
        if (magic != expectedMagic)
            throw new DataFormatException(path,
                $"wrong magic number: expected 0x{expectedMagic:X8} for {what}, found 0x{magic:X8}{DescribeMagic(magic)}");

        read = DataFile.ReadFully(stream, header[4..], path);
        if (read < headerSize - 4)
            throw new DataFormatException(path,
                $"truncated header: expected {headerSize} bytes ({dims.Length} dimension sizes after the magic number), found {4 + read}");
        for (int d = 0; d < dims.Length; d++)
        {
            int size = BinaryPrimitives.ReadInt32BigEndian(header[(4 + 4 * d)..]);
            if (size <= 0)
                throw new DataFormatException(path, $"invalid {dimNames[d]}: expected a positive number, found {size}");
            dims[d] = size;
        }
    }

    private static void ReadPayload(Stream stream, string path, byte[] payload, string shape)
    {
        int read = DataFile.ReadFully(stream, payload, path);
        if (read < payload.Length)
            throw Truncated(path, shape, payload.Length, read);
        CheckNoTrailingData(stream, path, shape, payload.Length);
    }

    /// <summary>Refuses a header that promises more bytes than the file can hold, before anything that size is allocated.</summary>
    private static void CheckFits(Stream stream, string path, string shape, long size)
    {
        long available = DataFile.MaxContentBytes(stream);
        if (size <= available)
            return;
        throw stream.CanSeek
            ? Truncated(path, shape, size, available)
            : new DataFormatException(path, $"truncated data: the header promises {shape} = {size} bytes, more than the compressed file can hold (at most {available})");
    }

    private static DataFormatException Truncated(string path, string shape, long expected, long found) =>
        new(path, $"truncated data: the header promises {shape} = {expected} bytes, found {found}");

    private static void CheckNoTrailingData(Stream stream, string path, string shape, int size)
    {
        long extra = DataFile.CountRemaining(stream, path);
        if (extra > 0)
            throw new DataFormatException(path,
                $"unexpected trailing data: the header promises {shape} = {size} bytes, found {extra} more after them");
    }

    private static string DescribeMagic(int magic)
    {
        if (magic == ImagesMagic) return " (an image file: are the image and label files swapped?)";
        if (magic == LabelsMagic) return " (a label file: are the image and label files swapped?)";
        if ((magic >> 16) != 0) return " (not an IDX file)";
        return $" (element type 0x{(magic >> 8) & 0xFF:X2}, {magic & 0xFF} dimensions)";
    }
}
