using DistSgd.Actors.Protocol;

namespace DistSgd.Actors.Steps;

/// <summary>
/// A <see cref="StepGather"/> that also holds contributions of the next few steps: in the decentralized mode a
/// faster peer's share for step s+1 can arrive while this peer still gathers step s, and it must be neither
/// lost nor applied early. A plain class, testable without an ActorSystem.
/// </summary>
/// <remarks>
/// A contribution of another run is dropped at once; one for a step after the current one (up to
/// <see cref="Window"/> steps ahead) is held, once per participant and step, until <see cref="Begin"/> opens
/// that step and offers it to the gather under the gather's rules (so a held share of a peer that is no
/// longer a participant, of the wrong length or not finite is dropped then). Held shares of a step that is
/// skipped count as stale.
/// </remarks>
public sealed class StepBuffer
{
    /// <summary>How many steps ahead a share is held; a synchronous peer is never more than one step ahead unless a step timed out.</summary>
    public const int DefaultWindow = 4;

    /// <summary>Held contributions sorted by step, then participant: a list, so holding and handing over allocate nothing.</summary>
    private readonly List<IGradientContribution> _held = new();
    private readonly Dictionary<GatherOutcome, long> _dropped = new();

    public StepBuffer(string runId, int parameterCount, int window = DefaultWindow)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(window);
        Gather = new StepGather(runId, parameterCount);
        Window = window;
    }

    /// <summary>The current step's gather: what it waits for and what it accepted.</summary>
    public StepGather Gather { get; }

    public int Window { get; }

    /// <summary>Contributions held for later steps.</summary>
    public int HeldCount => _held.Count;

    /// <summary>Dropped so far, by reason, the gather's drops included.</summary>
    public IReadOnlyDictionary<GatherOutcome, long> Dropped =>
        _dropped.Concat(Gather.Dropped).GroupBy(e => e.Key).ToDictionary(g => g.Key, g => g.Sum(e => e.Value));

    public long DroppedTotal => _dropped.Values.Sum() + Gather.DroppedTotal;

    /// <summary>
    /// The first step this buffer will open (a resumed run starts past 0): before it opens, shares of the
    /// <see cref="Window"/> steps from it on are held, as a fresh run holds those from step 0.
    /// </summary>
    public long FirstStep { get; set; }

    /// <summary>Offers a contribution to the current step, or holds it for a later one.</summary>
    public GatherOutcome Offer(IGradientContribution share, bool fromParticipant = true)
    {
        if (!fromParticipant)
            return Drop(GatherOutcome.NotParticipant);
        if (share.RunId != Gather.RunId || share.Step <= Gather.Step)
            return Gather.Offer(share);
        if (share.Step > Math.Max(Gather.Step, FirstStep - 1) + Window)
            return Drop(GatherOutcome.FutureStep);
        int at = _held.Count;
        while (at > 0 && Before(share, _held[at - 1]))
            at--;
        if (at > 0 && _held[at - 1].Step == share.Step && _held[at - 1].Participant == share.Participant)
            return Drop(GatherOutcome.Duplicate);
        _held.Insert(at, share);
        return GatherOutcome.Buffered;
    }

    /// <summary>
    /// Opens <paramref name="step"/> for <paramref name="participants"/> and offers it the contributions held
    /// for it, in participant order; held contributions of earlier steps are dropped as stale.
    /// </summary>
    /// <param name="local">A local step of a local-SGD round (<see cref="StepGather.IsLocal"/>).</param>
    public void Begin(long step, IEnumerable<int> participants, bool local = false)
    {
        Gather.Begin(step, participants, local: local);
        int due = 0;
        for (; due < _held.Count && _held[due].Step <= step; due++)
        {
            if (_held[due].Step < step)
                _dropped[GatherOutcome.StaleStep] = _dropped.GetValueOrDefault(GatherOutcome.StaleStep) + 1;
            else
                Gather.Offer(_held[due]);
        }
        _held.RemoveRange(0, due);
    }

    /// <summary>Whether <paramref name="a"/> is held before <paramref name="b"/>: by step, then participant.</summary>
    private static bool Before(IGradientContribution a, IGradientContribution b) =>
        a.Step < b.Step || (a.Step == b.Step && a.Participant < b.Participant);

    private GatherOutcome Drop(GatherOutcome reason)
    {
        _dropped[reason] = _dropped.GetValueOrDefault(reason) + 1;
        return reason;
    }
}
