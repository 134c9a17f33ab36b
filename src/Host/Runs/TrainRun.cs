using System.Diagnostics;
using System.Globalization;
using DistSgd.Numerics.Compression;
using DistSgd.Numerics.Data;
using DistSgd.Numerics.Models;
using DistSgd.Numerics.Optim;
using DistSgd.Numerics.Tensors;
using DistSgd.Numerics.Training;
using DistSgd.Actors.Steps;
using DistSgd.Host.Display;
using DistSgd.Host.Results;
using DistSgd.Host.Settings;

namespace DistSgd.Host.Runs;

/// <summary>Runs `distsgd train`: loads and prepares the data, trains, writes the results folder.</summary>
public static class TrainRun
{
    /// <param name="interactive">The console is a terminal: show the live display (unless --quiet or --json).</param>
    public static int Execute(TrainSettings settings, TextWriter console, CancellationToken cancellation = default, bool interactive = false)
    {
        var outcome = Train(settings, RunDisplay.Create(settings, console, interactive), cancellation);
        return outcome.Result.StopReason == StopReason.Cancelled ? ExitCodes.TrainingFailed : ExitCodes.Ok;
    }

    /// <summary>Prepares the data and model, trains (sequential or on the simulated cluster) and writes the results folder.</summary>
    public static TrainOutcome Train(TrainSettings settings, RunDisplay display, CancellationToken cancellation = default)
    {
        var clock = Stopwatch.StartNew();
        var output = display.Output;
        settings.Tls.Validate(settings.Mode);
        // A bad --config file or distsgd.* value fails here, naming its key, before the data is read or a folder made.
        var config = EffectiveConfig.Load(settings);
        PortChecks.CheckSimulatedCluster(settings, config.DistSgd);
        InputChecks.CheckResultsFolder(settings.Out);
        InputChecks.CheckStragglerFlags(settings);
        RunTrace.Check(settings.TraceFile);
        if (settings.TraceFile is not null && !settings.Mode.IsDistributed())
            throw new UsageException("--trace: traces the nodes of a centralized or decentralized run; --mode sequential has none");
        // A metrics port in use fails here, before the data is read or the results folder made.
        using var metrics = MetricsEndpoint.Start(settings.MetricsPort, "127.0.0.1");
        var run = Prepare(settings, output, config.DistSgd.Wire, config.DistSgd.SyncEvery);
        // Before the results folder is made: by default a resumed run's folder is the one it resumes from.
        var checkpoints = RunCheckpoints.Setup(settings, config, run, output);
        InputChecks.CreateResultsFolder(settings.Out);
        output.WriteLine($"results: {Path.GetFullPath(settings.Out)}");
        if (metrics is not null)
            output.WriteLine($"metrics: {metrics.Url}");

        var onEpoch = MetricsWriter(settings, run, display, checkpoints.ResumeFrom?.Epochs);
        var (parameters, result) = display.Run(() =>
        {
            if (run.Distributed)
                return ClusterRun.Run(settings, config, run.Setup, onEpoch, output, cancellation, checkpoints, display.ShowsSteps ? display.Step : null, metrics);
            var parameters = run.Parameters;
            var trainer = new SequentialTrainer(run.Model, new SgdOptimizer(run.OptimizerOptions, run.Model.ParameterCount), run.Options);
            if (checkpoints.Writer is { } writer)
                writer.Written += w => output.WriteLine(w.Describe());
            using var meters = metrics is null ? null : new NodeMeters("local", "sequential");
            var onStep = display.ShowsSteps ? StepReporter(display) : null;
            if (meters is not null)
                onStep += step => meters.Step(step.Samples, step.LossSum, step.Seconds, 0);
            return (parameters, trainer.Train(parameters, run.Train, run.Test, onEpoch, cancellation, checkpoints.ResumeFrom, checkpoints.Writer, onStep));
        });
        if (RunCheckpoints.Describe(checkpoints.Writer) is { } written)
            output.WriteLine(written);
        RunTrace.Write(settings.TraceFile, output);
        display.Final(WriteResultFiles(settings, config, run, parameters, result, clock), settings.Out);
        return new TrainOutcome(run, parameters, result);
    }

