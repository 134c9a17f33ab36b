using System.Collections.Concurrent;
using Akka.Actor;
using Akka.Configuration;
using DistSgd.Actors.Centralized;
using DistSgd.Actors.Protocol;
using DistSgd.Actors.Transport;
using DistSgd.Numerics.Models;
using DistSgd.Numerics.Optim;
using DistSgd.Numerics.Training;

namespace DistSgd.Actors.Tests.Centralized;

/// <summary>
/// The master on the direct transport, with the test playing its two workers through data planes of their own:
/// θ arrives as frames, gradients go back as frames, and a closed data connection is a lost worker.
/// </summary>
public sealed class MasterDirectSpec : Akka.TestKit.Xunit2.TestKit
{
    private static readonly ModelSpec Spec = new(ModelKind.Softmax, 2, 3);   // 9 parameters
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(5);
    private readonly float[] _theta0 = Enumerable.Range(0, 9).Select(i => i * 0.1f).ToArray();

    public MasterDirectSpec()
        : base(ConfigurationFactory.ParseString("distsgd.transport = direct").WithFallback(TestConfig.Node(stepTimeout: "20s")), "master-direct-spec")
    {
    }

    private static DataPlaneOptions Options(FrameKind accepts) =>
        new("run", Spec.ParameterCount, accepts, 1, "127.0.0.1", 0, TimeSpan.FromSeconds(1));

    [Fact]
    public void A_worker_whose_data_connection_closes_is_dropped_at_once_without_waiting_for_the_failure_detector()
    {
        var plan = new RunPlan("run", Spec, 4, 1, 1, 100, 3);
        var reporter = CreateTestProbe();
        var master = Sys.ActorOf(MasterActor.Props(new MasterSetup(plan, 2, _theta0, new SgdOptions(1.0), new TrainingOptions(1, 4, 1), null, reporter)));

        // Two workers: each a probe for the control plane and a data plane that hands θ frames to a queue.
        var probes = new[] { CreateTestProbe(), CreateTestProbe() };
        var inboxes = new[] { new BlockingCollection<object>(), new BlockingCollection<object>() };
        var planes = new DirectDataPlane[2];
        foreach (var probe in probes)
            master.Tell(new RegisterWorker(probe.Ref), probe.Ref);
        string masterEndpoint = "";
        foreach (var probe in probes)
        {
            var join = probe.ExpectMsg<JoinRun>();
            Assert.NotEqual("", join.MasterEndpoint);
            masterEndpoint = join.MasterEndpoint;
            int i = join.WorkerIndex;
            planes[i] = new DirectDataPlane(Options(FrameKind.ComputeGradient), ComputeGradient.FromFrame, inboxes[i].Add);
            planes[i].Trust(0, join.MasterEndpoint, join.MasterKey!);
            master.Tell(new JoinAccepted("run", i, planes[i].Endpoint, planes[i].Key), probe.Ref);
        }
        try
        {
            ComputeGradient Theta(int worker)
            {
                Assert.True(inboxes[worker].TryTake(out var m, Wait), $"worker {worker} got no θ frame");
                return Assert.IsType<ComputeGradient>(m);
            }

            var step0 = new[] { Theta(0), Theta(1) };
            Assert.All(step0, m => Assert.Equal(_theta0, m.Parameters));

            // Worker 0 answers over its data connection; worker 1 closes its connection without answering.
            var reply = new FrameHeader(FrameKind.GradientReply, 0, 0, 0, 1, 0, 4, 4.0, 0.001, 0);
            Assert.True(planes[0].Send(masterEndpoint, reply, Enumerable.Repeat(2f, 9).ToArray()));
            Assert.True(planes[1].Send(masterEndpoint, reply with { Sender = 1, Step = 99 }, Enumerable.Repeat(7f, 9).ToArray()));   // a future step: dropped
            planes[1].Disconnect(masterEndpoint);

            // The step finishes with worker 0's gradient alone, well before the 20 s step timeout: θ₁ = θ₀ − 2.
            var step1 = Theta(0);
            Assert.Equal(1, step1.Step);
            Assert.Equal(_theta0.Select(v => v - 2f), step1.Parameters);
            reporter.FishForMessage<DistSgd.Actors.Steps.RunProgress.Note>(n => n is DistSgd.Actors.Steps.RunProgress.Note { Text: var t } && t.Contains("worker 1") && t.Contains("dropped its data connection"), Wait);

            // Worker 1 is out of the run (the master's cluster does not count it Up): later steps neither send to it nor wait for it.
            Assert.True(planes[1].Send(masterEndpoint, reply with { Sender = 1, Step = 1, SampleCount = 12 }, Enumerable.Repeat(3f, 9).ToArray()));
            Assert.True(planes[0].Send(masterEndpoint, reply with { Step = 1 }, Enumerable.Repeat(1f, 9).ToArray()));
            var step2 = Theta(0);
            Assert.Equal(2, step2.Step);
            Assert.Equal(_theta0.Select(v => v - 2f - 1f), step2.Parameters);   // worker 1's gradient is not averaged in
            Assert.False(inboxes[1].TryTake(out _, TimeSpan.FromMilliseconds(300)));
        }
        finally
        {
            foreach (var plane in planes)
                plane?.Dispose();
        }
    }
}
