using System.Diagnostics;
using System.Globalization;
using System.Text;
using DistSgd.Actors.Steps;
using DistSgd.Host.Settings;
using DistSgd.Numerics.Training;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace DistSgd.Host.Display;

/// <summary>
/// The live display of an interactive terminal (Spectre.Console): an epoch bar and a step bar with their ETAs, the
/// running loss and samples/s, in the distributed modes a table of the nodes, the finished epochs, and the latest
/// notes. While it is up, anything else written to the console (Akka's warnings) joins the notes instead of tearing it.
/// </summary>
public sealed class LiveDisplay : RunDisplay
{
    private const int NotesShown = 4;
    private const int EpochsShown = 8;
    private const int BarWidth = 40;

    private readonly object _gate = new();
    private readonly TextWriter _console;
    private readonly TrainSettings _settings;
    private readonly IAnsiConsole _ansi;
    private readonly NoteWriter _notes;
    private readonly List<string> _noteLines = new();
    private readonly List<EpochMetrics> _epochs = new();
    private readonly Stopwatch _clock = new();
    private RunProgress.StepProgress? _step;
    private LiveDisplayContext? _live;
    private double _epochSeenAt;
    private long _epochSeenStep;

    public LiveDisplay(TextWriter console, TrainSettings settings)
    {
        _console = console;
        _settings = settings;
        _ansi = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(console) });
        _notes = new NoteWriter(this);
    }

    public override TextWriter Output => _notes;

    public override bool ShowsSteps => true;

    public override void Step(RunProgress.StepProgress progress)
    {
        lock (_gate)
        {
            if (_step is null || _step.Epoch != progress.Epoch)
                (_epochSeenAt, _epochSeenStep) = (_clock.Elapsed.TotalSeconds, progress.StepInEpoch);
            _step = progress;
            Refresh();
        }
    }

    public override void Epoch(EpochMetrics metrics, string line)
    {
        lock (_gate)
        {
            _epochs.Add(metrics);
            Refresh();
        }
    }

    public override T Run<T>(Func<T> training)
    {
        T result = default!;
        var original = Console.Out;
        _clock.Start();
        _ansi.Live(Render()).AutoClear(false).Overflow(VerticalOverflow.Ellipsis).Start(context =>
        {
            lock (_gate)
                _live = context;
            // Akka's console logger writes to Console.Out: during the display its lines become notes. (Only when this display
            // owns the process's console: Console.Out is global.)
            bool redirect = ReferenceEquals(_console, original);
            if (redirect)
                Console.SetOut(_notes);
            try
            {
                result = training();
            }
            finally
            {
                if (redirect)
                    Console.SetOut(original);
                lock (_gate)
                {
                    _live = null;
                    context.UpdateTarget(Render());
                }
            }
        });
        return result;
    }

    public override void Final(string line, string resultsFolder) => _console.WriteLine(line);

    private void Note(string line)
    {
        lock (_gate)
        {
            if (_live is null)
            {
                _console.WriteLine(line);
                return;
            }
            _noteLines.Add(line);
            if (_noteLines.Count > NotesShown)
                _noteLines.RemoveAt(0);
            Refresh();
        }
    }

    private void Refresh() => _live?.UpdateTarget(Render());

    private IRenderable Render()
    {
        var rows = new List<IRenderable>();
        int maxEpochs = _settings.Epochs;
        var step = _step;
        double elapsed = _clock.Elapsed.TotalSeconds;
        int epoch = step?.Epoch ?? Math.Min(_epochs.Count + 1, maxEpochs);
        double inEpoch = step is { StepsPerEpoch: > 0 } s ? (double)s.StepInEpoch / s.StepsPerEpoch : 0;
        if (step is not null && step.Epoch <= _epochs.Count)
            inEpoch = 1;
        double done = Math.Clamp(((epoch - 1) + inEpoch) / maxEpochs, 0, 1);
        rows.Add(new Markup(Bar("epoch", $"{epoch,3}/{maxEpochs}", done,
                                $"elapsed {Time(elapsed)}  ETA {(done > 0 ? Time(elapsed / done - elapsed) : "-")}")));
        if (step is not null)
        {
            string rate = step.SamplesPerSecond.ToString("N0", CultureInfo.InvariantCulture);
            double stepFraction = step.StepsPerEpoch > 0 ? (double)step.StepInEpoch / step.StepsPerEpoch : 0;
            // Remaining steps at the pace seen since this epoch's first report.
            double seen = _clock.Elapsed.TotalSeconds - _epochSeenAt;
            long stepsSeen = step.StepInEpoch - _epochSeenStep;
            double epochEta = stepsSeen > 0 ? (step.StepsPerEpoch - step.StepInEpoch) * seen / stepsSeen : double.NaN;
            rows.Add(new Markup(Bar("step", $"{step.StepInEpoch,5}/{step.StepsPerEpoch}", stepFraction,
                string.Create(CultureInfo.InvariantCulture,
                    $"loss {step.RunningLoss:F4}  {rate} samples/s{(double.IsFinite(epochEta) ? $"  ETA {Time(epochEta)}" : "")}"))));
            if (step.Nodes.Count > 0)
                rows.Add(NodeTable(step.Nodes));
        }
        if (_epochs.Count > 0)
            rows.Add(EpochTable());
        foreach (string note in _noteLines)
            rows.Add(new Text(note, new Style(Color.Grey)));
        return new Rows(rows);
    }

    private static string Bar(string label, string count, double fraction, string tail)
    {
        int filled = (int)Math.Round(Math.Clamp(fraction, 0, 1) * BarWidth);
        return $"[bold]{label,-5}[/] {count} [green]{new string('━', filled)}[/][grey]{new string('━', BarWidth - filled)}[/] " +
               $"{fraction * 100,3:F0}%  {Markup.Escape(tail)}";
    }

    private static Table NodeTable(IReadOnlyList<RunProgress.NodeStatus> nodes)
    {
        var table = new Table().Border(TableBorder.Rounded).Title("nodes");
        foreach (string column in new[] { "id", "role", "address", "steps", "samples/s", "compute/step", "late", "mean wait", "state" })
            table.AddColumn(column is "role" or "address" or "state" ? new TableColumn(column) : new TableColumn(column).RightAligned());
        foreach (var n in nodes)
        {
            string state = n.State == "up" ? "[green]up[/]" : $"[red]{Markup.Escape(n.State)}[/]";
            table.AddRow(n.Id.ToString(CultureInfo.InvariantCulture), n.Role, Markup.Escape(n.Address),
                         n.Steps.ToString("N0", CultureInfo.InvariantCulture), n.SamplesPerSecond.ToString("N0", CultureInfo.InvariantCulture),
                         ComputeVsStep(n), n.LateGradients.ToString("N0", CultureInfo.InvariantCulture),
                         string.Create(CultureInfo.InvariantCulture, $"{n.MeanWaitSeconds * 1000:F2} ms"), state);
        }
        return table;
    }

    /// <summary>The lag report's cell: its mean compute against the step's (the slowest participant's), e.g. "3.1 / 9.2 ms".</summary>
    private static string ComputeVsStep(RunProgress.NodeStatus n) =>
        string.Create(CultureInfo.InvariantCulture, $"{n.MeanComputeSeconds * 1000:F2} / {n.MeanStepComputeSeconds * 1000:F2} ms");

    private Table EpochTable()
    {
        bool classification = _epochs.Any(e => double.IsFinite(e.TestAccuracy));
        var table = new Table().Border(TableBorder.Simple);
        foreach (string column in classification
                     ? new[] { "epoch", "train loss", "test loss", "test acc", "seconds", "samples/s" }
                     : new[] { "epoch", "train loss", "test loss", "seconds", "samples/s" })
            table.AddColumn(new TableColumn(column).RightAligned());
        foreach (var m in _epochs.Skip(Math.Max(0, _epochs.Count - EpochsShown)))
        {
            var cells = new List<string>
            {
                m.Epoch.ToString(CultureInfo.InvariantCulture),
                m.TrainLoss.ToString("F4", CultureInfo.InvariantCulture),
                RunDisplay.TestLoss(m),
            };
            if (classification)
                cells.Add(RunDisplay.TestAccuracy(m));
            cells.Add(m.Seconds.ToString("F2", CultureInfo.InvariantCulture));
            cells.Add(m.SamplesPerSecond.ToString("N0", CultureInfo.InvariantCulture));
            table.AddRow(cells.ToArray());
        }
        return table;
    }

    private static string Time(double seconds)
    {
        if (!double.IsFinite(seconds) || seconds < 0)
            return "-";
        var t = TimeSpan.FromSeconds(Math.Round(seconds));
        return t.TotalHours >= 1 ? t.ToString(@"h\:mm\:ss", CultureInfo.InvariantCulture) : t.ToString(@"m\:ss", CultureInfo.InvariantCulture);
    }

    /// <summary>A writer whose lines become notes of the display (printed straight through while it is not up).</summary>
    private sealed class NoteWriter(LiveDisplay display) : TextWriter
    {
        private readonly StringBuilder _line = new();

        public override Encoding Encoding => Encoding.UTF8;

        public override void Write(char value)
        {
            lock (_line)
            {
                if (value == '\n')
                {
                    string text = _line.ToString().TrimEnd('\r');
                    _line.Clear();
                    display.Note(text);
                }
                else
                {
                    _line.Append(value);
                }
            }
        }

        public override void Write(string? value)
        {
            foreach (char c in value ?? "")
                Write(c);
        }

        public override void WriteLine(string? value)
        {
            Write(value);
            Write('\n');
        }
    }
}
