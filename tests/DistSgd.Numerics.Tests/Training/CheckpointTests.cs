using System.Buffers.Binary;
using System.Security.Cryptography;
using DistSgd.Numerics.Data;
using DistSgd.Numerics.Models;
using DistSgd.Numerics.Optim;
using DistSgd.Numerics.Tensors;
using DistSgd.Numerics.Tests.Data;
using DistSgd.Numerics.Training;

namespace DistSgd.Numerics.Tests.Training;

public class CheckpointTests
{
    private static Checkpoint Sample(long step = 12, int parameters = 10) => new(
        "mode=sequential;seed=1", step, 3, 2,
        Enumerable.Range(0, parameters).Select(i => i * 0.5f - 1).ToArray(),
        new SgdState(step, Enumerable.Range(0, parameters).Select(i => i * 0.25f).ToArray()),
        0.75, 1, new EpochProgress(2, 128, 91.5, 0.01, 0.2, 0.01, 0.3, 0.05, 1000, 2000),
        [
            new EpochMetrics(1, 5, 1.5, 1.4, 0.5, 2.0, 300, 0.05),
            new EpochMetrics(2, 10, 1.0, 0.9, double.NaN, 2.1, 310, 0.04,
                             new StepTimeBreakdown(5, 1, 0.1, 0.5, 0.05, 100, 200, 3, 0.09)),
        ]);

    [Fact]
    public void A_checkpoint_reads_back_field_for_field()
    {
        var written = Sample();
        var read = CheckpointFile.Deserialize(CheckpointFile.Serialize(written), "x.ckpt");
        Assert.Equal(written.Identity, read.Identity);
        Assert.Equal((written.Step, written.Epoch, written.StepInEpoch), (read.Step, read.Epoch, read.StepInEpoch));
        Assert.Equal(written.Parameters, read.Parameters);
        Assert.Equal(written.Optimizer.Step, read.Optimizer.Step);
        Assert.Equal(written.Optimizer.Velocity, read.Optimizer.Velocity);
        Assert.Equal((written.BestLoss, written.EpochsWithoutImprovement), (read.BestLoss, read.EpochsWithoutImprovement));
        Assert.Equal(written.Progress, read.Progress);
        Assert.Equal(written.Epochs, read.Epochs);
    }

    [Fact]
    public void The_schedules_replans_read_back_and_a_version_1_file_reads_as_having_none()
    {
        var written = Sample() with { ScheduleReplans = [new ScheduleReplan(10, 40), new ScheduleReplan(30, 15)] };
        Assert.Equal(written.Replans, CheckpointFile.Deserialize(CheckpointFile.Serialize(written), "x.ckpt").Replans);

        // Version 1 (before re-plans): the same layout without the re-plans' count at the end.
        var bytes = CheckpointFile.Serialize(Sample());
        var body = bytes[..^(32 + 4)];
        Assert.Equal(2, BinaryPrimitives.ReadInt32LittleEndian(body.AsSpan(8)));
        BinaryPrimitives.WriteInt32LittleEndian(body.AsSpan(8), 1);
        var version1 = body.Concat(SHA256.HashData(body)).ToArray();
        var read = CheckpointFile.Deserialize(version1, "old.ckpt");
        Assert.Empty(read.Replans);
        Assert.Equal(Sample().Epochs, read.Epochs);

        BinaryPrimitives.WriteInt32LittleEndian(body.AsSpan(8), 4);
        var error = Assert.Throws<DataFormatException>(() => CheckpointFile.Deserialize(body.Concat(SHA256.HashData(body)).ToArray(), "new.ckpt"));
        Assert.Contains("checkpoint version 4 is not supported (this build reads versions 1 to 3)", error.Message);
    }

    [Fact]
    public void A_balanced_runs_plan_and_timings_read_back_as_version_3_and_a_run_without_one_stays_version_2()
    {
        var balance = new BalanceState([new WorkerBatch(0, 60), new WorkerBatch(3, 20)], [new WorkerSpeed(0, 600, 0.25), new WorkerSpeed(3, 200, 0.75)]);
        var bytes = CheckpointFile.Serialize(Sample() with { Balance = balance });
        Assert.Equal(3, BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(8)));
        var read = CheckpointFile.Deserialize(bytes, "x.ckpt").Balance!;
        Assert.Equal(balance.Plan, read.Plan);
        Assert.Equal(balance.Timings, read.Timings);

