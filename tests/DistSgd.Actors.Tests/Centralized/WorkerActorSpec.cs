using Akka.Actor;
using DistSgd.Actors.Centralized;
using DistSgd.Actors.Protocol;
using DistSgd.Numerics.Data;
using DistSgd.Numerics.Models;
using DistSgd.Numerics.Tensors;
using DistSgd.Numerics.Training;

namespace DistSgd.Actors.Tests.Centralized;

public class WorkerActorSpec : Akka.TestKit.Xunit2.TestKit
{
    private static readonly Dataset Train = Synthetic.GaussianBlobs(100, 4, 3, spread: 2, seed: 5);
    private static readonly ModelSpec Spec = new(ModelKind.Mlp, 4, 3, [6]);
    private static readonly RunPlan Plan = new("run", Spec, 8, 11, 2, 100, ShardBatches.StepsPerEpoch(100, 2, 8));

    public WorkerActorSpec() : base(TestConfig.Node(), "worker-spec")
    {
    }

    [Fact]
    public void Worker_registers_joins_and_computes_the_gradient_of_its_shard_batch()
    {
        var worker = Sys.ActorOf(WorkerActor.Props(TestActor, Train));
        Assert.Equal(worker, ExpectMsg<RegisterWorker>().Worker);
        worker.Tell(new JoinRun(Plan, 1, 2));
        ExpectMsg<JoinAccepted>(m => m.WorkerIndex == 1 && m.RunId == "run");

        var model = new Model(Spec, NaiveKernels.Instance);
        var theta = new float[model.ParameterCount];
        model.Initialize(theta, 3);
        worker.Tell(new ComputeGradient("run", 9, 2, 1, theta));
        var reply = FishForMessage<GradientReply>(m => m is GradientReply);
        Assert.Equal((9L, 1, 8), (reply.Step, reply.WorkerIndex, reply.SampleCount));

        // The same batch computed directly: worker 1's shard, epoch 2, batch 1.
        var batches = new ShardBatches(Train, 1, 2, 8, 11);
        var x = new float[8 * 4];
        var y = new float[8];
        Assert.Equal(8, batches.Gather(2, 1, x, y));
        var expected = new float[model.ParameterCount];
        float loss = model.LossAndGradient(theta, x, y, 8, expected);
        Assert.Equal(loss * 8, reply.LossSum, 4);
        for (int i = 0; i < expected.Length; i++)
            Assert.Equal(expected[i], reply.Gradient[i], 5);
    }

    [Fact]
    public void A_worker_configured_for_another_run_refuses_naming_each_difference_and_tells_its_reporter()
    {
        var reporter = CreateTestProbe();
        var expected = Plan with { RunId = "mine", Seed = 12, Hyperparameters = "lr=0.1" };
        var worker = Sys.ActorOf(WorkerActor.Props(TestActor, Train, expected: expected, reporter: reporter.Ref));
        ExpectMsg<RegisterWorker>();
        worker.Tell(new JoinRun(Plan with { Hyperparameters = "lr=0.05" }, 0, 2));
        var refused = ExpectMsg<JoinRefused>();
        Assert.Equal("the master runs a different run configuration: seed: 12 on this node vs 11 at the master; lr: 0.1 on this node vs 0.05 at the master",
                     refused.Reason);
        Assert.Contains(refused.Reason, reporter.ExpectMsg<DistSgd.Actors.Steps.RunProgress.RunFailed>().Reason);
    }

    [Fact]
    public void A_worker_configured_for_the_same_run_joins_whatever_the_run_id_and_reports_the_end()
    {
        var reporter = CreateTestProbe();
        var worker = Sys.ActorOf(WorkerActor.Props(TestActor, Train, expected: Plan with { RunId = "mine" }, reporter: reporter.Ref));
        ExpectMsg<RegisterWorker>();
        worker.Tell(new JoinRun(Plan, 0, 2));
        ExpectMsg<JoinAccepted>();
        worker.Tell(new RunEnded(Plan.RunId));
        Assert.Equal(Plan.RunId, reporter.ExpectMsg<RunEnded>().RunId);
    }

    [Fact]
    public void Past_the_end_of_its_shard_a_worker_replies_with_no_samples()
    {
        var worker = Sys.ActorOf(WorkerActor.Props(TestActor, Train));
        ExpectMsg<RegisterWorker>();
        worker.Tell(new JoinRun(Plan, 0, 2));
        ExpectMsg<JoinAccepted>();
        var theta = new float[Spec.ParameterCount];
        worker.Tell(new ComputeGradient("run", 0, 1, 50, theta));
        var reply = FishForMessage<GradientReply>(m => m is GradientReply);
        Assert.Equal(0, reply.SampleCount);
        Assert.Empty(reply.Gradient);
    }

    [Fact]
    public void Worker_refuses_a_run_whose_data_differs_from_its_own()
    {
        var worker = Sys.ActorOf(WorkerActor.Props(TestActor, Train));
        ExpectMsg<RegisterWorker>();
        worker.Tell(new JoinRun(Plan with { TrainCount = 60000 }, 0, 2));
        var refused = FishForMessage<JoinRefused>(m => m is JoinRefused);
        Assert.Contains("100 training samples, the run expects 60000", refused.Reason);
    }

