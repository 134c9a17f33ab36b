using System.Globalization;
using System.Text;
using System.Text.Json;
using DistSgd.Numerics.Models;
using DistSgd.Numerics.Training;

namespace DistSgd.Host.Runs;

/// <summary>The files a run leaves in its results folder: model.bin, metrics.csv and summary.json.</summary>
public static class RunFiles
{
    public const string ModelFileName = "model.bin";
    public const string MetricsFileName = "metrics.csv";
    public const string SummaryFileName = "summary.json";

    public const string MetricsHeader =
        "epoch,step,train_loss,test_loss,test_accuracy,seconds,samples_per_second,learning_rate," +
        "compute_seconds,imbalance_seconds,communication_seconds,update_seconds,bytes_sent,bytes_received,communication_share,dropped_messages," +
        "node_compute_seconds,bytes_per_step,compression_ratio";

    /// <summary>One metrics.csv row, invariant culture, round-trippable numbers.</summary>
    /// <remarks>A sequential run computes the whole epoch and communicates nothing.</remarks>
    /// <param name="fp32BytesPerStep">What a step would move with float32 gradients (<see cref="Results.WireVolume"/>):
    /// compression_ratio = bytes_per_step over it; 0 leaves the ratio empty.</param>
    public static string MetricsRow(EpochMetrics m, double fp32BytesPerStep = 0)
    {
        var c = m.Communication ?? new StepTimeBreakdown(m.Step, m.Seconds, 0, 0, 0, 0, 0, 0);
        return string.Join(',',
            m.Epoch.ToString(CultureInfo.InvariantCulture),
            m.Step.ToString(CultureInfo.InvariantCulture),
            Number(m.TrainLoss), Number(m.TestLoss), Number(m.TestAccuracy),
            Number(m.Seconds), Number(m.SamplesPerSecond), Number(m.LearningRate),
            Number(c.ComputeSeconds), Number(c.ImbalanceSeconds), Number(c.CommunicationSeconds), Number(c.UpdateSeconds),
            c.BytesSent.ToString(CultureInfo.InvariantCulture), c.BytesReceived.ToString(CultureInfo.InvariantCulture),
            Number(c.CommunicationShare), c.DroppedMessages.ToString(CultureInfo.InvariantCulture),
            NodeCompute(c.Nodes), Number(c.BytesPerStep), Number(Results.WireVolume.CompressionRatio(c.BytesPerStep, fp32BytesPerStep)));
    }

    /// <summary>
    /// The lag report's cell: each participant's mean compute per step, "id:seconds" separated by spaces (compare with
    /// compute_seconds / steps, the step's: the slowest participant's); empty for a sequential run.
    /// </summary>
    public static string NodeCompute(IReadOnlyList<NodeComputeTime>? nodes) =>
        nodes is null ? "" : string.Join(' ', nodes.Select(n => $"{n.Id.ToString(CultureInfo.InvariantCulture)}:{Number(n.ComputePerStep)}"));

    public static void WriteMetrics(string directory, IEnumerable<EpochMetrics> epochs, double fp32BytesPerStep = 0)
    {
        var text = new StringBuilder().AppendLine(MetricsHeader);
        foreach (var m in epochs)
            text.AppendLine(MetricsRow(m, fp32BytesPerStep));
        AtomicFile.Write(Path.Combine(directory, MetricsFileName), Encoding.UTF8.GetBytes(text.ToString()));
    }

    public static void WriteSummary(string directory, object summary)
    {
        var json = JsonSerializer.SerializeToUtf8Bytes(summary, new JsonSerializerOptions
        {
            WriteIndented = true,
            PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
            NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
        });
        AtomicFile.Write(Path.Combine(directory, SummaryFileName), json);
    }

    public static string Number(double value) =>
        double.IsNaN(value) ? "" : value.ToString("R", CultureInfo.InvariantCulture);
}
