using DistSgd.Actors.Steps;
using Akka.Actor;
using Akka.TestKit;
using DistSgd.Actors.Centralized;
using DistSgd.Actors.Protocol;
using DistSgd.Numerics.Models;
using DistSgd.Numerics.Optim;
using DistSgd.Numerics.Training;

namespace DistSgd.Actors.Tests.Centralized;

public class MasterActorSpec : Akka.TestKit.Xunit2.TestKit
{
    // Softmax regression 2 inputs → 3 classes: 9 parameters.
    private static readonly ModelSpec Spec = new(ModelKind.Softmax, 2, 3);
    private readonly float[] _theta0 = Enumerable.Range(0, 9).Select(i => i * 0.1f).ToArray();
    private readonly TestProbe _reporter;

    public MasterActorSpec() : base(TestConfig.Node(stepTimeout: "1500ms"), "master-spec")
    {
        _reporter = CreateTestProbe("reporter");
    }

    private IActorRef StartMaster(int workers, int stepsPerEpoch = 3, int epochs = 1, SgdOptions? optimizer = null, int backupWorkers = 0,
                                  string name = "master", bool balance = false, CheckpointSetup? checkpoints = null)
    {
        var plan = new RunPlan("run", Spec, 4, 1, epochs, 100, stepsPerEpoch);
        var setup = new MasterSetup(plan, workers, _theta0, optimizer ?? new SgdOptions(1.0), new TrainingOptions(epochs, 4, 1), null, _reporter,
                                    Checkpoints: checkpoints, BackupWorkers: backupWorkers, BalanceBySpeed: balance);
        return Sys.ActorOf(MasterActor.Props(setup), name);
    }

    /// <summary>Registers the probes, answers their JoinRun, and returns them ordered by worker index.</summary>
    private List<TestProbe> Join(IActorRef master, int count, string prefix = "worker")
    {
        var probes = Enumerable.Range(0, count).Select(i => CreateTestProbe($"{prefix}{i}")).ToList();
        foreach (var probe in probes)
            master.Tell(new RegisterWorker(probe.Ref), probe.Ref);
        var byIndex = new SortedDictionary<int, TestProbe>();
        foreach (var probe in probes)
        {
            var join = probe.ExpectMsg<JoinRun>();
            Assert.Equal("run", join.Plan.RunId);
            Assert.Equal(count, join.WorkerCount);
            byIndex[join.WorkerIndex] = probe;
        }
        foreach (var (index, probe) in byIndex)
            master.Tell(new JoinAccepted("run", index), probe.Ref);
        return byIndex.Values.ToList();
    }

    private static float[] Gradient(float value) => Enumerable.Repeat(value, 9).ToArray();

    [Fact]
    public void Master_waits_for_every_participant_and_averages_by_sample_count()
    {
        var master = StartMaster(workers: 2);
        var workers = Join(master, 2);
        var step0 = workers.Select(w => w.ExpectMsg<ComputeGradient>()).ToList();
        Assert.All(step0, m => Assert.Equal(_theta0, m.Parameters));
        Assert.All(step0, m => Assert.Equal(0, m.Step));

        master.Tell(new GradientReply("run", 0, 0, 1, 1.0, 0.001, Gradient(1f)), workers[0].Ref);
        workers[1].ExpectNoMsg(TimeSpan.FromMilliseconds(200));   // still waiting for worker 1
        master.Tell(new GradientReply("run", 0, 1, 3, 3.0, 0.001, Gradient(5f)), workers[1].Ref);

        // ḡ = (1·1 + 3·5)/4 = 4;  θ₁ = θ₀ − 1·4
        var step1 = workers[0].ExpectMsg<ComputeGradient>();
        Assert.Equal(1, step1.Step);
        Assert.Equal(_theta0.Select(v => v - 4f), step1.Parameters);
    }