    [Fact]
    public void Worker_ignores_work_for_another_run()
    {
        var worker = Sys.ActorOf(WorkerActor.Props(TestActor, Train));
        ExpectMsg<RegisterWorker>();
        worker.Tell(new JoinRun(Plan, 0, 2));
        ExpectMsg<JoinAccepted>();
        worker.Tell(new ComputeGradient("someone-else", 0, 1, 0, new float[Spec.ParameterCount]));
        ExpectNoMsg(TimeSpan.FromMilliseconds(500));
    }

    [Fact]
    public void Worker_computes_on_the_shard_each_step_names_and_hands_its_latest_two_thetas_to_a_successor_master()
    {
        var proxy = CreateTestProbe("proxy");
        var oldMaster = CreateTestProbe("old-master");
        var worker = Sys.ActorOf(WorkerActor.Props(proxy.Ref, Train));
        proxy.ExpectMsg<RegisterWorker>();
        oldMaster.Send(worker, new JoinRun(Plan, 1, 2));
        oldMaster.ExpectMsg<JoinAccepted>();

        var model = new Model(Spec, NaiveKernels.Instance);
        var (theta3, theta4) = (new float[model.ParameterCount], new float[model.ParameterCount]);
        model.Initialize(theta3, 3);
        model.Initialize(theta4, 4);
        // Worker 1 computes on shard 0 of 1 (the whole set) in this epoch: batch 12 of 100 samples holds 4 (96..99).
        oldMaster.Send(worker, new ComputeGradient("run", 3, 1, 12, theta3, 0, 1));
        Assert.Equal((3L, 1, 4), oldMaster.ExpectMsg<GradientReply>() is var r3 ? (r3.Step, r3.WorkerIndex, r3.SampleCount) : default);
        oldMaster.Send(worker, new ComputeGradient("run", 4, 1, 13, theta4, 0, 1));
        Assert.Equal(0, oldMaster.ExpectMsg<GradientReply>().SampleCount);   // past the end of its shard

        // The master's node is lost: the worker registers again, telling where it stands.
        Sys.Stop(oldMaster.Ref);
        var again = proxy.FishForMessage<RegisterWorker>(m => m is RegisterWorker { Position: not null }, TimeSpan.FromSeconds(5));
        Assert.Equal(new WorkerPosition("run", 1, 4, 1, 13, 0, 1, true), again.Position);

        proxy.Send(worker, new RequestHeldParameters("run"));
        var held = new[] { proxy.FishForMessage<HeldParameters>(m => m is HeldParameters), proxy.FishForMessage<HeldParameters>(m => m is HeldParameters) };
        Assert.Equal([3L, 4L], held.Select(h => h.Step));
        Assert.Equal(theta3, held[0].Parameters);
        Assert.Equal(theta4, held[1].Parameters);
    }

    /// <summary>
    /// Each kind of bad compute request, after the worker answered step 3: it is dropped and counted, no gradient is
    /// computed for it, and the next good request is answered as if it had never come.
    /// </summary>
    [Theory]
    [InlineData("foreign_run")]
    [InlineData("wrong_length")]
    [InlineData("non_finite")]
    [InlineData("stale_step")]
    [InlineData("duplicate")]
    [InlineData("not_participant")]
    public void A_bad_compute_request_is_dropped_and_the_worker_goes_on(string kind)
    {
        var worker = ActorOfAsTestActorRef<WorkerActor>(WorkerActor.Props(TestActor, Train));
        ExpectMsg<RegisterWorker>();
        worker.Tell(new JoinRun(Plan, 0, 2));
        ExpectMsg<JoinAccepted>();
        var theta = Enumerable.Range(0, Spec.ParameterCount).Select(i => i * 0.01f).ToArray();
        worker.Tell(new ComputeGradient("run", 3, 1, 0, theta));
        var first = FishForMessage<GradientReply>(m => m is GradientReply);
        worker.Tell(new ComputeGradient("run", 3, 1, 0, theta));         // the master asking step 3 again: answered again
        Assert.Equal(first.Gradient, FishForMessage<GradientReply>(m => m is GradientReply).Gradient);
        Assert.Equal(0, worker.UnderlyingActor.Dropped);

        var other = theta.Select(v => v + 1f).ToArray();
        var bad = kind switch
        {
            "foreign_run" => new ComputeGradient("other", 4, 1, 1, other),
            "wrong_length" => new ComputeGradient("run", 4, 1, 1, new float[5]),
            "non_finite" => new ComputeGradient("run", 4, 1, 1, other.Select((v, i) => i == 3 ? float.PositiveInfinity : v).ToArray()),
            "stale_step" => new ComputeGradient("run", 2, 1, 1, other),
            "duplicate" => new ComputeGradient("run", 3, 1, 0, other),     // another θ for a step already served
            _ => new ComputeGradient("run", 4, 1, 1, other),
        };
        var stranger = CreateTestProbe();
        worker.Tell(bad, kind == "not_participant" ? stranger.Ref : TestActor);
        ExpectNoMsg(TimeSpan.FromMilliseconds(300));
        stranger.ExpectNoMsg(TimeSpan.Zero);

        worker.Tell(new ComputeGradient("run", 4, 1, 1, theta));
        var next = FishForMessage<GradientReply>(m => m is GradientReply);
        Assert.Equal(4, next.Step);
        Assert.Equal(1, worker.UnderlyingActor.Dropped);                // the bad one, counted once
    }
}
