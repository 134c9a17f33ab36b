using Akka.Actor;
using DistSgd.Actors.Centralized;
using DistSgd.Actors.Steps;

namespace DistSgd.Actors.Tests.Steps;

public class StepLoopTests
{
    /// <summary>Timers that only remember which step's timeout is set.</summary>
    private sealed class ManualTimers : ITimerScheduler
    {
        public Dictionary<object, object> Active { get; } = new();

        public void StartSingleTimer(object key, object msg, TimeSpan timeout) => Active[key] = msg;
        public void StartSingleTimer(object key, object msg, TimeSpan timeout, IActorRef sender) => Active[key] = msg;
        public void StartPeriodicTimer(object key, object msg, TimeSpan interval) => Active[key] = msg;
        public void StartPeriodicTimer(object key, object msg, TimeSpan interval, IActorRef sender) => Active[key] = msg;
        public void StartPeriodicTimer(object key, object msg, TimeSpan initialDelay, TimeSpan interval) => Active[key] = msg;
        public void StartPeriodicTimer(object key, object msg, TimeSpan initialDelay, TimeSpan interval, IActorRef sender) => Active[key] = msg;
        public bool IsTimerActive(object key) => Active.ContainsKey(key);
        public void Cancel(object key) => Active.Remove(key);
        public void CancelAll() => Active.Clear();
        public IReadOnlyCollection<object> ActiveTimers => Active.Keys;
    }

    /// <summary>A master-like exchange over two participants that records what the loop asked of it.</summary>
    private sealed class RecordingExchange(StepGather gather, Func<long> step) : IStepExchange
    {
        public List<string> Calls { get; } = new();
        public bool GoOn { get; set; } = true;
        public StepLoop Loop { get; set; } = null!;

        public StepGather? Open()
        {
            gather.Begin(step(), [0, 1]);
            return gather;
        }

        public void Broadcast() => Calls.Add($"broadcast {step()}");
        public bool AfterBegin() => true;
        public void AskAgain(IReadOnlyCollection<int> missing)
        {
            Calls.Add($"ask again {string.Join(",", missing.Order())}");
            Loop.Begin();
        }

        public string NothingArrived(IReadOnlyCollection<int> missing) => "silent";
        public bool GoOnWithout(IReadOnlyCollection<int> missing) => GoOn;
        public bool BeforeApply(StepGather g) => true;
        public void AfterApply(StepGather g, double wallSeconds, bool diverged) => Calls.Add($"applied {g.Step}");
        public bool EndEpoch()
        {
            Calls.Add("epoch end");
            return false;
        }

        public void Fail(string reason) => Calls.Add($"fail {reason}");
    }

    private static GradientReply Reply(long step, int worker) =>
        new("r", step, worker, 2, 1.0, 0, Enumerable.Repeat(1f, ReplicaTests.Spec.ParameterCount).ToArray());

    private static (StepLoop Loop, RecordingExchange Exchange, StepGather Gather, Replica Replica, ManualTimers Timers) Make()
    {
        var replica = ReplicaTests.Make(epochs: 1);
        var gather = new StepGather(replica.Plan.RunId, replica.Parameters.Length);
        var exchange = new RecordingExchange(gather, () => replica.Step);
        var timers = new ManualTimers();
        var loop = new StepLoop(replica, exchange, timers, TimeSpan.FromSeconds(1));
        exchange.Loop = loop;
        return (loop, exchange, gather, replica, timers);
    }

    [Fact]
    public void A_step_is_broadcast_gathered_applied_and_followed_by_the_next_until_the_epoch_ends()
    {
        var (loop, exchange, gather, replica, timers) = Make();
        loop.Begin();
        Assert.Equal(new StepLoop.StepTimedOut(0), timers.Active[nameof(StepLoop.StepTimedOut)]);
        gather.Offer(Reply(0, 0));
        loop.TryFinish();
        Assert.Equal(0, replica.Step);   // still waiting for worker 1
        gather.Offer(Reply(0, 1));
        loop.TryFinish();
        gather.Offer(Reply(1, 0));
        gather.Offer(Reply(1, 1));
        loop.TryFinish();

        Assert.Equal(["broadcast 0", "applied 0", "broadcast 1", "applied 1", "epoch end"], exchange.Calls);
        Assert.Equal(2, replica.Step);
        Assert.Empty(timers.Active);
    }

