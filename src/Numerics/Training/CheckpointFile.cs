using System.Runtime.InteropServices;
using System.Text;
using DistSgd.Numerics.Data;
using DistSgd.Numerics.Models;
using DistSgd.Numerics.Optim;

namespace DistSgd.Numerics.Training;

/// <summary>
/// A checkpoint on disk: versioned, little-endian, SHA-256 over the whole body, written atomically (temporary
/// file, fsync, rename: <see cref="AtomicFile"/>), so a crash leaves the old file or the new one, and a file cut
/// short or with a changed byte is refused on reading.
/// </summary>
/// <remarks>
/// Layout: "DSGDCKPT", int32 version, int32 n + n bytes of UTF-8 identity, int64 step, int32 epoch, int32 step in
/// epoch, int32 count + float32[count] θ, the optimizer state (<see cref="SgdState.Save"/>), float64 best loss,
/// int32 epochs without improvement, the epoch's progress (int64 steps, int64 samples, float64 loss sum, float64
/// learning rate, float64 compute, imbalance, communication, update seconds, int64 bytes sent, received), int32 m +
/// m finished epochs' metrics, (version 2) int32 r + r re-plans of the learning-rate schedule (int64 from step, int64
/// remaining steps: <see cref="ScheduleReplan"/>), (version 3, only a run with --balance speed) int32 k + k × (int32
/// worker, int32 batch) of the batch plan in effect and int32 t + t × (int32 worker, int64 samples, float64 seconds) of
/// the timings towards the next (<see cref="BalanceState"/>), then 32 bytes of SHA-256 over everything before them.
/// Every count is checked against the bytes that remain before anything is allocated. Version 1 files (written before
/// schedules were re-planned) are read as having no re-plans; a run without a balance writes version 2.
/// </remarks>
public static class CheckpointFile
{
    private static readonly byte[] Magic = "DSGDCKPT"u8.ToArray();
    private const int Version = 3;

    /// <summary>The version of a checkpoint without a <see cref="BalanceState"/> (the same bytes as before balancing existed).</summary>
    private const int VersionWithoutBalance = 2;
    private const int FirstVersion = 1;
    private const string What = "checkpoint";

    /// <summary>
    /// Writes <paramref name="checkpoint"/> atomically to <paramref name="path"/>; returns the bytes written.
    /// <paramref name="scratch"/>, when given, is reused for the bytes (no large allocation per checkpoint).
    /// </summary>
    public static long Write(string path, Checkpoint checkpoint, MemoryStream? scratch = null)
    {
        var buffer = scratch ?? new MemoryStream();
        buffer.SetLength(0);
        var bytes = ChecksummedFile.SealInPlace(SerializeBody(checkpoint, buffer));
        AtomicFile.Write(path, bytes);
        return bytes.Length;
    }

    public static byte[] Serialize(Checkpoint checkpoint) => ChecksummedFile.Seal(SerializeBody(checkpoint, new MemoryStream()));