    [Fact]
    public void Master_drops_stale_foreign_and_duplicate_gradients()
    {
        var master = StartMaster(workers: 2);
        var workers = Join(master, 2);
        workers.ForEach(w => w.ExpectMsg<ComputeGradient>());
        master.Tell(new GradientReply("run", 0, 0, 1, 1, 0, Gradient(1f)), workers[0].Ref);
        master.Tell(new GradientReply("run", 0, 0, 1, 1, 0, Gradient(100f)), workers[0].Ref);    // duplicate
        master.Tell(new GradientReply("other", 0, 1, 1, 1, 0, Gradient(100f)), workers[1].Ref);  // another run
        master.Tell(new GradientReply("run", 0, 1, 1, 1, 0, Gradient(3f)), workers[1].Ref);
        var step1 = workers[0].ExpectMsg<ComputeGradient>();
        Assert.Equal(_theta0.Select(v => v - 2f), step1.Parameters);   // mean of 1 and 3

        master.Tell(new GradientReply("run", 0, 1, 1, 1, 0, Gradient(100f)), workers[1].Ref);    // step 0 is over
        master.Tell(new GradientReply("run", 1, 0, 1, 1, 0, Gradient(0f)), workers[0].Ref);
        master.Tell(new GradientReply("run", 1, 1, 1, 1, 0, Gradient(0f)), workers[1].Ref);
        var step2 = workers[0].ExpectMsg<ComputeGradient>();
        Assert.Equal(step1.Parameters, step2.Parameters);
    }

    [Fact]
    public void Master_times_out_a_missing_worker_and_goes_on_with_the_others()
    {
        var master = StartMaster(workers: 2);
        var workers = Join(master, 2);
        workers.ForEach(w => w.ExpectMsg<ComputeGradient>());
        master.Tell(new GradientReply("run", 0, 0, 2, 1, 0, Gradient(1f)), workers[0].Ref);
        // Worker 1 never answers: after distsgd.step-timeout (1.5 s here) the step goes on without it.
        var step1 = workers[0].ExpectMsg<ComputeGradient>(TimeSpan.FromSeconds(5));
        Assert.Equal(_theta0.Select(v => v - 1f), step1.Parameters);
    }

    [Fact]
    public void A_step_nobody_answers_is_asked_again_a_bounded_number_of_times_then_the_run_fails()
    {
        var master = StartMaster(workers: 1);
        var worker = Join(master, 1).Single();
        // Asked, then asked again twice after distsgd.step-timeout (1.5 s here), then the run fails.
        for (int attempt = 0; attempt < 3; attempt++)
            Assert.Equal(0, worker.ExpectMsg<ComputeGradient>(TimeSpan.FromSeconds(5)).Step);
        var failed = _reporter.FishForMessage<RunProgress.RunFailed>(m => m is RunProgress.RunFailed, TimeSpan.FromSeconds(5));
        Assert.Contains("no worker answered step 0", failed.Reason);
    }

    [Fact]
    public void Every_gradient_of_a_step_being_non_finite_fails_the_run_as_diverged()
    {
        var master = StartMaster(workers: 2);
        var workers = Join(master, 2);
        workers.ForEach(w => w.ExpectMsg<ComputeGradient>());
        master.Tell(new GradientReply("run", 0, 0, 1, double.PositiveInfinity, 0, Gradient(float.NaN)), workers[0].Ref);
        master.Tell(new GradientReply("run", 0, 1, 1, 1, 0, Gradient(float.PositiveInfinity)), workers[1].Ref);
        var failed = _reporter.FishForMessage<RunProgress.RunFailed>(m => m is RunProgress.RunFailed, TimeSpan.FromSeconds(3));
        Assert.Contains("smaller --lr", failed.Reason);
    }

    [Fact]
    public void Master_reports_each_epoch_and_the_final_parameters()
    {
        var master = StartMaster(workers: 1, stepsPerEpoch: 2, epochs: 1);
        var worker = Join(master, 1).Single();
        for (int step = 0; step < 2; step++)
        {
            var compute = worker.ExpectMsg<ComputeGradient>();
            master.Tell(new GradientReply("run", compute.Step, 0, 4, 2.0, 0.001, Gradient(0.5f)), worker.Ref);
        }
        var epoch = _reporter.FishForMessage<RunProgress.EpochCompleted>(m => m is RunProgress.EpochCompleted);
        Assert.Equal(1, epoch.Metrics.Epoch);
        Assert.Equal(2, epoch.Metrics.Step);
        Assert.Equal(0.5, epoch.Metrics.TrainLoss, 6);     // loss sum 2 over 4 samples, each step
        Assert.Equal(2, epoch.Metrics.Communication!.Steps);
        var done = _reporter.FishForMessage<RunProgress.RunCompleted>(m => m is RunProgress.RunCompleted);
        Assert.Equal(_theta0.Select(v => v - 1f), done.Parameters);
        Assert.Equal(StopReason.EpochLimit, done.Result.StopReason);
        worker.ExpectMsg<RunEnded>();
    }

