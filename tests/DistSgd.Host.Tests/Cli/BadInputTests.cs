using System.Buffers.Binary;
using System.IO.Compression;
using DistSgd.Host.Runs;
using DistSgd.Numerics.Data;
using DistSgd.Numerics.Models;

namespace DistSgd.Host.Tests.Cli;

/// <summary>
/// Every kind of bad input, one table each: flags checked against the data, config keys, IDX, CSV and LIBSVM
/// files, model files. Each must exit 2 with a message naming the flag, key or file (line and column for text),
/// and leave no result file behind.
/// </summary>
public class BadInputTests
{
    private static readonly string[] Small = ["--dataset", "blobs", "--samples", "100", "--hidden", "4", "--epochs", "1"];

    /// <summary>Runs train with <paramref name="args"/>, asserts exit 2, the message, and that the results folder holds no result file.</summary>
    internal static void AssertRefused(TempFolder temp, string expected, params string[] args)
    {
        string results = temp["run"];
        var outcome = CliRunner.Run(["train", .. args, "--out", results]);
        Assert.True(outcome.ExitCode == 2, $"exit {outcome.ExitCode}, expected 2; stderr: {outcome.Error}");
        Assert.Contains(expected, outcome.Error);
        AssertNoResults(results);
    }

    internal static void AssertNoResults(string results)
    {
        if (!Directory.Exists(results))
            return;
        var left = Directory.GetFiles(results, "*", SearchOption.AllDirectories);
        Assert.True(left.Length == 0, $"{results} holds {string.Join(", ", left.Select(Path.GetFileName))}");
    }

    // ---- flags that only the data can judge --------------------------------------------------------

    [Theory]
    [InlineData("--batch-size: expected at most 80 (the training set's samples), found 81", "--mode", "sequential", "--batch-size", "81")]
    [InlineData("--batch-size: expected at most 40 (the smallest shard: 80 training samples over 2 workers", "--batch-size", "41")]
    [InlineData("--batch-size: expected at most 26 (the smallest shard: 80 training samples over 3 peers", "--mode", "decentralized", "--workers", "3", "--batch-size", "27")]
    [InlineData("--workers: expected at most 8 (every worker needs a training sample; the training set has 8), found 9", "--samples", "10", "--workers", "9", "--batch-size", "1")]
    [InlineData("--workers: expected at most 8 (every peer needs a training sample; the training set has 8), found 12", "--samples", "10", "--mode", "decentralized", "--workers", "12", "--batch-size", "1")]
    [InlineData("--backup-workers: expected fewer than --workers (2: a step needs at least one gradient), found 2", "--backup-workers", "2")]
    [InlineData("--backup-workers: only a centralized run has backup workers", "--mode", "decentralized", "--backup-workers", "1")]
    [InlineData("--balance: speed balancing shares a global batch among workers or peers; found --mode sequential", "--mode", "sequential", "--balance", "speed")]
    public void A_flag_that_does_not_fit_the_data_is_refused_not_clamped(string expected, params string[] flags)
    {
        using var temp = new TempFolder();
        string[] data = flags.Contains("--samples") ? ["--dataset", "blobs", "--hidden", "4", "--epochs", "1"] : Small;
        AssertRefused(temp, expected, [.. data, .. flags]);
    }

