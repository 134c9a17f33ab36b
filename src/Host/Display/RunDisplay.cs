using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using DistSgd.Actors.Steps;
using DistSgd.Host.Settings;
using DistSgd.Numerics.Training;

namespace DistSgd.Host.Display;

/// <summary>
/// What `distsgd train` and `distsgd node` show while they run. <see cref="Create"/> picks one: a live display (Spectre.Console) in an
/// interactive terminal, plain lines (one per epoch, no control codes) otherwise, one JSON object per epoch with
/// --json, only the final line with --quiet.
/// </summary>
public abstract class RunDisplay
{
    /// <summary>Where the run's informational lines go (data, model, cluster notes).</summary>
    public abstract TextWriter Output { get; }

    /// <summary>True when <see cref="Step"/> shows anything (the trainer then reports its steps).</summary>
    public virtual bool ShowsSteps => false;

    /// <summary>Where the run is within its epoch; called at most a few times a second.</summary>
    public virtual void Step(RunProgress.StepProgress progress)
    {
    }

    /// <summary>An epoch ended; <paramref name="line"/> is its plain-text line.</summary>
    public abstract void Epoch(EpochMetrics metrics, string line);

    /// <summary>Runs the training while the display is up.</summary>
    public virtual T Run<T>(Func<T> training) => training();

    /// <summary>The run's last line, and where its results went.</summary>
    public abstract void Final(string line, string resultsFolder);

    /// <param name="interactive">The console is a terminal a person watches (not redirected, not TERM=dumb).</param>
    public static RunDisplay Create(TrainSettings settings, TextWriter console, bool interactive)
    {
        if (settings.Json)
            return new JsonLines(console);
        if (settings.Quiet)
            return new FinalLineOnly(console);
        return interactive ? new LiveDisplay(console, settings) : new PlainLines(console);
    }

    /// <summary>True when standard output is a terminal that can show a live display.</summary>
    public static bool IsInteractive(TextWriter console) =>
        ReferenceEquals(console, Console.Out) && !Console.IsOutputRedirected &&
        Environment.GetEnvironmentVariable("TERM") is not ("dumb" or "") &&
        Environment.GetEnvironmentVariable("DISTSGD_PLAIN") is null or "" or "0";

    /// <summary>One line per epoch and every informational line, as text without control codes.</summary>
    public sealed class PlainLines(TextWriter console) : RunDisplay
    {
        public override TextWriter Output => console;

        public override void Epoch(EpochMetrics metrics, string line) => console.WriteLine(line);

        public override void Final(string line, string resultsFolder) => console.WriteLine(line);
    }

    /// <summary>--quiet: the final line only.</summary>
    public sealed class FinalLineOnly(TextWriter console) : RunDisplay
    {
        public override TextWriter Output => TextWriter.Null;

        public override void Epoch(EpochMetrics metrics, string line)
        {
        }

        public override void Final(string line, string resultsFolder) => console.WriteLine(line);
    }

    /// <summary>
    /// --json: one JSON object per line, {"type":"epoch",…} per epoch (metrics.csv's columns, snake_case, null for
    /// a value that does not apply) and {"type":"done",…} at the end; nothing else on standard output.
    /// </summary>
    public sealed class JsonLines(TextWriter console) : RunDisplay
    {
        private static readonly JsonSerializerOptions Options = new()
        {
            PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
            DefaultIgnoreCondition = JsonIgnoreCondition.Never,
        };

        public override TextWriter Output => TextWriter.Null;

        /// <summary>Akka's warnings (its console logger writes to Console.Out) go to standard error while the run lasts,
        /// so that standard output holds JSON only.</summary>
        public override T Run<T>(Func<T> training)
        {
            var original = Console.Out;
            if (!ReferenceEquals(console, original))
                return training();
            Console.SetOut(Console.Error);
            try
            {
                return training();
            }
            finally
            {
                Console.SetOut(original);
            }
        }

        public override void Epoch(EpochMetrics m, string line)
        {
            var c = m.Communication;
            console.WriteLine(JsonSerializer.Serialize(new
            {
                Type = "epoch",
                m.Epoch,
                m.Step,
                TrainLoss = Finite(m.TrainLoss),
                TestLoss = Finite(m.TestLoss),
                TestAccuracy = Finite(m.TestAccuracy),
                m.Seconds,
                SamplesPerSecond = Finite(m.SamplesPerSecond),
                LearningRate = Finite(m.LearningRate),
                ComputeSeconds = c?.ComputeSeconds,
                CommunicationSeconds = c?.CommunicationSeconds,
                UpdateSeconds = c?.UpdateSeconds,
                BytesSent = c?.BytesSent,
                BytesReceived = c?.BytesReceived,
                CommunicationShare = c?.CommunicationShare,
                DroppedMessages = c?.DroppedMessages,
                // The lag report: each node's mean compute per step, by id (metrics.csv's node_compute_seconds).
                NodeComputeSeconds = c?.Nodes?.ToDictionary(n => n.Id.ToString(System.Globalization.CultureInfo.InvariantCulture), n => n.ComputePerStep),
            }, Options));
        }

        public override void Final(string line, string resultsFolder) =>
            console.WriteLine(JsonSerializer.Serialize(new { Type = "done", Message = line, Results = Path.GetFullPath(resultsFolder) }, Options));

        private static double? Finite(double value) => double.IsFinite(value) ? value : null;
    }

    /// <summary>
    /// The plain line of an epoch (also the live display's and the node's). An epoch without a test score here (one a
    /// lost lead peer evaluated) says "not known" rather than NaN.
    /// </summary>
    public static string FormatEpoch(EpochMetrics m, int epochs, bool classification)
    {
        var text = string.Create(CultureInfo.InvariantCulture,
            $"epoch {m.Epoch,3}/{epochs}  train loss {m.TrainLoss:F4}  test loss {TestLoss(m)}");
        if (classification)
            text += $"  test acc {TestAccuracy(m)}";
        text += string.Create(CultureInfo.InvariantCulture,
            $"  {m.Seconds:F2} s  {m.SamplesPerSecond,9:N0} samples/s  lr {m.LearningRate:G3}");
        if (m.Communication is { } c && c.Steps > 0)
            text += string.Create(CultureInfo.InvariantCulture,
                $"  | step {c.StepSeconds / c.Steps * 1000:F2} ms = compute {c.ComputeSeconds / c.Steps * 1000:F2} + comm {c.CommunicationSeconds / c.Steps * 1000:F2} (median {c.CommunicationMedianSeconds * 1000:F2}) + update {c.UpdateSeconds / c.Steps * 1000:F2}, {c.BytesPerStep / 1e6:F2} MB/step");
        return text;
    }

    /// <summary>What an epoch's test scores read as on screen when they are not known here.</summary>
    public const string NotKnown = "not known";

    /// <summary>The test loss as shown (4 decimals), or <see cref="NotKnown"/>.</summary>
    public static string TestLoss(EpochMetrics m) =>
        m.HasTestScore ? m.TestLoss.ToString("F4", CultureInfo.InvariantCulture) : NotKnown;

    /// <summary>The test accuracy as shown (a percentage, 2 decimals), or <see cref="NotKnown"/>.</summary>
    public static string TestAccuracy(EpochMetrics m) =>
        m.HasTestScore && !double.IsNaN(m.TestAccuracy) ? (m.TestAccuracy * 100).ToString("F2", CultureInfo.InvariantCulture) + "%" : NotKnown;
}