    [Fact]
    public void A_worker_that_refuses_the_run_fails_it_with_the_reason()
    {
        var master = StartMaster(workers: 1);
        var probe = CreateTestProbe();
        master.Tell(new RegisterWorker(probe.Ref), probe.Ref);
        probe.ExpectMsg<JoinRun>();
        master.Tell(new JoinRefused("run", 0, "this node has 10 training samples, the run expects 100"), probe.Ref);
        var failed = _reporter.FishForMessage<RunProgress.RunFailed>(m => m is RunProgress.RunFailed);
        Assert.Contains("10 training samples", failed.Reason);
    }

    [Fact]
    public void A_lost_worker_s_shard_goes_to_the_others_from_the_next_epoch_and_the_schedule_is_replanned_over_its_steps()
    {
        // Cosine over the planned 2 epochs × 2 steps: without a re-plan η would be 0 from step 4, 23 steps before the end.
        var master = StartMaster(workers: 2, stepsPerEpoch: 2, epochs: 2, optimizer: new SgdOptions(1.0, schedule: new LearningRateSchedule.Cosine(4)));
        var workers = Join(master, 2);
        var step0 = workers.Select(w => w.ExpectMsg<ComputeGradient>()).ToList();
        Assert.Equal([(0, 2), (1, 2)], step0.Select(m => (m.ShardIndex, m.ShardCount)));

        Sys.Stop(workers[1].Ref);   // worker 1 stops: not waited for, this step goes on with worker 0
        master.Tell(new GradientReply("run", 0, 0, 4, 1, 0, Gradient(1f)), workers[0].Ref);
        var step1 = workers[0].ExpectMsg<ComputeGradient>();
        Assert.Equal((1L, 0, 2), (step1.Step, step1.ShardIndex, step1.ShardCount));   // the epoch keeps its shards
        master.Tell(new GradientReply("run", 1, 0, 4, 1, 0, Gradient(1f)), workers[0].Ref);

        // Epoch 2: the whole training set is worker 0's shard, 100 samples / 4 per batch = 25 steps.
        var epoch2 = workers[0].ExpectMsg<ComputeGradient>();
        Assert.Equal((2, 0, 0, 1), (epoch2.Epoch, epoch2.StepInEpoch, epoch2.ShardIndex, epoch2.ShardCount));
        _reporter.FishForMessage<RunProgress.Note>(n => n is RunProgress.Note { Text: var t } && t.Contains("cut into 1 shards"));
        _reporter.FishForMessage<RunProgress.Note>(n => n is RunProgress.Note { Text: var t } && t.Contains("re-planned over the 25 steps that remain"));
        for (int s = 1; s < 25; s++)
        {
            master.Tell(new GradientReply("run", epoch2.Step + s - 1, 0, 4, 1, 0, Gradient(1f)), workers[0].Ref);
            var next = workers[0].ExpectMsg<ComputeGradient>();
            Assert.Equal(s, next.StepInEpoch);
            if (s == 1)   // step 2 went on from the rate reached: η₂ = (1 + cos(π·2/4))/2 = 0.5
                Assert.Equal(epoch2.Parameters.Select(v => v - 0.5f), next.Parameters);
        }
        master.Tell(new GradientReply("run", epoch2.Step + 24, 0, 4, 1, 0, Gradient(1f)), workers[0].Ref);
        var last = _reporter.FishForMessage<RunProgress.RunCompleted>(m => m is RunProgress.RunCompleted).Result.Epochs[^1];
        Assert.Equal(27, last.Step);
        // The last step still learns (η reaches 0 only after it): (1 + cos(π·(2 + 2·24/25)/4))/2 ≈ 0.00099.
        Assert.InRange(last.LearningRate, 5e-4, 2e-3);
    }

    [Fact]
    public void A_worker_that_registers_while_the_run_is_under_way_takes_part_from_the_next_epoch()
    {
        var master = StartMaster(workers: 1, stepsPerEpoch: 2, epochs: 2);
        var first = Join(master, 1).Single();
        first.ExpectMsg<ComputeGradient>();
        var late = CreateTestProbe("late");
        master.Tell(new RegisterWorker(late.Ref), late.Ref);
        var join = late.ExpectMsg<JoinRun>();
        Assert.Equal(1, join.WorkerIndex);
        master.Tell(new JoinAccepted("run", 1), late.Ref);

        master.Tell(new GradientReply("run", 0, 0, 4, 1, 0, Gradient(0f)), first.Ref);
        Assert.Equal(1, first.ExpectMsg<ComputeGradient>().Step);
        late.ExpectNoMsg(TimeSpan.FromMilliseconds(200));               // not in this epoch
        master.Tell(new GradientReply("run", 1, 0, 4, 1, 0, Gradient(0f)), first.Ref);

        var a = first.ExpectMsg<ComputeGradient>();
        var b = late.ExpectMsg<ComputeGradient>();
        Assert.Equal((2, 2L, 0, 2), (a.Epoch, a.Step, a.ShardIndex, a.ShardCount));
        Assert.Equal((2, 2L, 1, 2), (b.Epoch, b.Step, b.ShardIndex, b.ShardCount));
        Assert.Equal(a.Parameters, b.Parameters);
    }