    [Fact]
    public void A_silent_step_is_asked_again_twice_then_the_run_fails()
    {
        var (loop, exchange, _, _, _) = Make();
        loop.Begin();
        for (int i = 0; i < 3; i++)
            loop.HandleTimeout(new StepLoop.StepTimedOut(0));

        Assert.Equal(["broadcast 0", "ask again 0,1", "broadcast 0", "ask again 0,1", "broadcast 0", "fail silent"], exchange.Calls);
    }

    [Fact]
    public void A_step_past_its_timeout_goes_on_with_what_arrived_when_the_mode_says_so()
    {
        var (loop, exchange, gather, replica, _) = Make();
        loop.Begin();
        gather.Offer(Reply(0, 1));
        loop.HandleTimeout(new StepLoop.StepTimedOut(0));
        Assert.Equal(1, replica.Step);
        Assert.Contains("applied 0", exchange.Calls);
    }

    [Fact]
    public void A_step_past_its_timeout_stays_open_when_the_mode_handles_the_silent()
    {
        var (loop, exchange, gather, replica, _) = Make();
        exchange.GoOn = false;
        loop.Begin();
        gather.Offer(Reply(0, 1));
        loop.HandleTimeout(new StepLoop.StepTimedOut(0));
        Assert.Equal(0, replica.Step);
        Assert.True(gather.IsOpen);
    }

    [Fact]
    public void A_timeout_of_an_earlier_step_is_ignored()
    {
        var (loop, exchange, gather, _, _) = Make();
        loop.Begin();
        gather.Offer(Reply(0, 0));
        gather.Offer(Reply(0, 1));
        loop.TryFinish();
        loop.HandleTimeout(new StepLoop.StepTimedOut(0));
        Assert.DoesNotContain(exchange.Calls, c => c.StartsWith("ask again") || c.StartsWith("fail"));
    }

    [Fact]
    public void A_non_finite_gradient_is_an_answer_the_step_is_not_asked_again_for()
    {
        var (loop, exchange, gather, replica, _) = Make();
        loop.Begin();
        var nan = Reply(0, 0) with { Gradient = Enumerable.Repeat(float.NaN, replica.Parameters.Length).ToArray() };
        Assert.Equal(GatherOutcome.NonFinite, gather.Offer(nan));
        loop.HandleTimeout(new StepLoop.StepTimedOut(0));

        Assert.DoesNotContain(exchange.Calls, c => c.StartsWith("ask again"));
        Assert.Contains(exchange.Calls, c => c.StartsWith("fail") && c.Contains("diverged", StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public void The_step_timer_is_armed_once_not_at_every_step()
    {
        var (loop, _, gather, replica, timers) = Make();
        var armed = new List<object>();
        loop.Begin();
        armed.Add(timers.Active[nameof(StepLoop.StepTimedOut)]);
        gather.Offer(Reply(0, 0));
        gather.Offer(Reply(0, 1));
        loop.TryFinish();

        Assert.Equal(1, replica.Step);
        Assert.Same(armed[0], timers.Active[nameof(StepLoop.StepTimedOut)]);   // step 1 runs under step 0's timer
    }

    [Fact]
    public void The_timer_of_an_earlier_step_arms_again_for_the_rest_of_the_open_steps_timeout()
    {
        var (loop, exchange, gather, _, timers) = Make();
        loop.Begin();
        gather.Offer(Reply(0, 0));
        gather.Offer(Reply(0, 1));
        loop.TryFinish();
        loop.HandleTimeout(new StepLoop.StepTimedOut(0));   // step 0's timer fires while step 1 is open, well within its timeout

        Assert.Equal(new StepLoop.StepTimedOut(1), timers.Active[nameof(StepLoop.StepTimedOut)]);
        Assert.DoesNotContain(exchange.Calls, c => c.StartsWith("ask again"));
        loop.HandleTimeout(new StepLoop.StepTimedOut(1));   // step 1's own timeout is up
        Assert.Contains("ask again 0,1", exchange.Calls);
    }
}
