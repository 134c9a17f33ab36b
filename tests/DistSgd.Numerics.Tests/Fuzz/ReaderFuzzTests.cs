using System.Buffers.Binary;
using System.Text;
using DistSgd.Numerics.Data;
using DistSgd.Numerics.Models;
using DistSgd.Numerics.Tests.Data;
using DistSgd.Tests.Fuzz;

namespace DistSgd.Numerics.Tests.Fuzz;

/// <summary>
/// Random and mutated bytes to every file reader, a second each, seeded: a reader refuses with a
/// <see cref="DataFormatException"/> (naming the file) or reads the file, never throws anything else, never hangs,
/// and never allocates for a length header more than the file could hold.
/// </summary>
public sealed class ReaderFuzzTests : IDisposable
{
    private static readonly TimeSpan Budget = TimeSpan.FromSeconds(1);
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    // Readers start with buffers of their own (a 1 MiB line buffer, 64k-value growable buffers); beyond those, what they
    // allocate must grow with the file: a few floats per byte at most (a gzip file may expand 1032×, bounded below).
    private static long TextLimit(int length) => (16L << 20) + 64L * length;

    private static byte[] IdxFile(int magic, int[] dims, int payload)
    {
        var bytes = new byte[4 + 4 * dims.Length + payload];
        BinaryPrimitives.WriteInt32BigEndian(bytes, magic);
        for (int d = 0; d < dims.Length; d++)
            BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4 + 4 * d), dims[d]);
        for (int i = 4 + 4 * dims.Length; i < bytes.Length; i++)
            bytes[i] = (byte)(i % 10);
        return bytes;
    }

    [Fact]
    public void Idx_reader_survives_mutated_image_and_label_files()
    {
        string labels = _dir.WriteBytes("labels", IdxFile(IdxReader.LabelsMagic, [6], 6));
        string images = _dir.File("images");
        var report = Fuzzer.Run(seed: 11, Budget, [IdxFile(IdxReader.ImagesMagic, [6, 3, 2], 36), IdxFile(IdxReader.LabelsMagic, [6], 6)],
            bytes =>
            {
                File.WriteAllBytes(images, bytes);
                IdxReader.Load(images, labels, classCount: 10);
            },
            typeof(DataFormatException), n => (8L << 20) + 4L * 1032 * (n + 64));
        Assert.True(report.Refused > 0 && report.Accepted > 0, $"{report}");
    }

    [Fact]
    public void Idx_reader_survives_mutated_gzip_files()
    {
        string labels = _dir.WriteBytes("labels", IdxFile(IdxReader.LabelsMagic, [6], 6));
        string images = _dir.WriteBytes("images.gz", IdxFile(IdxReader.ImagesMagic, [6, 3, 2], 36), gzip: true);
        var report = Fuzzer.Run(seed: 12, Budget, [File.ReadAllBytes(images)],
            bytes =>
            {
                File.WriteAllBytes(images, bytes);
                IdxReader.Load(images, labels, classCount: 10);
            },
            typeof(DataFormatException), n => (8L << 20) + 4L * 1032 * (n + 64));
        Assert.True(report.Refused > 0, $"{report}");
    }

    [Fact]
    public void Csv_reader_survives_mutated_text()
    {
        string path = _dir.File("data.csv");
        var report = Fuzzer.Run(seed: 13, Budget,
            [Encoding.UTF8.GetBytes("0,1.5,2\n1,2.5,-3e2\n2,\"4\",0.5\n"), Encoding.UTF8.GetBytes("label,a,b\n0,1,2\n")],
            bytes =>
            {
                File.WriteAllBytes(path, bytes);
                CsvReader.Load(path, new CsvOptions { HasHeader = bytes.Length > 0 && bytes[0] == (byte)'l' });
            },
            typeof(DataFormatException), TextLimit);
        Assert.True(report.Refused > 0 && report.Accepted > 0, $"{report}");
    }

    [Fact]
    public void LibSvm_reader_survives_mutated_text()
    {
        string path = _dir.File("data.libsvm");
        var report = Fuzzer.Run(seed: 14, Budget,
            [Encoding.UTF8.GetBytes("1 1:0.5 3:2 # a comment\n0 2:1\n\n2 1:-1 2:0.25 3:1e3\n"), Encoding.UTF8.GetBytes("-1 1:1\n+1 2:1\n")],
            bytes =>
            {
                File.WriteAllBytes(path, bytes);
                LibSvmReader.Load(path);
            },
            // An index up to 2^24 is legal, and every sample holds every feature: the dense array may be 64 MiB per sample.
            typeof(DataFormatException), n => (16L << 20) + 64L * n + (long)(n / 2 + 1) * 4 * LibSvmReader.MaxFeatureIndex);
        Assert.True(report.Refused > 0 && report.Accepted > 0, $"{report}");
    }

    [Fact]
    public void Model_file_reader_survives_mutated_files()
    {
        string path = _dir.File("model.bin");
        var mlp = new ModelSpec(ModelKind.Mlp, 3, 4, [5], Activation.Tanh);
        var softmax = new ModelSpec(ModelKind.Softmax, 2, 3);
        byte[] Saved(ModelSpec spec, Standardizer? standardizer) => ModelFile.Serialize(new SavedModel(
            spec, Enumerable.Range(0, spec.ParameterCount).Select(i => i * 0.01f).ToArray(), new FeatureTransform(255f, standardizer)));
        byte[][] seeds = [Saved(mlp, new Standardizer([1f, 2f, 3f], [1f, 1f, 2f])), Saved(softmax, null)];
        var report = Fuzzer.Run(seed: 15, Budget / 2, seeds,
            bytes =>
            {
                File.WriteAllBytes(path, bytes);
                ModelFile.Load(path);
            },
            typeof(DataFormatException), n => (1L << 20) + 16L * n);
        Assert.True(report.Refused > 0 && report.Accepted > 0, $"{report}");

        // Past the checksum: mutated bodies sealed with a matching checksum reach every field of the parser.
        var sealedReport = Fuzzer.Run(seed: 16, Budget / 2, seeds,
            bytes =>
            {
                if (bytes.Length >= 32)
                    System.Security.Cryptography.SHA256.HashData(bytes.AsSpan(0, bytes.Length - 32)).CopyTo(bytes, bytes.Length - 32);
                ModelFile.Deserialize(bytes, "model.bin");
            },
            typeof(DataFormatException), n => (1L << 20) + 16L * n);
        Assert.True(sealedReport.Refused > 0, $"{sealedReport}");
    }
}