    [Fact]
    public void A_new_master_recovers_theta_the_step_and_the_momentum_from_the_worker_with_the_highest_step()
    {
        // The singleton moved: workers that hold θ of the run register with their positions.
        var master = StartMaster(workers: 2, stepsPerEpoch: 10, epochs: 1, optimizer: new SgdOptions(1.0, momentum: 0.5));
        var (ahead, behind) = (CreateTestProbe("ahead"), CreateTestProbe("behind"));
        master.Tell(new RegisterWorker(ahead.Ref, new WorkerPosition("run", 1, 5, 1, 5, 1, 2, true)), ahead.Ref);
        master.Tell(new RegisterWorker(behind.Ref, new WorkerPosition("run", 0, 4, 1, 4, 0, 2, true)), behind.Ref);

        ahead.ExpectMsg<RequestHeldParameters>();
        behind.ExpectNoMsg(TimeSpan.FromMilliseconds(200));               // an older step is never taken
        var theta5 = _theta0;
        var theta4 = _theta0.Select(v => v + 2f).ToArray();               // v₅ = (θ₄ − θ₅)/η = 2
        master.Tell(new HeldParameters("run", 4, theta4), ahead.Ref);
        master.Tell(new HeldParameters("run", 5, theta5), ahead.Ref);

        Assert.Equal(0, behind.ExpectMsg<JoinRun>().WorkerIndex);         // workers keep their indices
        Assert.Equal(1, ahead.ExpectMsg<JoinRun>().WorkerIndex);
        master.Tell(new JoinAccepted("run", 0), behind.Ref);
        master.Tell(new JoinAccepted("run", 1), ahead.Ref);

        var redo = new[] { behind, ahead }.Select(w => w.ExpectMsg<ComputeGradient>()).ToList();
        Assert.All(redo, m => Assert.Equal((5L, 1, 5), (m.Step, m.Epoch, m.StepInEpoch)));
        Assert.Equal([(0, 2), (1, 2)], redo.Select(m => (m.ShardIndex, m.ShardCount)));
        Assert.Equal(theta5, redo[0].Parameters);
        _reporter.FishForMessage<RunProgress.Note>(n => n is RunProgress.Note { Text: var t } && t.Contains("θ of step 5 recovered from worker 1"));

        // v₆ = μ·v₅ + g = 0.5·2 + 1 = 2;  θ₆ = θ₅ − 1·2
        master.Tell(new GradientReply("run", 5, 0, 4, 1, 0, Gradient(1f)), behind.Ref);
        master.Tell(new GradientReply("run", 5, 1, 4, 1, 0, Gradient(1f)), ahead.Ref);
        var next = behind.ExpectMsg<ComputeGradient>();
        Assert.Equal(6, next.Step);
        for (int i = 0; i < theta5.Length; i++)
            Assert.Equal(theta5[i] - 2f, next.Parameters[i], 4);
    }