    /// <summary>A sequential run's steps as <see cref="RunProgress.StepProgress"/>, at most every <see cref="ProgressMeter.DefaultInterval"/>.</summary>
    private static Action<StepReport> StepReporter(RunDisplay display)
    {
        long interval = (long)(ProgressMeter.DefaultInterval.TotalSeconds * Stopwatch.Frequency);
        long last = 0;
        return step =>
        {
            long now = Stopwatch.GetTimestamp();
            if (now - last < interval && step.StepInEpoch != 1 && step.StepInEpoch != step.StepsPerEpoch)
                return;
            last = now;
            display.Step(new RunProgress.StepProgress(step.Epoch, step.StepInEpoch, step.StepsPerEpoch, step.LossSum / Math.Max(1, step.Samples),
                                                      step.Samples / Math.Max(step.Seconds, 1e-9), []));
        };
    }

    /// <summary>
    /// Loads and preprocesses the data, builds the model and θ₀ from the seed, and prints what the run will do:
    /// the same for `train` and for every `distsgd node` (each reads its own copy of the data).
    /// </summary>
    /// <param name="wire">How the gradients of a distributed run travel (distsgd.wire, distsgd.compress); null: dense float32.</param>
    /// <param name="syncEvery">Local SGD's steps between model averages (1: gradient averaging).</param>
    public static PreparedRun Prepare(TrainSettings settings, TextWriter output, ShareEncoding? wire = null, int syncEvery = 1)
    {
        if (settings.Mode == RunMode.Centralized && syncEvery > 1 && (settings.BackupWorkers > 0 || settings.BalanceBySpeed))
            throw new UsageException("--sync-every (distsgd.sync-every) with --backup-workers or --balance speed: every worker of a centralized " +
                                     "local-SGD round takes the round's steps on its shard; leave --sync-every at 1, or drop --backup-workers and --balance");
        var raw = DataSources.Load(settings.Data);
        output.WriteLine($"data: {raw.Description}");

        string normalize = settings.Normalize == "auto" ? (raw.IsImages ? "scale" : "standardize") : settings.Normalize;
        float pixelMax = raw.IsImages && normalize != "none" ? PixelScaling.MaxPixelValue : 1f;
        InputChecks.CheckAgainstData(settings, raw.Train);
        var transform = FeatureTransform.Fit(raw.Train, pixelMax, standardize: normalize == "standardize");
        var train = transform.Apply(raw.Train);
        var test = transform.Apply(raw.Test);

        var spec = BuildSpec(settings, train);
        InputChecks.CheckModelSize(settings, spec, GC.GetGCMemoryInfo().TotalAvailableMemoryBytes);
        var kernels = KernelChoice.Create(settings.Mode == RunMode.Sequential ? settings.Threads : settings.ThreadsPerComputeNode);
        var model = new Model(spec, kernels);
        var parameters = new float[model.ParameterCount];
        model.Initialize(parameters, settings.Seed);

        bool distributed = settings.Mode.IsDistributed();
        var options = new TrainingOptions(settings.Epochs, settings.BatchSize, settings.Seed, settings.Patience, settings.MinDelta);
        long stepsPerEpoch = distributed
            ? ShardBatches.StepsPerEpoch(train.Count, settings.ComputeNodes, settings.BatchSize)
            : options.StepsPerEpoch(train.Count);
        var optimizerOptions = BuildOptimizerOptions(settings, stepsPerEpoch * settings.Epochs, stepsPerEpoch);
        output.WriteLine($"model: {spec} ({model.ParameterCount:N0} parameters), {optimizerOptions}");
        output.WriteLine(distributed
            ? $"run: {settings.Mode.Name()}, {settings.ComputeNodes} {(settings.Mode == RunMode.Decentralized ? "peers" : "workers")} × batch {settings.BatchSize} = global batch {settings.ComputeNodes * settings.BatchSize}, " +
              (settings.BalanceBySpeed ? "batches by measured speed from epoch 2 (--balance speed), " : "") +
              (settings.BackupWorkers > 0 ? $"each step with the first {settings.ComputeNodes - settings.BackupWorkers} gradients (--backup-workers {settings.BackupWorkers}), " : "") +
              $"{settings.Epochs} epochs max, seed {settings.Seed}, normalize {normalize}, kernels {kernels.Name} per worker" +
              (wire is { IsIdentity: false } ? $", gradients as {wire}" : "") + (syncEvery > 1 ? $", models averaged every {syncEvery} steps (local SGD)" : "")
            : $"run: {settings.Mode.Name()}, {settings.Epochs} epochs max, batch {settings.BatchSize}, seed {settings.Seed}, " +
              $"normalize {normalize}, kernels {kernels.Name}");
        var setup = new TrainingSetup(spec, parameters, optimizerOptions, options, train, test, (int)stepsPerEpoch,
                                      Hyperparameters(settings, normalize, distributed ? wire : null, distributed ? syncEvery : 1));
        return new PreparedRun(raw, normalize, transform, train, test, spec, kernels.Name, model, parameters, options, optimizerOptions, distributed, setup);
    }

