using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using DistSgd.Host.Runs;
using DistSgd.Numerics.Data;
using DistSgd.Numerics.Models;
using DistSgd.Numerics.Training;

namespace DistSgd.Host.Cli;

/// <summary>
/// The `distsgd` command line: commands, flags, their validation and exit codes (0 ok, 1 training
/// failed, 2 bad usage or input). Every error names the flag, what it accepts and what was found.
/// </summary>
public static class DistSgdCommandLine
{
    public static int Run(string[] args, TextWriter output, TextWriter error, CancellationToken cancellation = default)
    {
        var root = Build(output, error, cancellation);
        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            foreach (var parseError in parsed.Errors)
                error.WriteLine($"error: {parseError.Message}");
            error.WriteLine($"Run 'distsgd {string.Join(' ', CommandPath(parsed))} --help' for the flags and what they accept.");
            return ExitCodes.BadInput;
        }
        return parsed.Invoke(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false });
    }

    private static IEnumerable<string> CommandPath(ParseResult parsed)
    {
        var names = new List<string>();
        for (SymbolResult? result = parsed.CommandResult; result is CommandResult command && command.Parent is not null; result = command.Parent)
            names.Insert(0, command.Command.Name);
        return names;
    }

    public static RootCommand Build(TextWriter output, TextWriter error, CancellationToken cancellation)
    {
        var root = new RootCommand("DistSgd: data-parallel SGD training of neural networks, sequential or on an Akka.NET cluster.");
        root.Add(TrainCommand(output, error, cancellation));
        root.Add(EvalCommand(output, error));
        return root;
    }

    // ---- shared data flags ----------------------------------------------------------------------

    private sealed class DataFlags
    {
        public readonly Option<string> Dataset = Choice("--dataset", DataSources.FashionMnist, DataSources.BuiltIn,
            "Built-in data: fashion-mnist (Debian's dataset-fashion-mnist when installed, else the bundled 10k sample), blobs or linear (synthetic).");
        public readonly Option<string?> Data = new("--data") { Description = "Data to read instead of --dataset: an IDX directory, a CSV file or a LIBSVM file." };
        public readonly Option<string?> TestData = new("--test-data") { Description = "A separate test file (CSV/LIBSVM) or IDX directory; default: split --data by --test-fraction." };
        public readonly Option<string> Format = Choice("--format", "auto", DataSources.Formats, "Format of --data; auto guesses from the path (directory = idx, .csv, .libsvm/.svm).");
        public readonly Option<int> LabelColumn = new("--label-column") { Description = "CSV: 0-based label column; negative counts from the end (-1 = last).", DefaultValueFactory = _ => 0 };
        public readonly Option<bool> Header = new("--header") { Description = "CSV: the first line names the columns." };
        public readonly Option<string> Task = Choice("--task", "classification", ["classification", "regression"], "What the labels of a CSV/LIBSVM file are.");
        public readonly Option<double> TestFraction = new("--test-fraction") { Description = "Share of the data held out for testing when there is no separate test set.", DefaultValueFactory = _ => 0.2 };
        public readonly Option<int> Samples = new("--samples") { Description = "Number of samples of a synthetic data set (blobs, linear).", DefaultValueFactory = _ => 10_000 };

        public DataFlags()
        {
            TestFraction.Validators.Add(r => Check<double>(r, v => v is > 0 and < 1, "a fraction strictly between 0 and 1"));
            Samples.Validators.Add(r => Check<int>(r, v => v >= 10, "at least 10 samples"));
        }

        public void AddTo(Command command)
        {
            foreach (var option in new Option[] { Dataset, Data, TestData, Format, LabelColumn, Header, Task, TestFraction, Samples })
                command.Add(option);
        }

        public DataRequest Read(ParseResult p, int seed) => new(
            p.GetValue(Dataset)!, p.GetValue(Data), p.GetValue(TestData), p.GetValue(Format)!, p.GetValue(TestFraction),
            p.GetValue(LabelColumn), p.GetValue(Header),
            p.GetValue(Task) == "regression" ? LearningTask.Regression : LearningTask.Classification, seed, p.GetValue(Samples));
    }

    // ---- train ------------------------------------------------------------------------------------

    private static Command TrainCommand(TextWriter output, TextWriter error, CancellationToken cancellation)
    {
        var command = new Command("train", "Train a model and write it, its metrics and a summary to a results folder.");
        var mode = Choice("--mode", Modes.Centralized, Modes.All,
            "How to train: centralized (a master and --workers worker nodes of a simulated cluster), decentralized (--workers equal peer nodes " +
            "of a simulated cluster, all-gathering gradients over DistributedPubSub), sequential (one process, one model).");
        var workers = new Option<int>("--workers") { Description = "Worker nodes (centralized) or peer nodes (decentralized) of the simulated cluster.", DefaultValueFactory = _ => 2 };
        var config = new Option<string?>("--config") { Description = "HOCON file of overrides for every node of the simulated cluster (see hocon/local.conf)." };
        var transport = new Option<string?>("--transport")
        {
            Description = "What carries θ and the gradients between nodes in the distributed modes: akka (inside Akka messages, the reference path) " +
                          "or direct (TCP connections between the nodes; Akka keeps membership and the step protocol). Default: distsgd.transport " +
                          "of --config, else direct. [akka|direct]",
        };
        transport.Validators.Add(r => Check<string?>(r, v => v is null or "akka" or "direct", "one of akka, direct"));
        var threadsPerWorker = new Option<int>("--threads-per-worker") { Description = "Matrix-kernel threads of each worker or peer.", DefaultValueFactory = _ => 1 };
        var data = new DataFlags();
        var model = Choice("--model", "auto", ["auto", "linear", "softmax", "mlp"],
            "Model: linear regression, softmax (logistic) regression or an MLP; auto = mlp for classes, linear for regression.");
        var hidden = new Option<int[]>("--hidden")
        {
            Description = "MLP hidden layer sizes, comma-separated.",
            DefaultValueFactory = _ => [256, 128],
            CustomParser = ParseHidden,
        };
        var activation = Choice("--activation", "relu", ["relu", "tanh", "sigmoid"], "MLP hidden-layer nonlinearity.");
        var epochs = new Option<int>("--epochs") { Description = "Maximum number of epochs.", DefaultValueFactory = _ => 10 };
        var batchSize = new Option<int>("--batch-size") { Description = "Samples per SGD step (per worker in the distributed modes: the global batch is workers × this).", DefaultValueFactory = _ => 64 };
        var lr = new Option<double>("--lr") { Description = "Base learning rate η.", DefaultValueFactory = _ => 0.05 };
        var momentum = new Option<double>("--momentum") { Description = "Momentum μ in [0, 1).", DefaultValueFactory = _ => 0.9 };
        var weightDecay = new Option<double>("--weight-decay") { Description = "L2 weight decay λ ≥ 0.", DefaultValueFactory = _ => 0.0 };
        var schedule = Choice("--schedule", "cosine", ["cosine", "step", "constant"],
            "Learning-rate schedule: cosine (anneal to 0 over the run), step (×0.1 at 1/3 and 2/3), constant.");
        var seed = new Option<int>("--seed") { Description = "Seed of the initialisation, the shuffles and the splits.", DefaultValueFactory = _ => 1 };
        var patience = new Option<int>("--patience") { Description = "Stop after this many epochs without the training loss improving by --min-delta; 0 = off.", DefaultValueFactory = _ => 3 };
        var minDelta = new Option<double>("--min-delta") { Description = "Smallest decrease of the loss that counts as an improvement.", DefaultValueFactory = _ => 1e-4 };
        var normalize = Choice("--normalize", "auto", ["auto", "none", "scale", "standardize"],
            "Input preprocessing: scale (pixels to [0,1]), standardize (training-set mean/std), auto = scale for images, standardize otherwise.");
        var threads = new Option<int>("--threads") { Description = "Threads for the matrix kernels; 0 = all cores.", DefaultValueFactory = _ => 0 };
        var outDir = new Option<string?>("--out") { Description = "Results folder; default runs/<timestamp>-<mode>." };
        var quiet = new Option<bool>("--quiet") { Description = "Print only the final line." };

        epochs.Validators.Add(r => Check<int>(r, v => v >= 1, "at least 1 epoch"));
        batchSize.Validators.Add(r => Check<int>(r, v => v >= 1, "a batch size of at least 1"));
        lr.Validators.Add(r => Check<double>(r, v => v > 0 && double.IsFinite(v), "a finite learning rate > 0"));
        momentum.Validators.Add(r => Check<double>(r, v => v is >= 0 and < 1, "a momentum in [0, 1)"));
        weightDecay.Validators.Add(r => Check<double>(r, v => v >= 0 && double.IsFinite(v), "a finite weight decay ≥ 0"));
        patience.Validators.Add(r => Check<int>(r, v => v >= 0, "a patience ≥ 0 (0 = off)"));
        minDelta.Validators.Add(r => Check<double>(r, v => v >= 0 && double.IsFinite(v), "a finite min-delta ≥ 0"));
        threads.Validators.Add(r => Check<int>(r, v => v is >= 0 and <= 1024, "a thread count from 0 (all cores) to 1024"));
        workers.Validators.Add(r => Check<int>(r, v => v is >= 1 and <= 64, "from 1 to 64 workers"));
        threadsPerWorker.Validators.Add(r => Check<int>(r, v => v is >= 1 and <= 1024, "a thread count from 1 to 1024"));

        foreach (var option in new Option[] { mode, workers, transport, threadsPerWorker, config, model, hidden, activation, epochs, batchSize, lr, momentum, weightDecay, schedule, seed, patience, minDelta, normalize, threads, outDir, quiet })
            command.Add(option);
        data.AddTo(command);

        command.SetAction(p =>
        {
            int runSeed = p.GetValue(seed);
            var dataRequest = data.Read(p, runSeed);
            string modelName = p.GetValue(model)!;
            if (modelName == "auto")
                modelName = dataRequest.Task == LearningTask.Regression || (dataRequest.Path is null && dataRequest.Dataset == DataSources.Linear) ? "linear" : "mlp";
            string modeName = p.GetValue(mode)!;
            var settings = new TrainSettings
            {
                Mode = modeName,
                Data = dataRequest,
                Model = Enum.Parse<ModelKind>(modelName, ignoreCase: true),
                Hidden = p.GetValue(hidden)!,
                Activation = Enum.Parse<Activation>(p.GetValue(activation)!, ignoreCase: true),
                Epochs = p.GetValue(epochs),
                BatchSize = p.GetValue(batchSize),
                LearningRate = p.GetValue(lr),
                Momentum = p.GetValue(momentum),
                WeightDecay = p.GetValue(weightDecay),
                Schedule = p.GetValue(schedule)!,
                Seed = runSeed,
                Patience = p.GetValue(patience),
                MinDelta = p.GetValue(minDelta),
                Normalize = p.GetValue(normalize)!,
                Threads = p.GetValue(threads),
                Out = p.GetValue(outDir) ?? Path.Combine("runs", $"{DateTime.Now:yyyyMMdd-HHmmss}-{modeName}"),
                Quiet = p.GetValue(quiet),
                Workers = p.GetValue(workers),
                ThreadsPerWorker = p.GetValue(threadsPerWorker),
                ConfigFile = p.GetValue(config),
                Transport = p.GetValue(transport),
            };
            return Guarded(error, () => TrainRun.Execute(settings, output, cancellation));
        });
        return command;
    }

    // ---- eval -------------------------------------------------------------------------------------

    private static Command EvalCommand(TextWriter output, TextWriter error)
    {
        var command = new Command("eval", "Load a model file and print its loss and accuracy on a data set.");
        var modelPath = new Option<string>("--model") { Description = "The model file written by train (model.bin).", Required = true };
        var data = new DataFlags();
        command.Add(modelPath);
        data.AddTo(command);
        command.SetAction(p => Guarded(error, () =>
        {
            string path = p.GetValue(modelPath)!;
            var saved = ModelFile.Load(path);
            var request = data.Read(p, seed: 1);
            var raw = DataSources.LoadForEvaluation(request, saved.Spec.ClassCount > 0 ? saved.Spec.ClassCount : null);
            var evaluation = saved.Transform.Apply(raw);
            if (evaluation.FeatureCount != saved.Spec.InputCount)
                throw new UsageException($"{raw.Name} has {evaluation.FeatureCount} features, the model {saved.Spec} expects {saved.Spec.InputCount}");
            if (evaluation.ClassCount != saved.Spec.ClassCount && !(evaluation.IsClassification && evaluation.ClassCount < saved.Spec.ClassCount))
                throw new UsageException($"{raw.Name} has {evaluation.ClassCount} classes, the model {saved.Spec} predicts {saved.Spec.ClassCount}");
            var scoring = new Model(saved.Spec, KernelChoice.Create(0));
            var score = scoring.Evaluate(saved.Parameters, evaluation.Features, evaluation.Targets, evaluation.Count);
            output.WriteLine($"model: {saved.Spec} from {path}");
            output.WriteLine($"data: {raw.Name} ({evaluation.Count} samples)");
            output.WriteLine(saved.Spec.ClassCount > 0
                ? string.Create(CultureInfo.InvariantCulture, $"loss {score.MeanLoss:F4}  accuracy {score.Accuracy * 100:F2}% ({score.Correct}/{score.Count})")
                : string.Create(CultureInfo.InvariantCulture, $"mean squared error {score.MeanLoss:G6} ({score.Count} samples)"));
            return ExitCodes.Ok;
        }));
        return command;
    }

    // ---- helpers ----------------------------------------------------------------------------------

    /// <summary>Runs an action, turning bad input (data files, flag combinations) into exit code 2 with its message.</summary>
    private static int Guarded(TextWriter error, Func<int> action)
    {
        try
        {
            return action();
        }
        catch (FileNotFoundException e)
        {
            error.WriteLine($"error: {e.FileName ?? e.Message}: no such file");
            return ExitCodes.BadInput;
        }
        catch (Exception e) when (e is DataFormatException or UsageException or ArgumentException or DirectoryNotFoundException
                                      or Akka.Configuration.ConfigurationException)
        {
            error.WriteLine($"error: {e.Message}");
            return ExitCodes.BadInput;
        }
        catch (Exception e) when (e is TrainingDivergedException or TrainingFailedException)
        {
            error.WriteLine($"error: {e.Message}");
            return ExitCodes.TrainingFailed;
        }
    }

    private static Option<string> Choice(string name, string defaultValue, string[] choices, string description)
    {
        var option = new Option<string>(name) { Description = $"{description} [{string.Join('|', choices)}]", DefaultValueFactory = _ => defaultValue };
        option.Validators.Add(r => Check<string>(r, choices.Contains, $"one of {string.Join(", ", choices)}"));
        return option;
    }

    /// <summary>Adds "--flag: expected …, found …" when the flag's value fails <paramref name="accepts"/>.</summary>
    private static void Check<T>(OptionResult result, Func<T, bool> accepts, string expected)
    {
        T value;
        try
        {
            value = result.GetValueOrDefault<T>();
        }
        catch (InvalidOperationException)
        {
            // Not a T at all: the parser reports that conversion error itself.
            return;
        }
        if (accepts(value))
            return;
        string found = string.Join(' ', result.Tokens.Select(t => t.Value));
        result.AddError($"{result.Option.Name}: expected {expected}, found '{found}'");
    }

    private static int[] ParseHidden(ArgumentResult result)
    {
        string text = result.Tokens.Count > 0 ? result.Tokens[0].Value : "";
        var sizes = new List<int>();
        foreach (string part in text.Split(',', StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(part, NumberStyles.Integer, CultureInfo.InvariantCulture, out int size) || size < 1 || size > 1_000_000)
            {
                result.AddError($"--hidden: expected comma-separated layer sizes from 1 to 1000000 (e.g. 256,128), found '{text}'");
                return [];
            }
            sizes.Add(size);
        }
        return sizes.ToArray();
    }
}
