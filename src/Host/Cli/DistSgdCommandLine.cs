using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using DistSgd.Host.Display;
using DistSgd.Host.Export;
using DistSgd.Host.Runs;
using DistSgd.Host.Settings;
using DistSgd.Numerics.Compression;
using DistSgd.Numerics.Cost;
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
        var fromEnvironment = new Dictionary<string, string>();
        if (args.Length > 0 && args[0] == "node" && root.Subcommands.FirstOrDefault(c => c.Name == "node") is { } node)
            (args, fromEnvironment) = AddEnvironment(node, args);
        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            error.WriteLine(ParseErrorLine(parsed, fromEnvironment));
            return ExitCodes.BadInput;
        }
        return parsed.Invoke(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false });
    }

    /// <summary>
    /// The one line a command line that does not parse gets: every error (a value from DISTSGD_* named as such:
    /// the user did not type it), then where the flags are described.
    /// </summary>
    private static string ParseErrorLine(ParseResult parsed, Dictionary<string, string> fromEnvironment)
    {
        var messages = parsed.Errors.Select(parseError =>
        {
            var source = fromEnvironment.FirstOrDefault(f => parseError.Message.Contains(f.Key, StringComparison.Ordinal));
            string message = string.Join(' ', parseError.Message.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries));
            return source.Key is null ? message : $"{message} (from the environment variable {source.Value})";
        }).Distinct();
        return $"error: {string.Join("; ", messages)} (see 'distsgd {string.Join(' ', CommandPath(parsed))} --help' for the flags and what they accept)";
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
        root.Add(BenchCommand(output, error, cancellation));
        root.Add(PredictCommand(output, error));
        root.Add(NodeCommand(output, error, cancellation));
        root.Add(ExportCommand(output, error));
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

    // ---- the run's flags: train, and every node of a multi-machine run ---------------------------

    /// <summary>The flags that describe a run (mode, model, data, hyper-parameters, results); shared by train and node.</summary>
    private sealed class TrainFlags
    {
        public readonly Option<string> Mode = Choice("--mode", RunMode.Centralized.Name(), RunModes.Names,
            "How to train: centralized (a master and --workers worker nodes), decentralized (--workers equal peer nodes " +
            "all-gathering gradients over DistributedPubSub), sequential (one process, one model; train only).");
        public readonly Option<int> Workers = new("--workers")
        {
            Description = "Worker nodes (centralized) or peer nodes (decentralized): of the simulated cluster (train), or to wait for before the run starts (node).",
            DefaultValueFactory = _ => 2,
        };
        public readonly Option<int> BackupWorkers = new("--backup-workers")
        {
            Description = "Centralized: each step finishes with the first (workers − this) gradients; the late ones are dropped and counted " +
                          "(late_gradient), so one slow worker does not hold every step back. 0 = every step waits for every worker.",
            DefaultValueFactory = _ => 0,
        };
        public readonly Option<string> Balance = Choice("--balance", "off", ["off", "speed"],
            "Centralized: speed = from the second epoch on, each worker's batch follows its measured throughput (samples per compute " +
            "second of the epoch before), the global batch kept; off = every worker takes --batch-size.");
        public readonly Option<string?> Config = new("--config") { Description = "HOCON file of overrides for every node (see hocon/local.conf and hocon/node.conf)." };
        public readonly Option<string?> Transport = new("--transport")
        {
            Description = "What carries θ and the gradients between nodes in the distributed modes: akka (inside Akka messages, the reference path) " +
                          "or direct (TCP connections between the nodes; Akka keeps membership and the step protocol). Default: distsgd.transport " +
                          "of --config, else direct. [akka|direct]",
        };
        public readonly Option<string?> Wire = new("--wire")
        {
            Description = "How the gradients travel between nodes in the distributed modes (needs the direct transport): fp32 (as computed), bf16 " +
                          "(bfloat16, half the bytes) or fp16 (IEEE half with a loss scale, distsgd.fp16-scale). Default: distsgd.wire, else fp32. [fp32|bf16|fp16]",
        };
        public readonly Option<string?> Compress = new("--compress")
        {
            Description = "none, or topk:F: each node sends only the fraction F of its accumulated values of largest magnitude as (index, value) " +
                          "entries and keeps what it did not send for its next step; it applies the momentum itself (momentum correction), e.g. topk:0.01. " +
                          "topk-ef:F: the same with the gradients accumulated and the momentum applied to the average. Default: distsgd.compress, else none.",
        };
        public readonly Option<int?> SyncEvery = new("--sync-every")
        {
            Description = "Local SGD (decentralized mode): every peer takes this many steps on its own shard with its own optimizer, then the " +
                          "models are averaged, weighted by samples; an epoch's last step always averages. 1 = gradient averaging every step. " +
                          "Default: distsgd.sync-every, else 1.",
        };
        public readonly Option<string?> Collective = new("--collective")
        {
            Description = "How the decentralized peers combine their gradients each step: allgather (every peer sends its whole gradient to every other), " +
                          "ring or pairwise (all-reduce on the direct transport: 2·(N−1)/N of a gradient sent per peer instead of N−1), or auto " +
                          "(the cost model's fastest for the peers, the model and --link-rate: allgather for 2 peers and pairwise for 3 or more with the default MLP on direct; " +
                          "allgather on akka). Default: distsgd.collective of --config, else auto. " +
                          "[auto|allgather|ring|pairwise]",
        };
        public readonly Option<string?> LinkRate = new("--link-rate")
        {
            Description = "Each node's network link, each way, for --collective auto's choice (the cost model prices every collective for it) and for the ring's parts (whole chunks on a fast link, 64 KiB segments on a slow one): " +
                          "none (this machine's loopback) or a rate such as 100mbit, 1gbit, 10gbit. Every peer must give the same. " +
                          "Default: distsgd.link-rate, else none.",
        };
        public readonly Option<string?> TlsCert = new("--tls-cert")
        {
            Description = "TLS between the nodes (Akka.Remote and the data plane, mutual authentication): a PKCS#12 file with this node's key and " +
                          "certificate and the CA certificate every node's certificate must chain to (scripts/make-certs.sh makes them).",
        };
        public readonly Option<string?> TlsPassword = new("--tls-password")
        {
            Description = "Password of --tls-cert; better --tls-password-file or the DISTSGD_TLS_PASSWORD variable (a flag shows in the process list).",
        };
        public readonly Option<string?> TlsPasswordFile = new("--tls-password-file") { Description = "A file whose first line is the password of --tls-cert." };
        public readonly Option<int> ThreadsPerWorker = new("--threads-per-worker") { Description = "Matrix-kernel threads of each worker or peer.", DefaultValueFactory = _ => 1 };
        public readonly DataFlags Data = new();
        public readonly Option<string> Model = Choice("--model", "auto", ["auto", "linear", "softmax", "mlp"],
            "Model: linear regression, softmax (logistic) regression or an MLP; auto = mlp for classes, linear for regression.");
        public readonly Option<int[]> Hidden = new("--hidden")
        {
            Description = "MLP hidden layer sizes, comma-separated.",
            DefaultValueFactory = _ => [256, 128],
            CustomParser = ParseHidden,
        };
        public readonly Option<string> Activation = Choice("--activation", "relu", ["relu", "tanh", "sigmoid"], "MLP hidden-layer nonlinearity.");
        public readonly Option<int> Epochs = new("--epochs") { Description = "Maximum number of epochs.", DefaultValueFactory = _ => 10 };
        public readonly Option<int> BatchSize = new("--batch-size") { Description = "Samples per SGD step (per worker in the distributed modes: the global batch is workers × this).", DefaultValueFactory = _ => 64 };
        public readonly Option<double> Lr = new("--lr") { Description = "Base learning rate η.", DefaultValueFactory = _ => 0.05 };
        public readonly Option<double> Momentum = new("--momentum") { Description = "Momentum μ in [0, 1).", DefaultValueFactory = _ => 0.9 };
        public readonly Option<double> WeightDecay = new("--weight-decay") { Description = "L2 weight decay λ ≥ 0.", DefaultValueFactory = _ => 0.0 };
        public readonly Option<string> Schedule = Choice("--schedule", "cosine", ["cosine", "step", "constant"],
            "Learning-rate schedule: cosine (anneal to 0 over the run), step (×0.1 at 1/3 and 2/3), constant.");
        public readonly Option<int> Seed = new("--seed") { Description = "Seed of the initialisation, the shuffles and the splits.", DefaultValueFactory = _ => 1 };
        public readonly Option<int> Patience = new("--patience") { Description = "Stop after this many epochs without the training loss improving by --min-delta; 0 = off.", DefaultValueFactory = _ => 3 };
        public readonly Option<double> MinDelta = new("--min-delta") { Description = "Smallest decrease of the loss that counts as an improvement.", DefaultValueFactory = _ => 1e-4 };
        public readonly Option<string> Normalize = Choice("--normalize", "auto", ["auto", "none", "scale", "standardize"],
            "Input preprocessing: scale (pixels to [0,1]), standardize (training-set mean/std), auto = scale for images, standardize otherwise.");
        public readonly Option<int> Threads = new("--threads") { Description = "Threads for the matrix kernels; 0 = all cores.", DefaultValueFactory = _ => 0 };
        public readonly Option<string?> Out = new("--out") { Description = "Results folder (written by the node that ends the run); default runs/<timestamp>-<mode>." };
        public readonly Option<bool> Quiet = new("--quiet") { Description = "Print only the final line." };
        public readonly Option<string?> Resume = new("--resume")
        {
            Description = "Continue the run whose results (or checkpoints) folder this is, from its newest valid checkpoint, with the same flags and data; " +
                          "default --out: that folder. A damaged checkpoint is reported and skipped for the one before.",
        };
        public readonly Option<long?> CheckpointEverySteps = new("--checkpoint-every-steps") { Description = "Write a checkpoint to <out>/checkpoints every this many steps; 0 = off. Default: distsgd.checkpoint.every-steps (0)." };
        public readonly Option<double?> CheckpointEverySeconds = new("--checkpoint-every-seconds") { Description = "Write a checkpoint when this many seconds have passed since the last; 0 = off. Default: distsgd.checkpoint.every-seconds (60); epoch ends: distsgd.checkpoint.at-epoch-end (on)." };
        public readonly Option<int?> MetricsPort = new("--metrics-port")
        {
            Description = "Serve this process's live metrics (steps, samples/s, loss, compute and communication seconds, bytes, dropped messages, " +
                          "members up) for Prometheus at http://HOST:PORT/metrics (OpenTelemetry); HOST is 127.0.0.1 for train, --host for node.",
        };
        public readonly Option<string?> Trace = new("--trace")
        {
            Description = "Write the steps' timeline to this file as a Chrome trace (ui.perfetto.dev, chrome://tracing): one track per node, each " +
                          "step's compute, wait, send, receive, update, checkpoint and evaluation spans, membership events; the newest " +
                          "distsgd.trace-max-spans spans per node. node: this node's track, on the reference node's clock (merge the nodes' files " +
                          "with jq -s add); bench: each distributed configuration's, in its run folder.",
        };
        public readonly Option<bool> Json = new("--json") { Description = "Print one JSON object per epoch (and one at the end) instead of text, for scripts; a node that does not end the run prints only the one at the end." };

        public TrainFlags()
        {
            Epochs.Validators.Add(r => Check<int>(r, v => v >= 1, "at least 1 epoch"));
            BatchSize.Validators.Add(r => Check<int>(r, v => v >= 1, "a batch size of at least 1"));
            Lr.Validators.Add(r => Check<double>(r, v => v > 0 && double.IsFinite(v), "a finite learning rate > 0"));
            Momentum.Validators.Add(r => Check<double>(r, v => v is >= 0 and < 1, "a momentum in [0, 1)"));
            WeightDecay.Validators.Add(r => Check<double>(r, v => v >= 0 && double.IsFinite(v), "a finite weight decay ≥ 0"));
            Patience.Validators.Add(r => Check<int>(r, v => v >= 0, "a patience ≥ 0 (0 = off)"));
            MinDelta.Validators.Add(r => Check<double>(r, v => v >= 0 && double.IsFinite(v), "a finite min-delta ≥ 0"));
            Threads.Validators.Add(r => Check<int>(r, v => v is >= 0 and <= 1024, "a thread count from 0 (all cores) to 1024"));
            Workers.Validators.Add(r => Check<int>(r, v => v is >= 1 and <= 64, "from 1 to 64 workers"));
            BackupWorkers.Validators.Add(r => Check<int>(r, v => v is >= 0 and <= 63, "from 0 (off) to 63 backup workers"));
            ThreadsPerWorker.Validators.Add(r => Check<int>(r, v => v is >= 1 and <= 1024, "a thread count from 1 to 1024"));
            Transport.Validators.Add(r => Check<string?>(r, v => v is null or "akka" or "direct", "one of akka, direct"));
            SyncEvery.Validators.Add(r => Check<int?>(r, v => v is null or >= 1 and <= 1_000_000, "a number of steps from 1 (gradient averaging) to 1000000"));
            Wire.Validators.Add(r => Check<string?>(r, v => v is null || ShareEncoding.ParsePrecision(v, out _) is not null, "one of fp32, bf16, fp16"));
            Compress.Validators.Add(r => Check<string?>(r, v => v is null || ShareEncoding.ParseCompress(v, out _) is not null,
                                                        "none, topk:F or topk-ef:F with 0 < F <= 1, the fraction of values kept (e.g. topk:0.01)"));
            LinkRate.Validators.Add(r => Check<string?>(r, v => v is null || DistSgd.Numerics.Cost.LinkRate.TryParse(v, out _),
                                                        "none or a rate such as 100mbit, 1gbit, 2.5gbit"));
            Collective.Validators.Add(r => Check<string?>(r, v => v is null or "auto" or "allgather" or "ring" or "pairwise", "one of auto, allgather, ring, pairwise"));
            CheckpointEverySteps.Validators.Add(r => Check<long?>(r, v => v is null or >= 0, "a number of steps ≥ 0 (0 = off)"));
            MetricsPort.Validators.Add(r => Check<int?>(r, v => v is null or (>= 1 and <= 65535), "a port from 1 to 65535"));
            CheckpointEverySeconds.Validators.Add(r => Check<double?>(r, v => v is null || (v >= 0 && double.IsFinite(v.Value)), "a number of seconds ≥ 0 (0 = off)"));
        }

        public void AddTo(Command command)
        {
            foreach (var option in new Option[] { Mode, Workers, BackupWorkers, Balance, Transport, Collective, LinkRate, Wire, Compress, SyncEvery, TlsCert, TlsPassword, TlsPasswordFile, ThreadsPerWorker, Config, Model, Hidden, Activation, Epochs, BatchSize, Lr, Momentum, WeightDecay, Schedule, Seed, Patience, MinDelta, Normalize, Threads, Out, Quiet, Resume, CheckpointEverySteps, CheckpointEverySeconds, Json, MetricsPort, Trace })
                command.Add(option);
            Data.AddTo(command);
        }

        public TrainSettings Read(ParseResult p)
        {
            int runSeed = p.GetValue(Seed);
            var dataRequest = Data.Read(p, runSeed);
            string modelName = p.GetValue(Model)!;
            if (modelName == "auto")
                modelName = dataRequest.Task == LearningTask.Regression || (dataRequest.Path is null && dataRequest.Dataset == DataSources.Linear) ? "linear" : "mlp";
            string modeName = p.GetValue(Mode)!;
            return new TrainSettings
            {
                Mode = RunModes.Parse(modeName),
                Data = dataRequest,
                Model = Enum.Parse<ModelKind>(modelName, ignoreCase: true),
                Hidden = p.GetValue(Hidden)!,
                Activation = Enum.Parse<Activation>(p.GetValue(Activation)!, ignoreCase: true),
                Epochs = p.GetValue(Epochs),
                BatchSize = p.GetValue(BatchSize),
                LearningRate = p.GetValue(Lr),
                Momentum = p.GetValue(Momentum),
                WeightDecay = p.GetValue(WeightDecay),
                Schedule = p.GetValue(Schedule)!,
                Seed = runSeed,
                Patience = p.GetValue(Patience),
                MinDelta = p.GetValue(MinDelta),
                Normalize = p.GetValue(Normalize)!,
                Threads = p.GetValue(Threads),
                // A resumed run goes on writing where it was resumed from, unless told otherwise.
                Out = p.GetValue(Out) ?? (p.GetValue(Resume) is { } resumed ? RunCheckpoints.ResultsFolderOf(resumed) : Path.Combine("runs", $"{DateTime.Now:yyyyMMdd-HHmmss}-{modeName}")),
                Quiet = p.GetValue(Quiet),
                Json = p.GetValue(Json),
                ComputeNodes = p.GetValue(Workers),
                BackupWorkers = p.GetValue(BackupWorkers),
                BalanceBySpeed = p.GetValue(Balance) == "speed",
                ThreadsPerComputeNode = p.GetValue(ThreadsPerWorker),
                ConfigFile = p.GetValue(Config),
                Transport = p.GetValue(Transport),
                Wire = p.GetValue(Wire),
                Compress = p.GetValue(Compress),
                SyncEvery = p.GetValue(SyncEvery),
                Collective = p.GetValue(Collective),
                LinkRate = p.GetValue(LinkRate),
                Resume = p.GetValue(Resume),
                CheckpointEverySteps = p.GetValue(CheckpointEverySteps),
                CheckpointEverySeconds = p.GetValue(CheckpointEverySeconds),
                Tls = new TlsFlags(p.GetValue(TlsCert), p.GetValue(TlsPassword), p.GetValue(TlsPasswordFile)),
                MetricsPort = p.GetValue(MetricsPort),
                TraceFile = p.GetValue(Trace),
            };
        }
    }

    // ---- train ------------------------------------------------------------------------------------

    private static Command TrainCommand(TextWriter output, TextWriter error, CancellationToken cancellation)
    {
        var command = new Command("train", "Train a model and write it, its metrics and a summary to a results folder.");
        var flags = new TrainFlags();
        flags.AddTo(command);
        command.SetAction(p =>
        {
            var settings = flags.Read(p);
            return Guarded(error, () => TrainRun.Execute(settings, output, cancellation, RunDisplay.IsInteractive(output)));
        });
        return command;
    }

    // ---- bench ------------------------------------------------------------------------------------

    private static Command BenchCommand(TextWriter output, TextWriter error, CancellationToken cancellation)
    {
        var command = new Command("bench",
            "Train sequential, centralized and decentralized (on each transport and worker count) on the same data, seed and global batch, " +
            "and write a comparison table (markdown, CSV) and plots to the results folder. The train flags set the run; --batch-size is " +
            "the global batch (each worker takes its share); --collective is the decentralized direct rows'; --mode, --workers, --transport and --json are not used.");
        var flags = new TrainFlags();
        flags.AddTo(command);
        var counts = new Option<int[]>("--worker-counts")
        {
            Description = "Worker (and peer) counts to compare, comma-separated.",
            DefaultValueFactory = _ => [1, 2, 4],
            CustomParser = r => ParseCounts(r, "--worker-counts", 1, 64),
        };
        var repeat = new Option<int>("--repeat") { Description = "Runs of every configuration; the table reports medians.", DefaultValueFactory = _ => 1 };
        var transports = Choice("--transports", "akka,direct", ["akka,direct", "akka", "direct", "direct,akka"], "Transports of the distributed modes, comma-separated.");
        repeat.Validators.Add(r => Check<int>(r, v => v is >= 1 and <= 100, "from 1 to 100 repeats"));
        // Internal: the child process of one bench run (BenchChildRuns) names that run's results folder.
        var only = new Option<string?>(BenchChildRuns.OnlyOption) { Hidden = true };
        command.Add(counts);
        command.Add(repeat);
        command.Add(transports);
        command.Add(only);
        command.SetAction(p =>
        {
            var settings = flags.Read(p);
            if (p.GetValue(flags.Out) is null)
                settings = settings with { Out = Path.Combine("runs", $"{DateTime.Now:yyyyMMdd-HHmmss}-bench") };
            var bench = new BenchSettings(settings, p.GetValue(counts)!, p.GetValue(repeat), p.GetValue(transports)!.Split(','));
            if (p.GetValue(only) is { } run)
                return Guarded(error, () => BenchChildRuns.RunOne(bench, run, cancellation));
            // From the distsgd program every configuration runs in a child process (memory: see BenchChildRuns);
            // in a test host, where there is no distsgd to start, in this process.
            var measure = BenchChildRuns.CanStartChildren ? BenchChildRuns.Runner(bench.Base.Out, cancellation) : null;
            return Guarded(error, () => BenchRun.Execute(bench, output, cancellation, measure));
        });
        command.Add(CostCommand(output, error));
        command.Add(CalibrateCommand(output, error, cancellation));
        command.Add(LinkCommand(output, error, cancellation));
        return command;
    }

    private static Command CostCommand(TextWriter output, TextWriter error)
    {
        var command = new Command("cost",
            "Print the α–β cost model's predicted samples/s and ms per step of every mode and collective, for each node count and link rate " +
            "(constants: --constants, else those measured on this project's machine).");
        var nodes = new Option<int[]>("--nodes")
        {
            Description = "Node counts N (workers, or peers), comma-separated.",
            DefaultValueFactory = _ => [2, 4, 8, 16, 32, 64],
            CustomParser = r => ParseCounts(r, "--nodes", 1, 4096),
        };
        var rates = new Option<LinkRate[]>("--rate")
        {
            Description = "Each node's link rate, comma-separated: none (loopback), 100mbit, 1gbit, 25gbit, ….",
            DefaultValueFactory = _ => [LinkRate.Parse("1gbit"), LinkRate.Parse("10gbit"), LinkRate.Parse("25gbit")],
            CustomParser = ParseRates,
        };
        var constants = new Option<string?>("--constants") { Description = "A JSON file written by 'distsgd bench calibrate --out'." };
        var sharedCores = new Option<int>("--shared-cores")
        {
            Description = "Cores all nodes share (every node on one machine, as on scripts/emulated-cluster.sh: N nodes' gradients take ⌈N/K⌉ turns of them); 0 = a machine per node.",
            DefaultValueFactory = _ => 0,
        };
        sharedCores.Validators.Add(r => Check<int>(r, v => v is >= 0 and <= 4096, "a core count from 0 (a machine per node) to 4096"));
        var csv = new Option<bool>("--csv") { Description = $"Print CSV ({CostTable.CsvHeader}) instead of markdown tables." };
        foreach (var option in new Option[] { nodes, rates, constants, sharedCores, csv })
            command.Add(option);
        command.SetAction(p => Guarded(error, () =>
        {
            var measured = p.GetValue(constants) is { } path ? CostConstants.FromJson(File.ReadAllText(path), path) : CostConstants.Measured;
            var table = p.GetValue(csv) ? (Func<CostConstants, IReadOnlyList<int>, IReadOnlyList<LinkRate>, int, string>)CostTable.Csv : CostTable.Markdown;
            output.Write(table(measured, p.GetValue(nodes)!, p.GetValue(rates)!, p.GetValue(sharedCores)));
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Command CalibrateCommand(TextWriter output, TextWriter error, CancellationToken cancellation)
    {
        var command = new Command("calibrate",
            "Measure the cost model's constants on this machine (compute per step, update, sum, and α, β of the data plane over loopback) " +
            "for an MLP on 784 inputs and 10 classes, and print them as JSON ('bench cost --constants' reads them).");
        var hidden = new Option<int[]>("--hidden") { Description = "MLP hidden layer sizes, comma-separated.", DefaultValueFactory = _ => [256, 128], CustomParser = ParseHidden };
        var batch = new Option<int>("--batch-size") { Description = "Samples of one node's gradient per step (b).", DefaultValueFactory = _ => 64 };
        var repeat = new Option<int>("--repeat") { Description = "Timed repetitions of each measurement (medians are kept).", DefaultValueFactory = _ => 200 };
        var outFile = new Option<string?>("--out") { Description = "Also write the JSON to this file." };
        batch.Validators.Add(r => Check<int>(r, v => v is >= 1 and <= 65_536, "a batch size from 1 to 65536"));
        repeat.Validators.Add(r => Check<int>(r, v => v is >= 5 and <= 100_000, "from 5 to 100000 repetitions"));
        foreach (var option in new Option[] { hidden, batch, repeat, outFile })
            command.Add(option);
        command.SetAction(p => Guarded(error, () =>
        {
            var spec = new ModelSpec(ModelKind.Mlp, 784, 10, p.GetValue(hidden));
            string json = CostCalibration.Measure(spec, p.GetValue(batch), p.GetValue(repeat), cancellation).ToJson();
            if (p.GetValue(outFile) is { } path)
                File.WriteAllText(path, json + Environment.NewLine);
            output.WriteLine(json);
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Command LinkCommand(TextWriter output, TextWriter error, CancellationToken cancellation)
    {
        var command = new Command("link",
            "Measure α (per message) and β (per byte) of the TCP path to another host: run '--listen ADDRESS:PORT' there and '--to ADDRESS:PORT' here " +
            "(the data plane's socket settings; a 64-byte message and a --bytes payload echoed in turn).");
        var listen = new Option<string?>("--listen") { Description = "Echo on ADDRESS:PORT for --connections connections, then exit." };
        var to = new Option<string?>("--to") { Description = "Measure the path to the echo server at ADDRESS:PORT." };
        var bytes = new Option<int>("--bytes") { Description = "Payload bytes of the large message (default: the default MLP's gradient).", DefaultValueFactory = _ => 940_584 };
        var repeat = new Option<int>("--repeat") { Description = "Timed round trips of each size (medians are kept).", DefaultValueFactory = _ => 20 };
        var connections = new Option<int>("--connections") { Description = "--listen: connections to serve before exiting.", DefaultValueFactory = _ => 1 };
        bytes.Validators.Add(r => Check<int>(r, v => v is > LinkProbe.SmallBytes and <= 1 << 30, $"from {LinkProbe.SmallBytes + 1} to {1 << 30} bytes"));
        repeat.Validators.Add(r => Check<int>(r, v => v is >= 1 and <= 100_000, "from 1 to 100000 round trips"));
        connections.Validators.Add(r => Check<int>(r, v => v is >= 1 and <= 1000, "from 1 to 1000 connections"));
        foreach (var option in new Option[] { listen, to, bytes, repeat, connections })
            command.Add(option);
        command.SetAction(p => Guarded(error, () =>
        {
            if ((p.GetValue(listen) is null) == (p.GetValue(to) is null))
                throw new UsageException("bench link: expected exactly one of --listen ADDRESS:PORT and --to ADDRESS:PORT");
            if (p.GetValue(listen) is { } here)
            {
                LinkProbe.Serve(Endpoint("--listen", here), p.GetValue(connections), cancellation,
                                e => output.WriteLine($"bench link: echoing on {e}"));
                return ExitCodes.Ok;
            }
            var m = LinkProbe.Measure(Endpoint("--to", p.GetValue(to)!), p.GetValue(bytes), p.GetValue(repeat), TimeSpan.FromSeconds(30));
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"bench link: alpha {m.MessageSeconds * 1e6:0.0} us, beta {m.SecondsPerByte * 1e9:0.0000} ns/byte, payload rate {m.BitsPerSecond / 1e6:0.0} Mbit/s ({m.PayloadBytes} bytes)"));
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static System.Net.IPEndPoint Endpoint(string flag, string text) =>
        System.Net.IPEndPoint.TryParse(text, out var endpoint) && endpoint.Port is > 0 and <= 65535
            ? endpoint
            : throw new UsageException($"{flag}: expected ADDRESS:PORT with an IP address and a port from 1 to 65535 (e.g. 10.77.0.1:5000), found '{text}'");

    private static LinkRate[] ParseRates(ArgumentResult result)
    {
        string text = result.Tokens.Count > 0 ? result.Tokens[^1].Value : "";
        var rates = new List<LinkRate>();
        foreach (string part in text.Split(',', StringSplitOptions.TrimEntries))
        {
            if (!LinkRate.TryParse(part, out var rate))
            {
                result.AddError($"--rate: expected comma-separated rates such as none, 100mbit, 1gbit, 2.5gbit, found '{text}'");
                return [];
            }
            rates.Add(rate);
        }
        return rates.ToArray();
    }

    // ---- node -------------------------------------------------------------------------------------

    /// <summary>The prefix of the environment variables that stand in for node flags: --seed-nodes = DISTSGD_SEED_NODES.</summary>
    public const string EnvironmentPrefix = "DISTSGD_";

    /// <summary>The environment variable that stands in for <paramref name="flag"/> (--seed-nodes → DISTSGD_SEED_NODES).</summary>
    public static string EnvironmentVariableFor(string flag) =>
        EnvironmentPrefix + flag.TrimStart('-').Replace('-', '_').ToUpperInvariant();

    private static Command NodeCommand(TextWriter output, TextWriter error, CancellationToken cancellation)
    {
        var command = new Command("node",
            "Start one node of a multi-machine cluster and take part in the run described by the train flags (the same on every node); " +
            $"every flag can also be given as an environment variable ({EnvironmentVariableFor("--seed-nodes")} for --seed-nodes; flags win).");
        var host = new Option<string>("--host") { Description = "Address to bind Akka remoting to (0.0.0.0 = every interface; then give --public-host).", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "Akka remoting port (open it in the firewall); 0 picks a free one.", DefaultValueFactory = _ => 4053 };
        var publicHost = new Option<string?>("--public-host") { Description = "The address other nodes reach this one at (NAT, containers); default --host." };
        var seedNodes = new Option<string?>("--seed-nodes") { Description = "Comma-separated seed nodes, host:port or akka.tcp://distsgd@host:port, the same list on every node; none = this node starts a new cluster." };
        var roles = new Option<string>("--roles")
        {
            Description = "Comma-separated roles of this node: master, worker (centralized; a node may hold both) or peer (decentralized). Default: worker, or peer for --mode decentralized.",
            DefaultValueFactory = _ => "",
        };
        var joinTimeout = new Option<double?>("--join-timeout") { Description = "Seconds to try joining the cluster (through the seed nodes or the bootstrap) before giving up (exit 2); default distsgd.start-timeout." };
        var discovery = Choice("--discovery", ClusterDiscovery.SeedNodes.Name(), ClusterDiscoveries.Names,
            "How the node finds the cluster: seed-nodes (--seed-nodes, the default), or Akka.Management's cluster bootstrap with " +
            "config (--discovery-endpoints) or kubernetes (the pods --kubernetes-selector names) discovery.");
        var discoveryEndpoints = new Option<string?>("--discovery-endpoints")
        {
            Description = "--discovery config: the contact points' Akka.Management endpoints, host:port (each node's --public-host or --host and --management-port), comma-separated, the same list on every node.",
        };
        var managementPort = new Option<int?>("--management-port") { Description = $"--discovery config|kubernetes: the port of this node's Akka.Management HTTP endpoint, which the bootstrap asks (default {DiscoverySettings.DefaultManagementPort})." };
        var requiredContactPoints = new Option<int?>("--required-contact-points")
        {
            Description = "--discovery config|kubernetes: contact points that must be found before the lowest one starts a new cluster " +
                          $"(default: every --discovery-endpoints entry; {DiscoverySettings.DefaultKubernetesContactPoints} for kubernetes).",
        };
        var kubernetesSelector = new Option<string?>("--kubernetes-selector") { Description = $"--discovery kubernetes: the label selector of the node pods (default {DiscoverySettings.DefaultKubernetesSelector})." };
        var kubernetesNamespace = new Option<string?>("--kubernetes-namespace") { Description = "--discovery kubernetes: the namespace of the node pods (default: this pod's own)." };
        var runId = new Option<string>("--run-id") { Description = "The run's id, the same on every node (a decentralized run's topic is named after it).", DefaultValueFactory = _ => "distsgd" };
        var printConfig = new Option<bool>("--print-config") { Description = "Print the effective configuration (distsgd.* and the Akka remoting and cluster keys) and exit." };
        port.Validators.Add(r => Check<int>(r, v => v is >= 0 and <= 65535, "a port from 0 to 65535"));
        roles.Validators.Add(r => Check<string>(r, v => v.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).All(NodeRoles.Names.Contains),
                                                  $"comma-separated roles among {string.Join(", ", NodeRoles.Names)}"));
        joinTimeout.Validators.Add(r => Check<double?>(r, v => v is > 0 and <= 86_400, "a number of seconds > 0"));
        runId.Validators.Add(r => Check<string>(r, v => v.Length is > 0 and <= 64 && v.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'),
                                                "1 to 64 letters, digits, '-' or '_'"));
        foreach (var option in new Option[] { host, port, publicHost, seedNodes, discovery, discoveryEndpoints, managementPort, requiredContactPoints,
                                              kubernetesSelector, kubernetesNamespace, roles, joinTimeout, runId, printConfig })
            command.Add(option);
        var flags = new TrainFlags();
        flags.AddTo(command);

        command.SetAction(p =>
        {
            var settings = flags.Read(p);
            string roleText = p.GetValue(roles)!;
            var roleList = roleText.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Distinct()
                                   .Select(NodeRoles.Parse).ToList();
            if (roleList.Count == 0)
                roleList.Add(settings.Mode == RunMode.Decentralized ? NodeRole.Peer : NodeRole.Worker);
            var seedList = (p.GetValue(seedNodes) ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            string? publicHostName = p.GetValue(publicHost) is { Length: > 0 } h ? h : null;
            return Guarded(error, () => NodeRun.Execute(new NodeSettings
            {
                Host = p.GetValue(host)!,
                Port = p.GetValue(port),
                PublicHost = publicHostName,
                SeedNodes = seedList,
                Discovery = DiscoverySettings.Create(ClusterDiscoveries.Parse(p.GetValue(discovery)!), seedList.Length > 0, p.GetValue(discoveryEndpoints),
                                                     p.GetValue(managementPort), p.GetValue(requiredContactPoints), p.GetValue(kubernetesSelector),
                                                     p.GetValue(kubernetesNamespace), p.GetValue(port), p.GetValue(host)!, publicHostName),
                Roles = roleList,
                JoinTimeout = p.GetValue(joinTimeout) is { } seconds ? TimeSpan.FromSeconds(seconds) : null,
                RunId = p.GetValue(runId)!,
                PrintConfig = p.GetValue(printConfig),
            }, settings, output, cancellation));
        });
        return command;
    }

    /// <summary>
    /// For `node`: every flag not on the command line but set in its environment variable is added to the arguments
    /// (flags win). Returns the arguments and which flags came from the environment, to name them in errors.
    /// </summary>
    private static (string[] Args, Dictionary<string, string> FromEnvironment) AddEnvironment(Command node, string[] args)
    {
        var fromEnvironment = new Dictionary<string, string>(StringComparer.Ordinal);
        var given = new HashSet<string>(args.Select(a => a.Split('=', 2)[0]), StringComparer.Ordinal);
        var added = new List<string>();
        foreach (var option in node.Options)
        {
            if (option.Name is "--help" or "-h" or "--version" || given.Contains(option.Name) || option.Aliases.Any(given.Contains))
                continue;
            string variable = EnvironmentVariableFor(option.Name);
            string? value = Environment.GetEnvironmentVariable(variable);
            if (string.IsNullOrEmpty(value))
                continue;
            fromEnvironment[option.Name] = variable;
            if (option is Option<bool>)
            {
                if (value.Trim().ToLowerInvariant() is "1" or "true" or "yes" or "on")
                    added.Add(option.Name);
                continue;
            }
            added.Add(option.Name);
            added.Add(value);
        }
        return ([.. args, .. added], fromEnvironment);
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
            var (_, saved, raw, evaluation) = ModelOnData.Load(path, data.Read(p, seed: 1));
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

    // ---- predict ----------------------------------------------------------------------------------

    private static Command PredictCommand(TextWriter output, TextWriter error)
    {
        var command = new Command("predict",
            "Load a model file and print its prediction for each sample of a data set (class and probabilities, or the value of a regression), " +
            "the accuracy against the data's labels and a confusion matrix. The data is read as eval reads it and scaled as the model file says.");
        var modelPath = new Option<string>("--model") { Description = "The model file written by train (model.bin).", Required = true };
        var limit = new Option<int>("--limit") { Description = "Samples to list one by one; 0 = all (the accuracy and the matrix cover every sample).", DefaultValueFactory = _ => 10 };
        limit.Validators.Add(r => Check<int>(r, v => v >= 0, "a count ≥ 0 (0 = all)"));
        var data = new DataFlags();
        command.Add(modelPath);
        command.Add(limit);
        data.AddTo(command);
        command.SetAction(p => Guarded(error, () =>
            PredictRun.Execute(ModelOnData.Load(p.GetValue(modelPath)!, data.Read(p, seed: 1)), p.GetValue(limit), output)));
        return command;
    }

    // ---- export -----------------------------------------------------------------------------------

    private static Command ExportCommand(TextWriter output, TextWriter error)
    {
        var command = new Command("export",
            "Write a model file in a format other programs read: ONNX (ONNX Runtime, ML.NET, Python, browsers). The graph takes the raw " +
            "features and holds the run's preprocessing (pixel scaling, standardisation); it outputs the class probabilities and label, " +
            "or the regression's prediction, as predict does.");
        var modelPath = new Option<string>("--model") { Description = "The model file written by train (model.bin).", Required = true };
        var format = Choice("--format", "onnx", ModelExport.FormatNames, "The format to write.");
        var outPath = new Option<string?>("--out") { Description = "The file to write; default: the model file's path with the format's extension (model.onnx)." };
        command.Add(modelPath);
        command.Add(format);
        command.Add(outPath);
        command.SetAction(p => Guarded(error, () =>
            ModelExport.Execute(p.GetValue(modelPath)!, Enum.Parse<ExportFormat>(p.GetValue(format)!, ignoreCase: true), p.GetValue(outPath), output)));
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
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A results file that cannot be written mid-run (disk full, folder removed): the run failed, said in one line.
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

    private static int[] ParseCounts(ArgumentResult result, string flag, int min, int max)
    {
        string text = result.Tokens.Count > 0 ? result.Tokens[^1].Value : "";
        var counts = new List<int>();
        foreach (string part in text.Split(',', StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(part, NumberStyles.Integer, CultureInfo.InvariantCulture, out int count) || count < min || count > max)
            {
                result.AddError($"{flag}: expected comma-separated counts from {min} to {max} (e.g. 1,2,4), found '{text}'");
                return [];
            }
            counts.Add(count);
        }
        return counts.Distinct().ToArray();
    }

    private static int[] ParseHidden(ArgumentResult result)
    {
        // Given twice (a script's default, then an override), the last one wins, as for every other flag.
        string text = result.Tokens.Count > 0 ? result.Tokens[^1].Value : "";
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
