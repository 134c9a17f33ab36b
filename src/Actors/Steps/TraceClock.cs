using System.Diagnostics;
using Akka.Actor;
using Akka.Cluster;
using DistSgd.Actors.Protocol;

namespace DistSgd.Actors.Steps;

/// <summary>
/// Node → the reference node's <see cref="TraceClock"/> actor: "what does your clock read?" <paramref name="SentAt"/>:
/// the sender's clock (monotonic, nanoseconds) when it sent this. Reply: <see cref="ClockEcho"/>.
/// </summary>
public sealed record ClockProbe(long SentAt) : IDistSgdMessage;

/// <summary>
/// The reference node's <see cref="TraceClock"/> actor → the prober: its <see cref="ClockProbe.SentAt"/> and the
/// reference's clock (nanoseconds) when it answered, <paramref name="EchoAt"/>.
/// </summary>
public sealed record ClockEcho(long SentAt, long EchoAt) : IDistSgdMessage;

/// <summary>
/// Lines up the step traces of a run's processes (--trace on `distsgd node`): each node's actor probes the reference
/// node (the lowest address among the members Up, the same on every node) over Akka, as NTP does: a probe sent at t₀
/// (own clock), echoed at e (reference's clock), back at t₁ (own clock) says the reference reads e when this node reads
/// (t₀ + t₁)/2, give or take half the round trip; of a round of <see cref="ProbesPerRound"/> probes, the one with the
/// shortest round trip is kept (<see cref="Estimate"/>). A round runs at start and every <see cref="RoundInterval"/>
/// (clocks drift a few µs per second); the latest estimate is <see cref="StepTraces.ClockOffsetTicks"/>.
/// </summary>
public sealed class TraceClock : ReceiveActor, IWithTimers
{
    /// <summary>The actor's name on every node (/user/trace-clock).</summary>
    public const string ActorName = "trace-clock";

    public const int ProbesPerRound = 16;

    public static readonly TimeSpan RoundInterval = TimeSpan.FromSeconds(10);

    private static readonly TimeSpan ProbeInterval = TimeSpan.FromMilliseconds(50);
    private readonly List<(long SentAt, long EchoAt, long ReceivedAt)> _samples = new();
    private int _probesLeft;
    private readonly bool _probe;
    private Address? _reference;

    /// <param name="probe">Whether this node probes the reference (it is traced); every node answers probes.</param>
    public TraceClock(bool probe)
    {
        _probe = probe;
        Receive<ClockProbe>(probe => Sender.Tell(new ClockEcho(probe.SentAt, NowNanoseconds())));
        Receive<ClockEcho>(echo =>
        {
            _samples.Add((echo.SentAt, echo.EchoAt, NowNanoseconds()));
            if (_samples.Count == ProbesPerRound)
                Conclude();
        });
        Receive<Round>(_ => StartRound());
        Receive<Probe>(_ => SendProbe());
    }

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(bool probe) => Akka.Actor.Props.Create(() => new TraceClock(probe));

    /// <summary>The monotonic clock in nanoseconds (Stopwatch ticks scaled: machines may count ticks differently).</summary>
    public static long NowNanoseconds() => (long)(Stopwatch.GetTimestamp() * (1e9 / Stopwatch.Frequency));

    /// <summary>
    /// The reference clock's offset from this one, in nanoseconds (reference = own + offset), from the sample with the
    /// shortest round trip, and that round trip; null without samples.
    /// </summary>
    public static (long Offset, long RoundTrip)? Estimate(IEnumerable<(long SentAt, long EchoAt, long ReceivedAt)> samples)
    {
        (long Offset, long RoundTrip)? best = null;
        foreach (var (sent, echo, received) in samples)
        {
            long roundTrip = received - sent;
            if (roundTrip < 0 || (best is { } b && b.RoundTrip <= roundTrip))
                continue;
            best = (echo - (sent + roundTrip / 2), roundTrip);
        }
        return best;
    }

    protected override void PreStart()
    {
        if (_probe)
            Timers.StartPeriodicTimer(nameof(Round), Round.Instance, TimeSpan.Zero, RoundInterval);
    }

    private void StartRound()
    {
        Conclude();
        var up = Cluster.Get(Context.System).State.Members.Where(m => m.Status == MemberStatus.Up).Select(m => m.Address).ToList();
        _reference = up.Count == 0 ? null : up.Min(Member.AddressOrdering);
        var self = Cluster.Get(Context.System).SelfAddress;
        if (_reference is null || _reference == self)
        {
            StepTraces.ClockOffsetTicks = 0;
            return;
        }
        _probesLeft = ProbesPerRound;
        Timers.StartPeriodicTimer(nameof(Probe), Probe.Instance, TimeSpan.Zero, ProbeInterval);
    }

    private void SendProbe()
    {
        if (_probesLeft-- <= 0 || _reference is null)
        {
            Timers.Cancel(nameof(Probe));
            return;
        }
        Context.ActorSelection(new RootActorPath(_reference) / "user" / ActorName).Tell(new ClockProbe(NowNanoseconds()));
    }

    /// <summary>The last round's estimate becomes the process's offset.</summary>
    private void Conclude()
    {
        if (Estimate(_samples) is { } estimate)
            StepTraces.ClockOffsetTicks = (long)(estimate.Offset * (Stopwatch.Frequency / 1e9));
        _samples.Clear();
    }

    protected override void PostStop()
    {
        if (_probe)
            Conclude();
    }

    private sealed class Round
    {
        public static readonly Round Instance = new();
    }

    private sealed class Probe
    {
        public static readonly Probe Instance = new();
    }
}