    [Theory]
    [InlineData("--samples", "5", "--samples: expected at least 10 samples, found '5'")]
    [InlineData("--test-fraction", "0", "--test-fraction: expected a fraction strictly between 0 and 1, found '0'")]
    [InlineData("--lr", "Infinity", "--lr: expected a finite learning rate > 0, found 'Infinity'")]
    [InlineData("--lr", "1e400", "--lr")]
    [InlineData("--momentum", "-0.1", "--momentum: expected a momentum in [0, 1), found '-0.1'")]
    [InlineData("--hidden", "0", "--hidden: expected comma-separated layer sizes from 1 to 1000000 (e.g. 256,128), found '0'")]
    [InlineData("--hidden", "abc", "--hidden: expected comma-separated layer sizes")]
    [InlineData("--epochs", "ten", "'ten'")]
    [InlineData("--seed", "1.5", "'1.5'")]
    [InlineData("--format", "xml", "--format: expected one of auto, idx, csv, libsvm, found 'xml'")]
    [InlineData("--task", "ranking", "--task: expected one of classification, regression, found 'ranking'")]
    [InlineData("--normalize", "minmax", "--normalize: expected one of auto, none, scale, standardize, found 'minmax'")]
    [InlineData("--transport", "udp", "--transport: expected one of akka, direct, found 'udp'")]
    [InlineData("--wire", "fp8", "--wire: expected one of fp32, bf16, fp16, found 'fp8'")]
    [InlineData("--compress", "topk:0", "--compress: expected none, topk:F or topk-ef:F with 0 < F <= 1, the fraction of values kept (e.g. topk:0.01), found 'topk:0'")]
    [InlineData("--collective", "tree", "--collective: expected one of auto, allgather, ring, pairwise, found 'tree'")]
    [InlineData("--link-rate", "fast", "--link-rate: expected none or a rate such as 100mbit, 1gbit, 2.5gbit, found 'fast'")]
    [InlineData("--workers", "65", "--workers: expected from 1 to 64 workers, found '65'")]
    [InlineData("--threads", "2000", "--threads: expected a thread count from 0 (all cores) to 1024, found '2000'")]
    [InlineData("--backup-workers", "-1", "--backup-workers: expected from 0 (off) to 63 backup workers, found '-1'")]
    [InlineData("--balance", "fast", "--balance: expected one of off, speed, found 'fast'")]
    public void A_bad_flag_value_is_refused_naming_the_flag_and_the_value(string flag, string value, string expected)
    {
        using var temp = new TempFolder();
        // Parse-time checks: nothing else is needed on the command line to reach them.
        AssertRefused(temp, expected, "--mode", "sequential", flag, value);
    }

    [Fact]
    public void A_results_folder_that_is_a_file_or_cannot_be_made_is_refused_before_training()
    {
        using var temp = new TempFolder();
        File.WriteAllText(temp["taken"], "not a folder");
        var outcome = CliRunner.Run(["train", .. Small, "--mode", "sequential", "--out", temp["taken"]]);
        Assert.Equal(2, outcome.ExitCode);
        Assert.Contains($"--out: {temp["taken"]} is a file; expected a folder", outcome.Error);
        Assert.Equal("not a folder", File.ReadAllText(temp["taken"]));

        string below = Path.Combine(temp["taken"], "run");   // a folder inside a file cannot be made
        outcome = CliRunner.Run(["train", .. Small, "--mode", "sequential", "--out", below]);
        Assert.Equal(2, outcome.ExitCode);
        Assert.Contains($"--out: cannot create the results folder {below}", outcome.Error);
        Assert.DoesNotContain("train loss", outcome.Output);
    }

    [Fact]
    public void A_directory_given_as_a_csv_file_is_refused_naming_it()
    {
        using var temp = new TempFolder();
        Directory.CreateDirectory(temp["data.csv"]);
        AssertRefused(temp, $"{temp["data.csv"]}: expected a data file, found a directory", "--mode", "sequential", "--data", temp["data.csv"], "--format", "csv");
    }

    // ---- config keys ---------------------------------------------------------------------------------