    private static MemoryStream SerializeBody(Checkpoint checkpoint, MemoryStream buffer)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        buffer.Capacity = Math.Max(buffer.Capacity, 256 + 8 * checkpoint.Parameters.Length + 128 * checkpoint.Epochs.Count
                                                    + 4 * checkpoint.Identity.Length + ChecksummedFile.ChecksumLength);
        using (var writer = new BinaryWriter(buffer, Encoding.UTF8, leaveOpen: true))
        {
            writer.Write(Magic);
            writer.Write(checkpoint.Balance is null ? VersionWithoutBalance : Version);
            var identity = Encoding.UTF8.GetBytes(checkpoint.Identity);
            writer.Write(identity.Length);
            writer.Write(identity);
            writer.Write(checkpoint.Step);
            writer.Write(checkpoint.Epoch);
            writer.Write(checkpoint.StepInEpoch);
            writer.Write(checkpoint.Parameters.Length);
            writer.Write(MemoryMarshal.AsBytes(checkpoint.Parameters.AsSpan()));
            writer.Flush();
            checkpoint.Optimizer.Save(buffer);
            writer.Write(checkpoint.BestLoss);
            writer.Write(checkpoint.EpochsWithoutImprovement);
            var p = checkpoint.Progress;
            writer.Write(p.Steps);
            writer.Write(p.Samples);
            writer.Write(p.LossSum);
            writer.Write(p.LearningRate);
            writer.Write(p.ComputeSeconds);
            writer.Write(p.ImbalanceSeconds);
            writer.Write(p.CommunicationSeconds);
            writer.Write(p.UpdateSeconds);
            writer.Write(p.BytesSent);
            writer.Write(p.BytesReceived);
            writer.Write(checkpoint.Epochs.Count);
            foreach (var m in checkpoint.Epochs)
                WriteMetrics(writer, m);
            writer.Write(checkpoint.Replans.Count);
            foreach (var replan in checkpoint.Replans)
            {
                writer.Write(replan.FromStep);
                writer.Write(replan.RemainingSteps);
            }
            if (checkpoint.Balance is { } balance)
                WriteBalance(writer, balance);
        }
        return buffer;
    }

    /// <summary>Reads and verifies a checkpoint; throws <see cref="DataFormatException"/> naming the file and what is wrong.</summary>
    public static Checkpoint Read(string path) => Deserialize(ChecksummedFile.ReadAll(path, What), path);

    public static Checkpoint Deserialize(byte[] bytes, string path)
    {
        var body = ChecksummedFile.Verify(bytes, Magic, path, What);
        int length = body.Length;
        using var stream = new MemoryStream(bytes, 0, length, writable: false);
        using var reader = new BinaryReader(stream);
        try
        {
            reader.ReadBytes(Magic.Length);
            int version = reader.ReadInt32();
            if (version is < FirstVersion or > Version)
                throw new DataFormatException(path, $"checkpoint version {version} is not supported (this build reads versions {FirstVersion} to {Version})");
            int identityLength = ChecksummedFile.ReadCount(reader, path, "identity length", length - stream.Position);
            string identity = Encoding.UTF8.GetString(reader.ReadBytes(identityLength));
            long step = reader.ReadInt64();
            int epoch = reader.ReadInt32();
            int stepInEpoch = reader.ReadInt32();
            if (step < 0 || epoch < 1 || stepInEpoch < 0)
                throw new DataFormatException(path, $"the position is step {step}, epoch {epoch}, step in epoch {stepInEpoch}; expected step ≥ 0, epoch ≥ 1, step in epoch ≥ 0");
            int count = ChecksummedFile.ReadCount(reader, path, "parameter count", (length - stream.Position) / sizeof(float));
            var parameters = ChecksummedFile.ReadFloats(reader, count);
            SgdState optimizer;
            try
            {
                optimizer = SgdState.Load(stream);
            }
            catch (InvalidDataException e)
            {
                throw new DataFormatException(path, $"invalid optimizer state: {e.Message}", inner: e);
            }
            if (optimizer.Velocity.Length is not 0 && optimizer.Velocity.Length != count)
                throw new DataFormatException(path, $"the optimizer's velocity has {optimizer.Velocity.Length} values, θ has {count}");
            double best = reader.ReadDouble();
            int withoutImprovement = ChecksummedFile.ReadCount(reader, path, "count of epochs without improvement", int.MaxValue);
            var progress = new EpochProgress(reader.ReadInt64(), reader.ReadInt64(), reader.ReadDouble(), reader.ReadDouble(),
                                             reader.ReadDouble(), reader.ReadDouble(), reader.ReadDouble(), reader.ReadDouble(),
                                             reader.ReadInt64(), reader.ReadInt64());
            int epochCount = ChecksummedFile.ReadCount(reader, path, "epoch count", (length - stream.Position) / MinimumMetricsBytes);
            var epochs = new List<EpochMetrics>(epochCount);
            for (int i = 0; i < epochCount; i++)
                epochs.Add(ReadMetrics(reader));
            var replans = version >= 2 ? ReadReplans(reader, path, length - stream.Position) : [];
            var balance = version >= 3 ? ReadBalance(reader, path, () => length - stream.Position) : null;
            if (stream.Position != length)
                throw new DataFormatException(path, $"{length - stream.Position} unexpected bytes after the {version switch { >= 3 => "batch balance", 2 => "schedule's re-plans", _ => "epochs' metrics" }}");
            return new Checkpoint(identity, step, epoch, stepInEpoch, parameters, optimizer, best, withoutImprovement, progress, epochs, replans, balance);
        }
        catch (Exception e) when (e is EndOfStreamException or ArgumentException)
        {
            throw new DataFormatException(path, $"invalid checkpoint: {e.Message}", inner: e);
        }
    }

    /// <summary>The schedule's re-plans: each starts at or after the one before and leaves at least one step.</summary>
    private static List<ScheduleReplan> ReadReplans(BinaryReader reader, string path, long remainingBytes)
    {
        int count = ChecksummedFile.ReadCount(reader, path, "count of schedule re-plans", remainingBytes / (2 * sizeof(long)));
        var replans = new List<ScheduleReplan>(count);
        for (int i = 0; i < count; i++)
        {
            var replan = new ScheduleReplan(reader.ReadInt64(), reader.ReadInt64());
            long previous = i > 0 ? replans[i - 1].FromStep : 0;
            if (replan.FromStep < previous || replan.RemainingSteps <= 0)
                throw new DataFormatException(path, $"schedule re-plan {i + 1} is from step {replan.FromStep} over {replan.RemainingSteps} steps; expected a step ≥ {previous} and at least 1 step");
            replans.Add(replan);
        }
        return replans;
    }

    private static void WriteBalance(BinaryWriter writer, BalanceState balance)
    {
        writer.Write(balance.Plan.Count);
        foreach (var b in balance.Plan)
        {
            writer.Write(b.Worker);
            writer.Write(b.BatchSize);
        }
        writer.Write(balance.Timings.Count);
        foreach (var t in balance.Timings)
        {
            writer.Write(t.Worker);
            writer.Write(t.Samples);
            writer.Write(t.Seconds);
        }
    }

    /// <summary>The batch plan (workers ascending, batches ≥ 1) and the timings (samples ≥ 0, finite seconds ≥ 0).</summary>
    private static BalanceState ReadBalance(BinaryReader reader, string path, Func<long> remaining)
    {
        int planCount = ChecksummedFile.ReadCount(reader, path, "count of planned batches", remaining() / (2 * sizeof(int)));
        var plan = new List<WorkerBatch>(planCount);
        for (int i = 0; i < planCount; i++)
        {
            var b = new WorkerBatch(reader.ReadInt32(), reader.ReadInt32());
            if (b.Worker < 0 || b.BatchSize < 1 || (i > 0 && b.Worker <= plan[i - 1].Worker))
                throw new DataFormatException(path, $"planned batch {i + 1} is {b.BatchSize} for worker {b.Worker}; expected workers in ascending order and a batch ≥ 1");
            plan.Add(b);
        }
        int timingCount = ChecksummedFile.ReadCount(reader, path, "count of worker timings", remaining() / (sizeof(int) + sizeof(long) + sizeof(double)));
        var timings = new List<WorkerSpeed>(timingCount);
        for (int i = 0; i < timingCount; i++)
        {
            var t = new WorkerSpeed(reader.ReadInt32(), reader.ReadInt64(), reader.ReadDouble());
            if (t.Worker < 0 || t.Samples < 0 || !double.IsFinite(t.Seconds) || t.Seconds < 0)
                throw new DataFormatException(path, $"worker timing {i + 1} is {t.Samples} samples in {t.Seconds} s for worker {t.Worker}; expected a worker ≥ 0, samples ≥ 0 and finite seconds ≥ 0");
            timings.Add(t);
        }
        return new BalanceState(plan, timings);
    }

    /// <summary>int32 epoch, int64 step, 6 float64 and the has-breakdown byte.</summary>
    private const int MinimumMetricsBytes = 4 + 8 + 6 * 8 + 1;

    private static void WriteMetrics(BinaryWriter writer, EpochMetrics m)
    {
        writer.Write(m.Epoch);
        writer.Write(m.Step);
        writer.Write(m.TrainLoss);
        writer.Write(m.TestLoss);
        writer.Write(m.TestAccuracy);
        writer.Write(m.Seconds);
        writer.Write(m.SamplesPerSecond);
        writer.Write(m.LearningRate);
        writer.Write(m.Communication is not null);
        if (m.Communication is { } c)
        {
            writer.Write(c.Steps);
            writer.Write(c.ComputeSeconds);
            writer.Write(c.ImbalanceSeconds);
            writer.Write(c.CommunicationSeconds);
            writer.Write(c.UpdateSeconds);
            writer.Write(c.BytesSent);
            writer.Write(c.BytesReceived);
            writer.Write(c.DroppedMessages);
            writer.Write(c.CommunicationMedianSeconds);
        }
    }

    private static EpochMetrics ReadMetrics(BinaryReader reader)
    {
        int epoch = reader.ReadInt32();
        long step = reader.ReadInt64();
        double trainLoss = reader.ReadDouble(), testLoss = reader.ReadDouble(), accuracy = reader.ReadDouble();
        double seconds = reader.ReadDouble(), samplesPerSecond = reader.ReadDouble(), rate = reader.ReadDouble();
        StepTimeBreakdown? communication = null;
        if (reader.ReadBoolean())
            communication = new StepTimeBreakdown(reader.ReadInt64(), reader.ReadDouble(), reader.ReadDouble(), reader.ReadDouble(),
                                                  reader.ReadDouble(), reader.ReadInt64(), reader.ReadInt64(), reader.ReadInt64(),
                                                  reader.ReadDouble());
        return new EpochMetrics(epoch, step, trainLoss, testLoss, accuracy, seconds, samplesPerSecond, rate, communication);
    }
}