        Assert.Equal(2, BinaryPrimitives.ReadInt32LittleEndian(CheckpointFile.Serialize(Sample()).AsSpan(8)));
        Assert.Null(CheckpointFile.Deserialize(CheckpointFile.Serialize(Sample()), "x.ckpt").Balance);
    }

    [Fact]
    public void A_balance_with_a_batch_of_zero_or_workers_out_of_order_is_refused()
    {
        var zero = CheckpointFile.Serialize(Sample() with { Balance = new BalanceState([new WorkerBatch(0, 0)], []) });
        Assert.Contains("planned batch 1 is 0 for worker 0", Assert.Throws<DataFormatException>(() => CheckpointFile.Deserialize(zero, "x.ckpt")).Message);
        var order = CheckpointFile.Serialize(Sample() with { Balance = new BalanceState([new WorkerBatch(2, 5), new WorkerBatch(1, 5)], []) });
        Assert.Contains("ascending", Assert.Throws<DataFormatException>(() => CheckpointFile.Deserialize(order, "x.ckpt")).Message);
        var negative = CheckpointFile.Serialize(Sample() with { Balance = new BalanceState([], [new WorkerSpeed(1, 5, double.NaN)]) });
        Assert.Contains("worker timing 1", Assert.Throws<DataFormatException>(() => CheckpointFile.Deserialize(negative, "x.ckpt")).Message);
    }

    [Fact]
    public void A_replan_that_goes_back_in_steps_is_refused()
    {
        var bytes = CheckpointFile.Serialize(Sample() with { ScheduleReplans = [new ScheduleReplan(30, 40), new ScheduleReplan(10, 15)] });
        var error = Assert.Throws<DataFormatException>(() => CheckpointFile.Deserialize(bytes, "x.ckpt"));
        Assert.Contains("schedule re-plan 2 is from step 10 over 15 steps; expected a step ≥ 30", error.Message);
    }

    [Fact]
    public void A_truncated_checkpoint_and_one_with_a_flipped_byte_are_skipped_for_the_one_before()
    {
        using var temp = new TempDirectory();
        var store = new CheckpointStore(temp.Path, keep: 5);
        store.Write(Sample(step: 10));
        store.Write(Sample(step: 20));
        var (flipped, _) = store.Write(Sample(step: 30));
        var (truncated, _) = store.Write(Sample(step: 40));

        var bytes = File.ReadAllBytes(flipped);
        bytes[bytes.Length / 2] ^= 0x10;
        File.WriteAllBytes(flipped, bytes);
        var whole = File.ReadAllBytes(truncated);
        File.WriteAllBytes(truncated, whole[..(whole.Length * 2 / 3)]);
        File.WriteAllBytes(Path.Combine(temp.Path, ".step-000000000050.ckpt.123.abc.tmp"), whole[..100]);

        var choice = store.LatestValid();
        Assert.Equal(20, choice.Checkpoint!.Step);
        Assert.Equal(store.PathOf(20), choice.Path);
        Assert.Equal(3, choice.Skipped.Count);
        Assert.Contains("unfinished write", choice.Skipped[0]);
        Assert.Contains("step-000000000040.ckpt: the checksum does not match", choice.Skipped[1]);
        Assert.Contains("step-000000000030.ckpt: the checksum does not match", choice.Skipped[2]);
        Assert.Throws<DataFormatException>(() => CheckpointFile.Read(truncated));
    }

    [Fact]
    public void A_directory_without_a_valid_checkpoint_gives_none_and_says_why()
    {
        using var temp = new TempDirectory();
        var store = new CheckpointStore(temp.Path);
        Assert.Null(store.LatestValid().Checkpoint);
        File.WriteAllText(store.PathOf(7), "not a checkpoint at all");
        File.WriteAllBytes(store.PathOf(8), CheckpointFile.Serialize(Sample(step: 8))[..20]);
        var choice = store.LatestValid();
        Assert.Null(choice.Checkpoint);
        Assert.Equal(2, choice.Skipped.Count);
        Assert.Contains("too short", choice.Skipped[0]);
        Assert.Contains("not a DistSgd checkpoint", choice.Skipped[1]);
    }

    [Fact]
    public void A_corrupt_length_is_refused_before_anything_is_allocated()
    {
        // θ's count set to 2^31−1 and the checksum recomputed: only the length check stands between it and an 8 GB array.
        var bytes = CheckpointFile.Serialize(Sample());
        int countOffset = 8 + 4 + 4 + "mode=sequential;seed=1".Length + 8 + 4 + 4;
        Assert.Equal(10, BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(countOffset)));
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(countOffset), int.MaxValue);
        SHA256.HashData(bytes.AsSpan(0, bytes.Length - 32)).CopyTo(bytes.AsSpan(bytes.Length - 32));
        var error = Assert.Throws<DataFormatException>(() => CheckpointFile.Deserialize(bytes, "x.ckpt"));
        Assert.Contains("parameter count is 2147483647", error.Message);
    }

    [Fact]
    public void An_optimizer_state_with_a_velocity_longer_than_the_stream_is_refused_before_allocating()
    {
        using var stream = new MemoryStream();
        new SgdState(3, [1f, 2f]).Save(stream);
        var bytes = stream.ToArray();
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(4 + 8), int.MaxValue);
        var error = Assert.Throws<InvalidDataException>(() => SgdState.Load(new MemoryStream(bytes)));
        Assert.Contains("2147483647", error.Message);
    }

    [Fact]
    public void The_store_keeps_the_newest_checkpoints_only()
    {
        using var temp = new TempDirectory();
        var store = new CheckpointStore(temp.Path, keep: 2);
        foreach (long step in new long[] { 5, 10, 15, 20 })
            store.Write(Sample(step));
        Assert.Equal([20L, 15L], store.List().Select(f => f.Step));
        Assert.Equal(temp.Path, CheckpointStore.Resolve(temp.Path));

        // A new run in the same folder: the earlier run's later checkpoints must not crowd out (or outlive) its own.
        store.Write(Sample(3));
        Assert.Equal([3L], store.List().Select(f => f.Step));
    }

    [Fact]
    public void The_schedule_writes_every_k_steps_at_epoch_ends_and_after_a_period()
    {
        var clock = new ManualClock();
        var schedule = new CheckpointSchedule(everySteps: 4, every: TimeSpan.FromSeconds(60), atEpochEnd: true, clock);
        schedule.Start(0);
        Assert.False(schedule.Due(0, epochStart: true));
        Assert.False(schedule.Due(3, epochStart: false));
        Assert.True(schedule.Due(4, epochStart: false));
        Assert.True(schedule.Due(7, epochStart: true));
        schedule.Written(7);
        Assert.False(schedule.Due(7, epochStart: true));
        clock.Advance(TimeSpan.FromSeconds(61));
        Assert.True(schedule.Due(9, epochStart: false));
        Assert.True(new CheckpointSchedule(0, TimeSpan.Zero, false).IsOff);
    }

    [Fact]
    public void Identity_differences_name_each_key_with_both_values()
    {
        var differences = RunIdentity.Differences("mode=sequential;seed=1;lr=0.05", "mode=sequential;seed=2;momentum=0.9",
                                                  "in the checkpoint", "now");
        Assert.Equal(["seed: 1 in the checkpoint vs 2 now", "lr: 0.05 in the checkpoint vs (unset) now",
                      "momentum: (unset) in the checkpoint vs 0.9 now"], differences);
    }

    [Fact]
    public void A_sequential_run_stopped_mid_epoch_and_resumed_ends_with_the_same_bits_as_one_that_never_stopped()
    {
        var data = Synthetic.GaussianBlobs(300, 6, 3, 1.0, seed: 3);
        var spec = new ModelSpec(ModelKind.Mlp, 6, 3, [8]);
        var options = new TrainingOptions(epochs: 4, batchSize: 32, seed: 5, patience: 2, minDelta: 1e-4);
        var sgd = new SgdOptions(0.05, momentum: 0.9, schedule: new LearningRateSchedule.Cosine(4 * options.StepsPerEpoch(300)));

        (float[] Theta, TrainingResult Result) Run(Checkpoint? resume, CheckpointWriter? writer, CancellationToken cancel = default)
        {
            var model = new Model(spec, NaiveKernels.Instance);
            var theta = new float[model.ParameterCount];
            model.Initialize(theta, 5);
            var result = new SequentialTrainer(model, new SgdOptimizer(sgd, theta.Length), options)
                .Train(theta, data, data, cancellation: cancel, resumeFrom: resume, checkpoints: writer);
            return (theta, result);
        }

        var (expected, whole) = Run(null, null);

        using var temp = new TempDirectory();
        var store = new CheckpointStore(temp.Path, keep: 3);
        var writer = new CheckpointWriter(store, new CheckpointSchedule(everySteps: 7, TimeSpan.Zero, atEpochEnd: true), "mode=sequential");
        using var stop = new CancellationTokenSource();
        writer.Written += w =>
        {
            if (w.Step >= 21)   // step 21 is the 2nd step of epoch 3 (10 steps per epoch): stop mid-epoch
                stop.Cancel();
        };
        var (_, stopped) = Run(null, writer, stop.Token);
        Assert.Equal(StopReason.Cancelled, stopped.StopReason);

        // Stopped at the boundary after step 21 was taken: the last checkpoint keeps it (step 22, epoch 3, 2 steps into it).
        var choice = store.LatestValid();
        Assert.Equal(22, choice.Checkpoint!.Step);
        Assert.Equal((3, 2), (choice.Checkpoint.Epoch, choice.Checkpoint.StepInEpoch));
        var (resumed, result) = Run(choice.Checkpoint, null);

        Assert.Equal(expected, resumed);
        Assert.Equal(whole.StopReason, result.StopReason);
        Assert.Equal(whole.Epochs.Select(e => (e.Epoch, e.Step, e.TrainLoss, e.TestLoss)),
                     result.Epochs.Select(e => (e.Epoch, e.Step, e.TrainLoss, e.TestLoss)));
    }

    private sealed class ManualClock : TimeProvider
    {
        private long _ticks;
        public void Advance(TimeSpan by) => _ticks += by.Ticks;
        public override long GetTimestamp() => _ticks;
        public override long TimestampFrequency => TimeSpan.TicksPerSecond;
    }
}