    [Theory]
    [InlineData("distsgd.step-timeout = abc", "distsgd.step-timeout: expected a duration such as 30s, found 'abc'")]
    [InlineData("distsgd.step-timeout = 0s", "distsgd.step-timeout: expected a positive duration")]
    [InlineData("distsgd.start-timeout = -5s", "distsgd.start-timeout: expected a")]
    [InlineData("distsgd.ready-interval = soon", "distsgd.ready-interval: expected a duration such as 30s, found 'soon'")]
    [InlineData("distsgd.akka-chunk-size = 10", "distsgd.akka-chunk-size: expected 0 (off) or a size from 1KiB to 64MiB, found '10'")]
    [InlineData("distsgd.akka-chunk-size = lots", "distsgd.akka-chunk-size: expected a size such as 64KiB or 0, found 'lots'")]
    [InlineData("distsgd.transport = udp", "distsgd.transport: expected akka or direct, found 'udp'")]
    [InlineData("distsgd.wire = fp8", "distsgd.wire: 'fp8' is not a wire format: expected fp32, bf16 or fp16")]
    [InlineData("distsgd.compress = \"topk:2\"", "distsgd.compress: 'topk:2' is not a compression: expected none, topk:F or topk-ef:F")]
    [InlineData("distsgd.fp16-scale = 1000", "distsgd.fp16-scale: expected a power of two from 2^-24 to 2^24 (e.g. 1024), found '1000'")]
    [InlineData("distsgd.transport = akka\ndistsgd.wire = bf16", "compressed gradients travel only on the data plane; set distsgd.transport = direct")]
    [InlineData("distsgd.collective = tree", "distsgd.collective: expected auto, allgather, ring or pairwise, found 'tree'")]
    [InlineData("distsgd.link-rate = 0gbit", "distsgd.link-rate: expected none or a rate such as 100mbit, 1gbit, 25gbit, found '0gbit'")]
    [InlineData("distsgd.collective = ring\ndistsgd.transport = akka", "distsgd.collective = ring runs on the direct transport only, but distsgd.transport = akka")]
    [InlineData("distsgd.direct.port = 70000", "distsgd.direct.port: expected 0 (any free port) to 65535, found 70000")]
    [InlineData("distsgd.direct.port = http", "distsgd.direct.port: expected a port number, found 'http'")]
    [InlineData("distsgd.direct.frame-timeout = 0ms", "distsgd.direct.frame-timeout: expected a positive duration")]
    [InlineData("distsgd.direct.members-only = maybe", "distsgd.direct.members-only: expected on or off, found 'maybe'")]
    [InlineData("distsgd.roles.master = \"\"", "distsgd.roles.master: expected a role name (no spaces or commas), found ''")]
    [InlineData("distsgd.roles.peer = worker", "distsgd.roles: expected three different role names")]
    [InlineData("distsgd.debug.slowdown = 0", "distsgd.debug.slowdown: expected a factor from 1 (off) to 1000, found '0'")]
    [InlineData("distsgd {\n  step-timout = 5s\n}", ":2:3: unknown key distsgd.step-timout; expected one of distsgd.step-timeout")]
    [InlineData("distsgd.direct.prot = 4054", ":1:16: unknown key distsgd.direct.prot")]
    [InlineData("distsgd {\n  step-timeout = 5s\n", "is not valid HOCON: line 1: '{' is never closed")]
    public void A_malformed_config_key_is_refused_naming_the_key_before_any_data_is_read(string hocon, string expected)
    {
        using var temp = new TempFolder();
        string config = temp["bad.conf"];
        File.WriteAllText(config, hocon);
        AssertRefused(temp, expected, [.. Small, "--config", config]);
    }

    [Theory]
    [InlineData("centralized", "pairwise", "--collective pairwise: only the decentralized mode has a collective (--mode decentralized); found --mode centralized")]
    [InlineData("decentralized", "ring", "distsgd.collective = ring runs on the direct transport only, but distsgd.transport = akka")]
    public void A_collective_the_run_cannot_use_is_refused_naming_why(string mode, string collective, string expected)
    {
        using var temp = new TempFolder();
        string[] transport = mode == "decentralized" ? ["--transport", "akka"] : [];
        AssertRefused(temp, expected, [.. Small, "--mode", mode, "--collective", collective, .. transport]);
    }

    [Fact]
    public void A_config_file_that_cannot_be_read_is_refused_naming_it()
    {
        using var temp = new TempFolder();
        AssertRefused(temp, $"--config: cannot read {temp["absent.conf"]}", [.. Small, "--mode", "sequential", "--config", temp["absent.conf"]]);
    }

    // ---- IDX -----------------------------------------------------------------------------------------