    /// <summary>
    /// The run configuration beyond the model, batch, seed and epochs that every node of a distributed run must share,
    /// in the "key=value;…" form of <see cref="DistSgd.Actors.Protocol.RunPlan.Hyperparameters"/>.
    /// </summary>
    public static string Hyperparameters(TrainSettings settings, string normalize, ShareEncoding? wire = null, int syncEvery = 1) => string.Join(';', new[] {
        $"workers={settings.ComputeNodes}",
        string.Create(CultureInfo.InvariantCulture, $"lr={settings.LearningRate:R}"),
        string.Create(CultureInfo.InvariantCulture, $"momentum={settings.Momentum:R}"),
        string.Create(CultureInfo.InvariantCulture, $"weight-decay={settings.WeightDecay:R}"),
        $"schedule={settings.Schedule}",
        $"patience={settings.Patience}",
        string.Create(CultureInfo.InvariantCulture, $"min-delta={settings.MinDelta:R}"),
        $"normalize={normalize}" }.Concat((wire ?? ShareEncoding.Fp32).Keys()).Concat(LocalSgd.Keys(syncEvery)));

    /// <summary>The per-epoch callback: prints the epoch and rewrites metrics.csv.</summary>
    /// <param name="earlier">The epochs a resumed run had finished before its checkpoint: metrics.csv keeps them.</param>
    public static Action<EpochMetrics> MetricsWriter(TrainSettings settings, PreparedRun run, TextWriter output,
                                                     IEnumerable<EpochMetrics>? earlier = null) =>
        MetricsWriter(settings, run, new RunDisplay.PlainLines(output), earlier);

    /// <summary>The per-epoch callback: shows the epoch and rewrites metrics.csv.</summary>
    /// <param name="earlier">The epochs a resumed run had finished before its checkpoint: metrics.csv keeps them.</param>
    public static Action<EpochMetrics> MetricsWriter(TrainSettings settings, PreparedRun run, RunDisplay display,
                                                     IEnumerable<EpochMetrics>? earlier = null)
    {
        var epochs = new List<EpochMetrics>(earlier ?? []);
        double fp32 = WireVolume.Fp32BytesPerStep(settings.Mode, settings.ComputeNodes, run.Model.ParameterCount);
        return metrics =>
        {
            epochs.Add(metrics);
            display.Epoch(metrics, RunDisplay.FormatEpoch(metrics, settings.Epochs, run.Spec.ClassCount > 0));
            RunFiles.WriteMetrics(settings.Out, epochs, fp32);
        };
    }

