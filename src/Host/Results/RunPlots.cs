using DistSgd.Numerics.Models;
using DistSgd.Numerics.Training;
using ScottPlot;

namespace DistSgd.Host.Results;

/// <summary>
/// The PNG plots of a run's results folder (ScottPlot, drawn with SkiaSharp's bundled native library): the training
/// and test loss, and the test accuracy, against the epoch and against the training time.
/// </summary>
public static class RunPlots
{
    public const int Width = 640;
    public const int Height = 400;

    public const string LossByEpoch = "loss-by-epoch.png";
    public const string LossByTime = "loss-by-time.png";
    public const string AccuracyByEpoch = "accuracy-by-epoch.png";
    public const string AccuracyByTime = "accuracy-by-time.png";

    /// <summary>Writes the plots of <paramref name="epochs"/> into <paramref name="directory"/>; returns the files written.</summary>
    /// <remarks>Accuracy plots only for classifiers (a regression run has no accuracy). Time is the training time summed
    /// over the epochs (what metrics.csv's seconds add up to), so runs of different modes compare on one axis.</remarks>
    public static IReadOnlyList<string> Write(string directory, IReadOnlyList<EpochMetrics> epochs, bool classification)
    {
        var written = new List<string>();
        if (epochs.Count == 0)
            return written;
        double[] epoch = epochs.Select(m => (double)m.Epoch).ToArray();
        double[] time = CumulativeSeconds(epochs);
        double[] trainLoss = epochs.Select(m => m.TrainLoss).ToArray();
        double[] testLoss = epochs.Select(m => m.TestLoss).ToArray();
        double[] accuracy = epochs.Select(m => m.TestAccuracy * 100).ToArray();

        written.Add(Save(Path.Combine(directory, LossByEpoch), "Loss by epoch", "epoch", "loss",
                         [("train loss", epoch, trainLoss), ("test loss", epoch, testLoss)]));
        written.Add(Save(Path.Combine(directory, LossByTime), "Loss by training time", "training time (s)", "loss",
                         [("train loss", time, trainLoss), ("test loss", time, testLoss)]));
        if (classification)
        {
            written.Add(Save(Path.Combine(directory, AccuracyByEpoch), "Test accuracy by epoch", "epoch", "test accuracy (%)",
                             [("test accuracy", epoch, accuracy)]));
            written.Add(Save(Path.Combine(directory, AccuracyByTime), "Test accuracy by training time", "training time (s)", "test accuracy (%)",
                             [("test accuracy", time, accuracy)]));
        }
        return written;
    }

    /// <summary>Training time at the end of each epoch: the running sum of the epochs' seconds.</summary>
    public static double[] CumulativeSeconds(IReadOnlyList<EpochMetrics> epochs)
    {
        var time = new double[epochs.Count];
        double sum = 0;
        for (int i = 0; i < epochs.Count; i++)
            time[i] = sum += epochs[i].Seconds;
        return time;
    }

    /// <summary>One line plot with markers, a legend when there is more than one line; NaN points are left out.</summary>
    public static string Save(string path, string title, string xLabel, string yLabel,
                              IEnumerable<(string Label, double[] X, double[] Y)> lines, int width = Width, int height = Height,
                              double[]? xTicks = null)
    {
        var plot = new Plot();
        int count = 0;
        foreach (var (label, x, y) in lines)
        {
            var points = x.Zip(y).Where(p => double.IsFinite(p.First) && double.IsFinite(p.Second)).ToArray();
            if (points.Length == 0)
                continue;
            var scatter = plot.Add.Scatter(points.Select(p => p.First).ToArray(), points.Select(p => p.Second).ToArray());
            scatter.LegendText = label;
            scatter.MarkerSize = 6;
            scatter.LineWidth = 2;
            count++;
        }
        if (xTicks is not null)
            plot.Axes.Bottom.SetTicks(xTicks, xTicks.Select(t => t.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray());
        plot.Title(title);
        plot.XLabel(xLabel);
        plot.YLabel(yLabel);
        if (count > 1)
            plot.ShowLegend(Alignment.UpperRight);
        // Encoded in memory and written atomically: a reader never sees half a PNG.
        byte[] png = plot.GetImageBytes(width, height, ImageFormat.Png);
        AtomicFile.Write(path, png);
        return path;
    }
}
