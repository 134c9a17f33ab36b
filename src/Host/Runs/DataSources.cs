using DistSgd.Host.Settings;
using DistSgd.Numerics.Data;

namespace DistSgd.Host.Runs;

/// <summary>The raw (untransformed) training and test sets of a run, and how to describe them to a user.</summary>
/// <param name="IsImages">Pixel data (0–255), scaled rather than standardised by default.</param>
public sealed record LoadedData(Dataset Train, Dataset Test, string Description, bool IsImages);

/// <summary>
/// Finds and loads the data a run asks for. The default, Fashion-MNIST, comes from Debian's
/// dataset-fashion-mnist package when installed, else from the 10k-image sample bundled with the program.
/// </summary>
public static class DataSources
{
    public const string FashionMnist = "fashion-mnist";
    public const string Blobs = "blobs";
    public const string Linear = "linear";
    public static readonly string[] BuiltIn = [FashionMnist, Blobs, Linear];
    public static readonly string[] Formats = ["auto", "idx", "csv", "libsvm"];

    /// <summary>Where Debian's dataset-fashion-mnist package puts the files.</summary>
    public const string SystemFashionMnist = "/usr/share/datasets/fashion-mnist";

    /// <summary>The bundled sample: the Fashion-MNIST test files (10k images), copied next to the program.</summary>
    public static string BundledFashionMnist => System.IO.Path.Combine(AppContext.BaseDirectory, "data", "fashion-mnist-sample");

    public static LoadedData Load(DataRequest request)
    {
        if (request.Path is not null)
            return LoadPath(request);
        return request.Dataset switch
        {
            FashionMnist => LoadFashionMnist(SystemFashionMnist),
            Blobs => SplitSynthetic(Synthetic.GaussianBlobs(request.SyntheticCount, 20, 4, spread: 12, request.Seed), request,
                                    $"synthetic Gaussian blobs ({request.SyntheticCount} samples, 20 features, 4 classes)"),
            Linear => SplitSynthetic(Synthetic.LinearRegression(request.SyntheticCount, 20, noiseStd: 0.1, request.Seed).Data, request,
                                     $"synthetic noisy linear regression ({request.SyntheticCount} samples, 20 features)"),
            _ => throw new ArgumentException($"--dataset: unknown data set '{request.Dataset}'; expected one of {string.Join(", ", BuiltIn)}"),
        };
    }

    /// <summary>
    /// The data `distsgd eval` scores a model on: a data file as a whole, the test part of an IDX
    /// directory, or the test split of a built-in data set.
    /// </summary>
    public static Dataset LoadForEvaluation(DataRequest request, int? classCount)
    {
        if (request.Path is not null && (request.Format is "csv" or "libsvm" || (request.Format == "auto" && !Directory.Exists(request.Path))))
        {
            string format = request.Format == "auto" ? GuessFormat(request.Path) : request.Format;
            return ReadFile(request, request.Path, format, classCount);
        }
        return Load(request).Test;
    }

    /// <summary>Fashion-MNIST from <paramref name="systemDirectory"/> when it holds the full set, else the bundled sample.</summary>
    internal static LoadedData LoadFashionMnist(string systemDirectory)
    {
        if (HasIdxPair(systemDirectory, "train"))
        {
            var train = IdxReader.LoadDirectory(systemDirectory, "train");
            var test = IdxReader.LoadDirectory(systemDirectory, "t10k");
            return new LoadedData(train, test,
                $"Fashion-MNIST from {systemDirectory} ({train.Count} train, {test.Count} test)", IsImages: true);
        }
        string bundled = BundledFashionMnist;
        var all = IdxReader.LoadDirectory(bundled, "t10k");
        var (sampleTrain, sampleTest) = DataSplit.TrainTestSplit(all, 0.2, seed: 20_17);
        return new LoadedData(sampleTrain, sampleTest,
            $"Fashion-MNIST bundled sample from {bundled} ({sampleTrain.Count} train, {sampleTest.Count} test; " +
            $"install the Debian package dataset-fashion-mnist for the full 60k/10k)", IsImages: true);
    }

    private static LoadedData SplitSynthetic(Dataset data, DataRequest request, string description)
    {
        var (train, test) = DataSplit.TrainTestSplit(data, request.TestFraction, request.Seed);
        return new LoadedData(train, test, $"{description}, {train.Count} train / {test.Count} test", IsImages: false);
    }

    private static LoadedData LoadPath(DataRequest request)
    {
        string path = request.Path!;
        string format = request.Format == "auto" ? GuessFormat(path) : request.Format;
        if (format == "idx")
        {
            if (!Directory.Exists(path))
                throw new DataFormatException(path, "an IDX data set is a directory holding train-images/train-labels and t10k-images/t10k-labels files");
            var train = IdxReader.LoadDirectory(path, "train");
            var test = request.TestPath is not null ? IdxReader.LoadDirectory(request.TestPath, "t10k") : IdxReader.LoadDirectory(path, "t10k");
            return new LoadedData(train, test, $"IDX images from {path} ({train.Count} train, {test.Count} test)", IsImages: true);
        }

        var data = ReadFile(request, path, format, null);
        if (request.TestPath is not null)
        {
            var test = ReadFile(request, request.TestPath, format, data.IsClassification ? data.ClassCount : null);
            if (test.FeatureCount != data.FeatureCount)
                throw new DataFormatException(request.TestPath, $"the test data has {test.FeatureCount} features, the training data {path} has {data.FeatureCount}");
            return new LoadedData(data, test, $"{format.ToUpperInvariant()} {path} ({data.Count} train) and {request.TestPath} ({test.Count} test)", IsImages: false);
        }
        var (trainPart, testPart) = DataSplit.TrainTestSplit(data, request.TestFraction, request.Seed);
        return new LoadedData(trainPart, testPart,
            $"{format.ToUpperInvariant()} {path} ({trainPart.Count} train / {testPart.Count} test, split {1 - request.TestFraction:0.##}/{request.TestFraction:0.##})",
            IsImages: false);
    }

    /// <summary>One CSV or LIBSVM file, read with the request's label and task options.</summary>
    private static Dataset ReadFile(DataRequest request, string file, string format, int? classCount) => format switch
    {
        "csv" => CsvReader.Load(file, new CsvOptions
        {
            LabelColumn = request.LabelColumn, HasHeader = request.CsvHeader, Task = request.Task, ClassCount = classCount,
        }),
        "libsvm" => LibSvmReader.Load(file, new LibSvmOptions { Task = request.Task, ClassCount = classCount }),
        _ => throw new ArgumentException($"--format: unknown format '{format}'; expected one of {string.Join(", ", Formats)}"),
    };

    private static string GuessFormat(string path)
    {
        if (Directory.Exists(path))
            return "idx";
        string extension = System.IO.Path.GetExtension(path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? path[..^3] : path).ToLowerInvariant();
        return extension switch
        {
            ".csv" or ".tsv" => "csv",
            ".libsvm" or ".svm" or ".svmlight" => "libsvm",
            _ => throw new ArgumentException($"--data: cannot tell the format of '{path}' from its name; give --format csv or --format libsvm"),
        };
    }

    private static bool HasIdxPair(string directory, string split) =>
        Directory.Exists(directory)
        && (File.Exists(System.IO.Path.Combine(directory, $"{split}-images-idx3-ubyte.gz")) || File.Exists(System.IO.Path.Combine(directory, $"{split}-images-idx3-ubyte")));
}