    /// <summary>Writes model.bin, summary.json and the plots; returns the run's final line.</summary>
    public static string WriteResultFiles(TrainSettings settings, EffectiveConfig config, PreparedRun run, float[] parameters, TrainingResult result,
                                          Stopwatch clock, string command = "train")
    {
        var spec = run.Spec;
        int nonFinite = Array.FindIndex(parameters, v => !float.IsFinite(v));
        if (nonFinite >= 0)
            throw new TrainingDivergedException(
                $"training diverged: θ[{nonFinite}] is {parameters[nonFinite]} at the end of the run, so no model is written " +
                $"(whatever {settings.Out} held is kept). The learning rate {settings.LearningRate:G4} is probably too large; try a smaller --lr (e.g. {settings.LearningRate / 10:G4}).");
        var saved = new SavedModel(spec, parameters, run.Transform);
        ModelFile.Save(Path.Combine(settings.Out, RunFiles.ModelFileName), saved);
        var final = result.Final;
        bool distributed = run.Distributed;
        RunFiles.WriteSummary(settings.Out, new
        {
            Command = command,
            Mode = settings.Mode.Name(),
            Data = run.Raw.Description,
            TrainSamples = run.Train.Count,
            TestSamples = run.Test.Count,
            Model = spec.ToString(),
            Parameters = run.Model.ParameterCount,
            Optimizer = run.OptimizerOptions.ToString(),
            Workers = distributed ? settings.ComputeNodes : 1,
            BackupWorkers = distributed ? settings.BackupWorkers : 0,
            Balance = settings.BalanceBySpeed ? "speed" : "off",
            Transport = distributed ? config.TransportName : null,
            Collective = settings.Mode == RunMode.Decentralized ? DistSgd.Numerics.Training.CollectiveNames.Name(config.CollectiveFor(settings, run.Model.ParameterCount)) : null,
            Wire = distributed ? RunSummary.Wire(run.Setup.Hyperparameters, result, settings.Mode, settings.ComputeNodes, run.Model.ParameterCount) : null,
            GlobalBatchSize = distributed ? settings.ComputeNodes * settings.BatchSize : settings.BatchSize,
            settings.Epochs,
            settings.BatchSize,
            settings.Seed,
            settings.Patience,
            settings.MinDelta,
            Normalize = run.Normalize,
            Kernels = run.KernelsName,
            EpochsRun = result.Epochs.Count,
            StopReason = result.StopReason.ToString(),
            TrainSeconds = result.TotalSeconds,
            WallSeconds = clock.Elapsed.TotalSeconds,
            FinalTrainLoss = final?.TrainLoss,
            // null, not NaN, when the last epoch's score is not known here (a lead peer lost while it evaluated).
            FinalTestLoss = Known(final?.TestLoss),
            FinalTestAccuracy = Known(final?.TestAccuracy),
            DroppedMessages = final?.Communication?.DroppedByKind,
            Version = typeof(TrainRun).Assembly.GetName().Version?.ToString(),
            Versions = RunSummary.Versions(),
            Totals = RunSummary.Totals(result),
            NodeLag = RunSummary.NodeLag(result),
        });
        RunPlots.Write(settings.Out, result.Epochs, spec.ClassCount > 0);
        return (
            $"done: {result.Epochs.Count} epochs ({Describe(result.StopReason)}) in {result.TotalSeconds:F1} s" +
            (final is not null && spec.ClassCount > 0 ? $", test accuracy {RunDisplay.TestAccuracy(final)}" : "")
            + (final is not null && spec.ClassCount == 0 ? (final.HasTestScore ? string.Create(CultureInfo.InvariantCulture, $", test loss {final.TestLoss:G5}") : $", test loss {RunDisplay.NotKnown}") : "") +
            $"; results in {settings.Out}/ (model.bin, metrics.csv, summary.json, plots)");
    }

    private static double? Known(double? value) => value is { } v && !double.IsNaN(v) ? v : null;

    public static ModelSpec BuildSpec(TrainSettings settings, Dataset train)
    {
        if (settings.Model == ModelKind.Linear && train.IsClassification)
            throw new UsageException($"--model linear fits a regression target, but {train.Name} has {train.ClassCount} classes; use --model softmax or mlp, or --task regression");
        if (settings.Model != ModelKind.Linear && !train.IsClassification)
            throw new UsageException($"--model {settings.Model.ToString().ToLowerInvariant()} needs class labels, but {train.Name} is a regression data set; use --model linear");
        var hidden = settings.Model == ModelKind.Mlp ? settings.Hidden : [];
        return new ModelSpec(settings.Model, train.FeatureCount, train.ClassCount, hidden, settings.Activation);
    }

    public static SgdOptions BuildOptimizerOptions(TrainSettings settings, long totalSteps, long stepsPerEpoch) =>
        new(settings.LearningRate, settings.Momentum, settings.WeightDecay, schedule: LearningRateSchedule.Named(settings.Schedule, totalSteps, stepsPerEpoch));

    private static string Describe(StopReason reason) => reason switch
    {
        StopReason.LossPlateau => "loss stopped improving",
        StopReason.Cancelled => "cancelled",
        _ => "epoch limit",
    };
}

/// <summary>A finished run: what it trained on, its final θ and its metrics.</summary>
public sealed record TrainOutcome(PreparedRun Run, float[] Parameters, TrainingResult Result);

/// <summary>A run ready to train: its data (after preprocessing), model, θ₀ and options.</summary>
public sealed record PreparedRun(LoadedData Raw, string Normalize, FeatureTransform Transform, Dataset Train, Dataset Test,
                                 ModelSpec Spec, string KernelsName, Model Model, float[] Parameters, TrainingOptions Options,
                                 SgdOptions OptimizerOptions, bool Distributed, TrainingSetup Setup);

/// <summary>Chooses the matrix kernels for a run.</summary>
public static class KernelChoice
{
    public static IMatrixKernels Create(int threads) => MatrixKernels.Create(threads <= 0 ? Environment.ProcessorCount : threads);
}