    /// <summary>
    /// Each kind of bad gradient, sent while step 0 waits for workers 0 and 1: it is dropped and counted by kind, never
    /// applied, and the run goes on to the same θ as without it (a non-finite reply takes its worker out of the step).
    /// </summary>
    [Theory]
    [InlineData("wrong_length")]
    [InlineData("non_finite")]
    [InlineData("foreign_run")]
    [InlineData("stale_step")]
    [InlineData("future_step")]
    [InlineData("duplicate")]
    [InlineData("not_participant")]
    [InlineData("spoofed_sender")]
    public void A_bad_gradient_is_dropped_counted_by_kind_and_never_applied(string kind)
    {
        var master = StartMaster(workers: 2, stepsPerEpoch: 1, epochs: 1);
        var workers = Join(master, 2);
        workers.ForEach(w => w.ExpectMsg<ComputeGradient>());
        master.Tell(new GradientReply("run", 0, 0, 1, 1, 0, Gradient(1f)), workers[0].Ref);
        var (bad, from) = kind switch
        {
            "wrong_length" => (new GradientReply("run", 0, 1, 1, 1, 0, new float[5]), workers[1]),
            "non_finite" => (new GradientReply("run", 0, 1, 1, 1, 0, Gradient(float.NaN)), workers[1]),
            "foreign_run" => (new GradientReply("other", 0, 1, 1, 1, 0, Gradient(100f)), workers[1]),
            "stale_step" => (new GradientReply("run", -1, 1, 1, 1, 0, Gradient(100f)), workers[1]),
            "future_step" => (new GradientReply("run", 5, 1, 1, 1, 0, Gradient(100f)), workers[1]),
            "duplicate" => (new GradientReply("run", 0, 0, 1, 1, 0, Gradient(100f)), workers[0]),
            "not_participant" => (new GradientReply("run", 0, 7, 1, 1, 0, Gradient(100f)), workers[1]),
            _ => (new GradientReply("run", 0, 1, 1, 1, 0, Gradient(100f)), workers[0]),   // worker 0 speaking for worker 1
        };
        master.Tell(bad, from.Ref);
        if (kind != "non_finite")
            master.Tell(new GradientReply("run", 0, 1, 1, 1, 0, Gradient(3f)), workers[1].Ref);

        var epoch = _reporter.FishForMessage<RunProgress.EpochCompleted>(m => m is RunProgress.EpochCompleted, TimeSpan.FromSeconds(5));
        string counted = kind == "spoofed_sender" ? "not_participant" : kind;
        Assert.Equal(1, epoch.Metrics.Communication!.DroppedByKind![counted]);
        Assert.Equal(1, epoch.Metrics.Communication.DroppedMessages);
        var done = _reporter.FishForMessage<RunProgress.RunCompleted>(m => m is RunProgress.RunCompleted, TimeSpan.FromSeconds(5));
        // θ₁ = θ₀ − mean(1, 3) = θ₀ − 2, or θ₀ − 1 when worker 1's only answer was the non-finite one.
        Assert.Equal(_theta0.Select(v => v - (kind == "non_finite" ? 1f : 2f)), done.Parameters);
    }

    /// <summary>Worker <paramref name="worker"/>'s gradient for <paramref name="step"/>: different for every pair, the same in every run.</summary>
    private static GradientReply Reply(int worker, long step) =>
        new("run", step, worker, worker + 1, 0.5 * (worker + 1), 0.001,
            Enumerable.Range(0, 9).Select(i => (float)Math.Sin(worker * 10 + step * 3 + i * 0.3)).ToArray());

    /// <summary>Workers 0–2 answer <paramref name="step"/> (each receiving its θ first).</summary>
    private static void AnswerFastWorkers(IActorRef master, List<TestProbe> workers, long step)
    {
        for (int w = 0; w < 3; w++)
        {
            Assert.Equal(step, workers[w].ExpectMsg<ComputeGradient>().Step);
            master.Tell(Reply(w, step), workers[w].Ref);
        }
    }

    [Fact]
    public void With_a_backup_worker_steps_finish_without_the_late_one_bit_identical_to_a_run_without_it()
    {
        var momentum = new SgdOptions(0.1, momentum: 0.9);
        var master = StartMaster(workers: 4, stepsPerEpoch: 4, optimizer: momentum, backupWorkers: 1);
        var workers = Join(master, 4);
        var slow = workers[3];

        Assert.Equal(0, slow.ExpectMsg<ComputeGradient>().Step);
        AnswerFastWorkers(master, workers, 0);             // the first 3 of 4: step 0 finishes without worker 3
        Assert.Equal(1, workers[0].ExpectMsg<ComputeGradient>().Step);
        slow.ExpectNoMsg(TimeSpan.FromMilliseconds(200));  // still computing step 0: not asked for step 1
        master.Tell(Reply(3, 0), slow.Ref);                // late: dropped
        master.Tell(Reply(1, 1), workers[1].Ref);
        master.Tell(Reply(2, 1), workers[2].Ref);
        master.Tell(Reply(0, 1), workers[0].Ref);
        workers[1].ExpectMsg<ComputeGradient>();
        workers[2].ExpectMsg<ComputeGradient>();

        // Free again, worker 3 is asked for step 2, and is late again.
        Assert.Equal(2, slow.ExpectMsg<ComputeGradient>().Step);
        AnswerFastWorkers(master, workers, 2);
        AnswerFastWorkers(master, workers, 3);
        master.Tell(Reply(3, 2), slow.Ref);
        var epoch = _reporter.FishForMessage<RunProgress.EpochCompleted>(m => m is RunProgress.EpochCompleted).Metrics;
        var withBackup = _reporter.FishForMessage<RunProgress.RunCompleted>(m => m is RunProgress.RunCompleted).Parameters;
        Assert.Equal(4, epoch.Communication!.Steps);
        Assert.Equal(24, epoch.SamplesPerSecond * epoch.Seconds, 6);   // 4 steps × (1 + 2 + 3) samples: worker 3's never used
        Assert.True(epoch.Communication.DroppedByKind!.GetValueOrDefault("late_gradient") >= 1);

        // The same gradients with worker 3 simply absent: three workers, every step waiting for all of them.
        var reference = StartMaster(workers: 3, stepsPerEpoch: 4, optimizer: momentum, name: "reference");
        var three = Join(reference, 3, "absent");
        for (long step = 0; step < 4; step++)
            AnswerFastWorkers(reference, three, step);
        var withoutIt = _reporter.FishForMessage<RunProgress.RunCompleted>(m => m is RunProgress.RunCompleted).Parameters;
        Assert.Equal(withoutIt, withBackup);   // bit-identical
    }

