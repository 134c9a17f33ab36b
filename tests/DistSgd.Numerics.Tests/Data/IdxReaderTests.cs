using System.Buffers.Binary;
using System.Diagnostics;
using DistSgd.Numerics.Data;

namespace DistSgd.Numerics.Tests.Data;

public sealed class IdxReaderTests : IDisposable
{
    private const string FashionMnist = "/usr/share/datasets/fashion-mnist";
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>An IDX file: magic, big-endian dimension sizes, then the payload.</summary>
    private static byte[] Idx(int magic, int[] dims, byte[] payload)
    {
        var bytes = new byte[4 + 4 * dims.Length + payload.Length];
        BinaryPrimitives.WriteInt32BigEndian(bytes, magic);
        for (int d = 0; d < dims.Length; d++)
            BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4 + 4 * d), dims[d]);
        payload.CopyTo(bytes, 4 + 4 * dims.Length);
        return bytes;
    }

    // Three 2×2 images whose pixels are 0..11, and their labels.
    private static readonly byte[] Pixels = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 255];
    private static readonly byte[] Labels = [2, 0, 1];

    private static byte[] ImageFile(byte[]? pixels = null, int count = 3) =>
        Idx(IdxReader.ImagesMagic, [count, 2, 2], pixels ?? Pixels);

    private static byte[] LabelFile(byte[]? labels = null) =>
        Idx(IdxReader.LabelsMagic, [(labels ?? Labels).Length], labels ?? Labels);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Loads_images_and_labels_raw_or_gzipped_as_raw_pixel_values(bool gzip)
    {
        // The names say nothing about compression: gzip must be recognised by its magic bytes.
        string images = _dir.WriteBytes("images.bin", ImageFile(), gzip);
        string labels = _dir.WriteBytes("labels.bin", LabelFile(), gzip);

        var data = IdxReader.Load(images, labels, classCount: 3, name: "tiny");

        Assert.Equal("tiny", data.Name);
        Assert.Equal(3, data.Count);
        Assert.Equal(4, data.FeatureCount);
        Assert.Equal(3, data.ClassCount);
        Assert.Equal(Pixels.Select(p => (float)p), data.Features);
        Assert.Equal([2f, 0f, 1f], data.Targets);
    }

    [Fact]
    public void Reads_the_image_shape_from_the_header()
    {
        var images = IdxReader.ReadImages(_dir.WriteBytes("images", ImageFile(), gzip: true));

        Assert.Equal((3, 2, 2, 4), (images.Count, images.Rows, images.Columns, images.PixelsPerImage));
        Assert.Equal(Pixels, images.Pixels);
    }

    [Fact]
    public void Rejects_a_wrong_magic_number_naming_expected_and_found_in_hex()
    {
        string path = _dir.WriteBytes("images", Idx(0x00000802, [3, 4], Pixels));

        var e = Assert.Throws<DataFormatException>(() => IdxReader.ReadImages(path));

        Assert.Equal(path, e.Path);
        Assert.Contains("expected 0x00000803", e.Message);
        Assert.Contains("found 0x00000802", e.Message);
    }

    [Fact]
    public void Rejects_a_label_file_given_as_images_and_suggests_they_are_swapped()
    {
        string path = _dir.WriteBytes("labels", LabelFile());

        var e = Assert.Throws<DataFormatException>(() => IdxReader.ReadImages(path));

        Assert.Contains("found 0x00000801", e.Message);
        Assert.Contains("swapped", e.Message);
    }

    [Fact]
    public void Rejects_truncated_pixel_data_with_expected_and_found_byte_counts()
    {
        string path = _dir.WriteBytes("images.gz", ImageFile(Pixels[..10]), gzip: true);

        var e = Assert.Throws<DataFormatException>(() => IdxReader.ReadImages(path));

        Assert.Equal(path, e.Path);
        Assert.Contains("truncated", e.Message);
        Assert.Contains("12 bytes", e.Message);
        Assert.Contains("found 10", e.Message);
    }

    [Fact]
    public void Rejects_a_truncated_header()
    {
        string path = _dir.WriteBytes("images", ImageFile()[..9]);

        var e = Assert.Throws<DataFormatException>(() => IdxReader.ReadImages(path));

        Assert.Contains("truncated header", e.Message);
        Assert.Contains("expected 16 bytes", e.Message);
    }

    [Fact]
    public void Rejects_data_beyond_what_the_header_promises()
    {
        string path = _dir.WriteBytes("images", ImageFile([.. Pixels, 1, 2]));

        var e = Assert.Throws<DataFormatException>(() => IdxReader.ReadImages(path));

        Assert.Contains("found 2 more", e.Message);
    }

    [Fact]
    public void Rejects_a_non_positive_dimension()
    {
        string path = _dir.WriteBytes("images", Idx(IdxReader.ImagesMagic, [3, 0, 2], []));

        var e = Assert.Throws<DataFormatException>(() => IdxReader.ReadImages(path));

        Assert.Contains("row count", e.Message);
        Assert.Contains("found 0", e.Message);
    }

    [Fact]
    public void Rejects_corrupt_gzip_data_naming_the_file()
    {
        var bytes = new byte[64];
        bytes[0] = 0x1f;
        bytes[1] = 0x8b;
        bytes[2] = 0x42; // not deflate: the stream is garbage after the magic
        string path = _dir.WriteBytes("images.gz", bytes);

        var e = Assert.Throws<DataFormatException>(() => IdxReader.ReadImages(path));

        Assert.Equal(path, e.Path);
    }

    [Fact]
    public void Rejects_an_image_and_label_count_mismatch_naming_both_files()
    {
        string images = _dir.WriteBytes("images", ImageFile());
        string labels = _dir.WriteBytes("labels", LabelFile([1, 2]));

        var e = Assert.Throws<DataFormatException>(() => IdxReader.Load(images, labels));

        Assert.Contains(images, e.Message);
        Assert.Contains(labels, e.Message);
        Assert.Contains("3 images", e.Message);
        Assert.Contains("2 labels", e.Message);
    }

    [Fact]
    public void Rejects_a_label_out_of_range_naming_its_index_value_and_the_allowed_range()
    {
        string images = _dir.WriteBytes("images", ImageFile());
        string labels = _dir.WriteBytes("labels", LabelFile([1, 3, 7]));

        var e = Assert.Throws<DataFormatException>(() => IdxReader.Load(images, labels, classCount: 3));

        Assert.Equal(labels, e.Path);
        Assert.Contains("index 1 is 3", e.Message);
        Assert.Contains("0..2", e.Message);
    }

    [Theory]
    [InlineData(".gz", true)]
    [InlineData("", false)]
    public void Loads_a_split_from_a_directory_under_either_file_name(string suffix, bool gzip)
    {
        _dir.WriteBytes("t10k-images-idx3-ubyte" + suffix, ImageFile(), gzip);
        _dir.WriteBytes("t10k-labels-idx1-ubyte" + suffix, LabelFile(), gzip);

        var data = IdxReader.LoadDirectory(_dir.Path, "t10k");

        Assert.Equal(3, data.Count);
        Assert.Equal([2f, 0f, 1f], data.Targets);
    }

    [Fact]
    public void A_missing_split_file_lists_the_names_looked_for()
    {
        _dir.WriteBytes("train-images-idx3-ubyte.gz", ImageFile(), gzip: true);

        var e = Assert.Throws<FileNotFoundException>(() => IdxReader.LoadDirectory(_dir.Path, "train"));

        Assert.Contains("train-labels-idx1-ubyte.gz", e.Message);
        Assert.Matches(@"train-labels-idx1-ubyte(?!\.gz)", e.Message); // the raw name too
        Assert.Contains(_dir.Path, e.Message);
    }

    [Fact]
    public void An_unknown_split_name_is_refused()
    {
        var e = Assert.Throws<ArgumentException>(() => IdxReader.LoadDirectory(_dir.Path, "validation"));

        Assert.Contains("\"train\" or \"t10k\"", e.Message);
    }

    [Fact]
    public void Loads_the_installed_fashion_mnist_test_split()
    {
        // The Debian package dataset-fashion-mnist is installed on development machines and in CI.
        Assert.True(Directory.Exists(FashionMnist), $"{FashionMnist} is missing: install dataset-fashion-mnist");

        var data = IdxReader.LoadDirectory(FashionMnist, "t10k");

        Assert.Equal(10_000, data.Count);
        Assert.Equal(784, data.FeatureCount);
        Assert.Equal(10, data.ClassCount);
        Assert.All(data.Targets, t => Assert.InRange(t, 0f, 9f));
        Assert.Equal(10, data.Targets.Distinct().Count());
        Assert.Equal(0f, data.Features.Min());
        Assert.Equal(255f, data.Features.Max());
    }

    [Fact]
    public void Loads_the_fashion_mnist_training_split_in_one_pass_without_an_intermediate_copy()
    {
        // What makes the load fast is that it decompresses straight into the float array: one allocation of the exact
        // size, no 47 MB byte[] of the pixels. Allocation is what this asserts; a wall-clock bound flakes under load.
        Assert.True(Directory.Exists(FashionMnist), $"{FashionMnist} is missing: install dataset-fashion-mnist");
        IdxReader.LoadDirectory(FashionMnist, "t10k"); // warm up the JIT and the pools on the small split

        long before = GC.GetTotalAllocatedBytes(precise: true);
        var data = IdxReader.LoadDirectory(FashionMnist, "train");
        long allocated = GC.GetTotalAllocatedBytes(precise: true) - before;

        Assert.Equal((60_000, 784), (data.Count, data.FeatureCount));
        long features = 60_000L * 784 * sizeof(float), labels = 60_000L * (sizeof(byte) + sizeof(float));
        // Features and labels once, plus 4 MB for the gzip streams' buffers: a pixel byte[] (47 MB) would not fit.
        Assert.InRange(allocated, features, features + labels + (4 << 20));
    }
}
