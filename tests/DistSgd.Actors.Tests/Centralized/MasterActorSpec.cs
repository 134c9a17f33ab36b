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

    private IActorRef StartMaster(int workers, int stepsPerEpoch = 3, int epochs = 1)
    {
        var plan = new RunPlan("run", Spec, 4, 1, epochs, 100, stepsPerEpoch);
        var setup = new MasterSetup(plan, workers, _theta0, new SgdOptions(1.0), new TrainingOptions(epochs, 4, 1), null, _reporter);
        return Sys.ActorOf(MasterActor.Props(setup), "master");
    }

    /// <summary>Registers the probes, answers their JoinRun, and returns them ordered by worker index.</summary>
    private List<TestProbe> Join(IActorRef master, int count)
    {
        var probes = Enumerable.Range(0, count).Select(i => CreateTestProbe($"worker{i}")).ToList();
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
}