    /// <summary>
    /// Answers every θ each probe is sent, in worker order, until the run ends: worker w computes the batch it is asked
    /// (the run's 4 when not balanced) at 1 ms a sample, worker 3 at 3 ms. Returns (step, worker, batch asked).
    /// </summary>
    private static List<(long Step, int Worker, int Batch)> AnswerUntilTheEnd(IActorRef master, List<TestProbe> workers)
    {
        var asked = new List<(long, int, int)>();
        while (true)
        {
            for (int w = 0; w < workers.Count; w++)
            {
                var message = workers[w].ReceiveOne(TimeSpan.FromSeconds(5));
                if (message is RunEnded)
                    return asked;
                var compute = Assert.IsType<ComputeGradient>(message);
                int samples = compute.BatchSize > 0 ? compute.BatchSize : 4;
                asked.Add((compute.Step, w, compute.BatchSize));
                master.Tell(Reply(w, compute.Step) with { SampleCount = samples, ComputeSeconds = samples * (w == 3 ? 0.003 : 0.001) }, workers[w].Ref);
            }
        }
    }

    [Fact]
    public void Balanced_batches_follow_the_workers_speeds_and_a_resumed_master_plans_exactly_as_the_uninterrupted_one()
    {
        using var temp = new TempCheckpoints();
        var writer = new CheckpointWriter(new CheckpointStore(temp.Path, keep: 10), new CheckpointSchedule(everySteps: 5, TimeSpan.Zero, atEpochEnd: false), "run");
        var master = StartMaster(workers: 4, stepsPerEpoch: 3, epochs: 3, balance: true, checkpoints: new CheckpointSetup(null, writer));
        var uninterrupted = AnswerUntilTheEnd(master, Join(master, 4));
        var whole = _reporter.FishForMessage<RunProgress.RunCompleted>(m => m is RunProgress.RunCompleted).Parameters;

        // Epoch 1 (steps 0–2) at the run's batch; from epoch 2 the global batch 16 is split 5, 5, 5, 1 by speed.
        Assert.All(uninterrupted.Where(a => a.Step < 3), a => Assert.Equal(0, a.Batch));
        Assert.All(uninterrupted.Where(a => a.Step >= 3), a => Assert.Equal(a.Worker == 3 ? 1 : 5, a.Batch));
        Assert.Equal(3 + 7 + 7, uninterrupted.Max(a => a.Step) + 1);   // a balanced epoch: ⌈100 / 16⌉ steps

        // Resumed from step 5 (epoch 2, two steps in): the same batches from there on, the same θ bit for bit.
        var checkpoint = CheckpointFile.Read(System.IO.Path.Combine(temp.Path, "step-000000000005.ckpt"));
        Assert.NotNull(checkpoint.Balance);
        var resumed = StartMaster(workers: 4, stepsPerEpoch: 3, epochs: 3, balance: true, name: "resumed", checkpoints: new CheckpointSetup(checkpoint, null));
        var after = AnswerUntilTheEnd(resumed, Join(resumed, 4, "again"));
        var end = _reporter.FishForMessage<RunProgress.RunCompleted>(m => m is RunProgress.RunCompleted).Parameters;
        Assert.Equal(uninterrupted.Where(a => a.Step >= 5), after);
        Assert.Equal(whole, end);
    }

    private sealed class TempCheckpoints : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("distsgd-balance-").FullName;

        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