    private static byte[] Idx(int magic, int[] dims, int payloadLength)
    {
        var bytes = new byte[4 + 4 * dims.Length + payloadLength];
        BinaryPrimitives.WriteInt32BigEndian(bytes, magic);
        for (int d = 0; d < dims.Length; d++)
            BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4 + 4 * d), dims[d]);
        return bytes;
    }

    private static readonly byte[] GoodImages = Idx(IdxReader.ImagesMagic, [20, 2, 2], 80);
    private static readonly byte[] GoodLabels = Idx(IdxReader.LabelsMagic, [20], 20);

    public static TheoryData<string, byte[], byte[], bool, string> BadIdx => new()
    {
        { "wrong magic", Idx(0x00000801, [20, 2, 2], 80), GoodLabels, false, "train-images-idx3-ubyte: wrong magic number: expected 0x00000803" },
        { "swapped files", GoodLabels, GoodImages, false, "(a label file: are the image and label files swapped?)" },
        { "truncated header", GoodImages[..9], GoodLabels, false, "truncated header: expected 16 bytes" },
        { "truncated pixels", GoodImages[..50], GoodLabels, false, "truncated data: the header promises 20 images × 2 rows × 2 columns = 80 bytes, found 34" },
        { "trailing bytes", [.. GoodImages, 1, 2], GoodLabels, false, "unexpected trailing data" },
        { "zero images", Idx(IdxReader.ImagesMagic, [0, 2, 2], 0), GoodLabels, false, "invalid image count: expected a positive number, found 0" },
        { "hostile count", Idx(IdxReader.ImagesMagic, [1 << 30, 1, 1], 0), GoodLabels, false, "the header promises 1073741824 images × 1 rows × 1 columns = 1073741824 bytes, found 0" },
        { "hostile count gzipped", Idx(IdxReader.ImagesMagic, [1 << 30, 1, 1], 0), GoodLabels, true, "more than the compressed file can hold" },
        { "hostile label count", GoodImages, Idx(IdxReader.LabelsMagic, [int.MaxValue], 0), false, "train-labels-idx1-ubyte: truncated data: the header promises 2147483647 labels" },
        { "count mismatch", GoodImages, Idx(IdxReader.LabelsMagic, [19], 19), false, "holds 20 images but the label file" },
        { "label out of range", GoodImages, [.. GoodLabels[..^1], 10], false, "label at index 19 is 10; expected a class in 0..9" },
        { "corrupt gzip", [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10], GoodLabels, false, "the gzip data is corrupt" },
    };

    [Theory]
    [MemberData(nameof(BadIdx))]
    public void A_malformed_idx_file_is_refused_naming_the_file_and_the_problem(string what, byte[] images, byte[] labels, bool gzip, string expected)
    {
        _ = what;
        using var temp = new TempFolder();
        string data = temp["idx"];
        Directory.CreateDirectory(data);
        Write(Path.Combine(data, "train-images-idx3-ubyte"), images, gzip);
        Write(Path.Combine(data, "train-labels-idx1-ubyte"), labels, false);
        File.WriteAllBytes(Path.Combine(data, "t10k-images-idx3-ubyte"), GoodImages);
        File.WriteAllBytes(Path.Combine(data, "t10k-labels-idx1-ubyte"), GoodLabels);
        AssertRefused(temp, expected, "--mode", "sequential", "--data", data, "--hidden", "4", "--epochs", "1", "--batch-size", "4");
    }

    private static void Write(string path, byte[] bytes, bool gzip)
    {
        if (!gzip)
        {
            File.WriteAllBytes(path, bytes);
            return;
        }
        using var file = File.Create(path);
        using var zip = new GZipStream(file, CompressionLevel.Fastest);
        zip.Write(bytes);
    }

    // ---- CSV and LIBSVM ------------------------------------------------------------------------------

    [Theory]
    [InlineData("data.csv", "", ": the file is empty: expected at least one row of data")]
    [InlineData("data.csv", "0,1.5\n1,abc\n", ":2:2: column 2: expected a number, found \"abc\"")]
    [InlineData("data.csv", "0,1.5\n1,2.5,3\n", ":2: expected 2 columns, found 3")]
    [InlineData("data.csv", "0,1\n1.5,2\n", ":2:1: column 1: expected a class label (a whole number ≥ 0), found \"1.5\"")]
    [InlineData("data.csv", "0,1\n-1,2\n", ":2:1: column 1: expected a class label")]
    [InlineData("data.csv", "0,1\n1,NaN\n", ":2:2: column 2: expected a number, found \"NaN\"")]
    [InlineData("data.csv", "0,1\n1,1e999\n", ":2:2: column 2: expected a number, found \"1e999\"")]
    [InlineData("data.csv", "0\n1\n", ": expected at least 2 columns (a label and a feature), found 1")]
    [InlineData("data.libsvm", "1 1:0.5\nx 1:0.5\n", ":2:1: expected a label (a number) at the start of the line, found \"x\"")]
    [InlineData("data.libsvm", "1 1:0.5\n0 2:0.5 1:0.2\n", ":2:9: feature indices must ascend: expected an index above 2, found 1")]
    [InlineData("data.libsvm", "1 1:0.5\n0 0:0.5\n", ":2:3: feature indices are 1-based")]
    [InlineData("data.libsvm", "1 1:0.5\n0 1:abc\n", ":2:5: expected a number after '1:', found \"abc\"")]
    [InlineData("data.libsvm", "1 1:0.5\n0 1-0.5\n", ":2:3: expected index:value, found \"1-0.5\"")]
    [InlineData("data.libsvm", "1 1:0.5\n0 2000000000:1\n", ":2:3: expected a feature index up to 16777216 (features are stored densely), found 2000000000")]
    [InlineData("data.libsvm", "-1 1:0.5\n2 1:1\n", "labels mix two conventions")]
    [InlineData("data.txt", "0,1\n", "--data: cannot tell the format of")]
    public void A_malformed_text_file_is_refused_with_its_line_and_column(string name, string text, string expected)
    {
        using var temp = new TempFolder();
        string data = temp[name];
        File.WriteAllText(data, text);
        AssertRefused(temp, expected, "--mode", "sequential", "--data", data, "--hidden", "4", "--epochs", "1", "--batch-size", "1");
    }

    // ---- model files (eval) --------------------------------------------------------------------------

    private static byte[] GoodModel()
    {
        var spec = new ModelSpec(ModelKind.Softmax, 20, 4);
        var parameters = Enumerable.Range(0, spec.ParameterCount).Select(i => i * 0.001f).ToArray();
        return ModelFile.Serialize(new SavedModel(spec, parameters, new FeatureTransform(1f, null)));
    }

    /// <summary>A model file whose checksum is recomputed after <paramref name="edit"/>, so that only the edit is wrong.</summary>
    private static byte[] Resealed(Action<byte[]> edit)
    {
        var bytes = GoodModel();
        edit(bytes);
        System.Security.Cryptography.SHA256.HashData(bytes.AsSpan(0, bytes.Length - 32)).CopyTo(bytes, bytes.Length - 32);
        return bytes;
    }

    // Offsets of the layout: magic 8, version 4, kind 1, activation 1, inputs 4, classes 4, hidden count 4, pixel max 4,
    // has-statistics 1, parameter count 4, then θ.
    private const int ThetaOffset = 8 + 4 + 1 + 1 + 4 + 4 + 4 + 4 + 1 + 4;

    public static TheoryData<string, byte[], string> BadModels => new()
    {
        { "empty", [], "not a DistSgd model file" },
        { "not a model", "hello, this is not a model file at all"u8.ToArray(), "not a DistSgd model file (it does not start with \"DSGDMODL\")" },
        { "truncated", GoodModel()[..100], "the checksum does not match: the model file is corrupted or truncated" },
        { "flipped bit", Flip(GoodModel(), ThetaOffset + 5), "the checksum does not match" },
        { "version", Resealed(b => b[8] = 9), "model file version 9 is not supported" },
        { "kind", Resealed(b => b[12] = 7), "unknown model kind 7" },
        { "hidden count", Resealed(b => BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(22), 1 << 30)), "the hidden-layer count is 1073741824; expected 0 to 1000" },
        { "parameter count", Resealed(b => BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(ThetaOffset - 4), int.MaxValue)), "the parameter count is 2147483647" },
        { "NaN parameter", Resealed(b => BitConverter.TryWriteBytes(b.AsSpan(ThetaOffset + 8), float.NaN)), "θ[2] is NaN; expected finite parameters" },
        { "inputs", Resealed(b => BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(14), -3)), "invalid model file" },
    };

    private static byte[] Flip(byte[] bytes, int at)
    {
        bytes[at] ^= 0x10;
        return bytes;
    }

    [Theory]
    [MemberData(nameof(BadModels))]
    public void A_malformed_model_file_is_refused_by_eval_naming_the_file(string what, byte[] model, string expected)
    {
        _ = what;
        using var temp = new TempFolder();
        string path = temp["model.bin"];
        File.WriteAllBytes(path, model);
        var outcome = CliRunner.Run("eval", "--model", path, "--dataset", "blobs", "--samples", "100");
        Assert.True(outcome.ExitCode == 2, $"exit {outcome.ExitCode}, expected 2; stderr: {outcome.Error}");
        Assert.Contains(path, outcome.Error);
        Assert.Contains(expected, outcome.Error);
    }

    [Fact]
    public void The_good_model_of_these_tables_loads()
    {
        using var temp = new TempFolder();
        string path = temp["model.bin"];
        File.WriteAllBytes(path, GoodModel());
        var outcome = CliRunner.Run("eval", "--model", path, "--dataset", "blobs", "--samples", "100");
        Assert.Equal(0, outcome.ExitCode);
    }
}
