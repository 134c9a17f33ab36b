using Akka.Actor;
using Akka.Event;
using DistSgd.Actors.Protocol;
using DistSgd.Actors.Steps;

namespace DistSgd.Actors.Decentralized;

/// <summary>
/// The run as one peer sees it, shared by the <see cref="PeerActor"/> and the collaborators it drives
/// (<see cref="PeerStep"/>, <see cref="EpochEndRound"/>, <see cref="PeerLossRound"/>): the replica and the parts
/// around it, who takes part, and the counts the epoch metrics report. It decides nothing; each field has one writer.
/// </summary>
internal sealed class PeerRun(PeerSetup setup, DistSgdSettings settings, ILoggingAdapter log, Replica replica,
                              StepBuffer buffer, StepUndo undo, ShareExchange shares, DropLog drops)
{
    public PeerSetup Setup { get; } = setup;

    /// <summary>This peer's node's cluster address.</summary>
    public string SelfAddress { get; init; } = "";
    public RunPlan Plan => Setup.Plan;
    public DistSgdSettings Settings { get; } = settings;
    public ILoggingAdapter Log { get; } = log;
    public Replica Replica { get; } = replica;
    public StepBuffer Buffer { get; } = buffer;
    public StepUndo Undo { get; } = undo;
    public ShareExchange Shares { get; } = shares;
    public DropLog Drops { get; } = drops;
    public HashRound HashRound { get; } = new();
    public ResyncCheck ResyncCheck { get; } = new();

    /// <summary>The node ids still taking part (the start barrier fills it; an agreement on a peer loss shrinks it).</summary>
    public SortedSet<int> Participants { get; } = new();

    /// <summary>Every peer's node id by its address, from the start barrier and the joins since (a peer that came back: its latest id).</summary>
    public Dictionary<string, int> NodeIds { get; } = new(StringComparer.Ordinal);

    /// <summary>Every peer's actor by node id, from the start barrier and the joins since: on the Akka transport a share must come from the actor of the node it names.</summary>
    public Dictionary<int, IActorRef> Peers { get; } = new();

    /// <summary>Every peer's data endpoint by node id ("" on the Akka transport), from the start barrier and the joins since.</summary>
    public Dictionary<int, string> Endpoints { get; } = new();

    /// <summary>Every peer's data-plane key by node id (none on the Akka transport), from the start barrier and the joins since.</summary>
    public Dictionary<int, byte[]> Keys { get; } = new();

    /// <summary>The node id the next late peer takes: every id below it was given out once (<see cref="PeerAdmission"/>).</summary>
    public int NextNodeId { get; set; }

    /// <summary>Shares (Akka transport) naming a node id not given out yet here, held until the epoch end that takes that node in.</summary>
    public List<(GradientShare Share, IActorRef Sender)> Unjudged { get; } = new();

    /// <summary>At most this many shares are held in <see cref="Unjudged"/> (a window of steps from every node id the run can give out).</summary>
    public int UnjudgedLimit => StepBuffer.DefaultWindow * Admission.NodeIdLimit;

    /// <summary>Late peers asking to join, and which of them the lead admits at an epoch's end.</summary>
    public PeerAdmission Admission { get; } = new(setup.PeerCount, settings.MaxPeers);

    /// <summary>This peer's node id; -1 before the start barrier.</summary>
    public int NodeId { get; set; } = -1;

    /// <summary>The live progress the lead peer reports, or null on the others.</summary>
    public ProgressMeter? Meter { get; set; }

    /// <summary>Steps of the epoch the survivors of a peer loss skipped (left out of the epoch's step count).</summary>
    public long SkippedSteps { get; set; }

    /// <summary>Messages of other runs, stale hashes and reports, counted as drops.</summary>
    public long DroppedOther { get; set; }

    /// <summary>Whether this peer leads (the lowest node id still participating): it checkpoints, evaluates and reports.</summary>
    public bool IsLead => NodeId == Participants.Min;

    public long DroppedTotal => Buffer.DroppedTotal + ResyncCheck.DroppedTotal + DroppedOther;

    /// <summary>This peer's step trace, or null: the notes it reports (start, suspects, decisions, a new lead) are its instants.</summary>
    public StepTrace? Trace { get; set; }

    /// <summary>Tells the local reporter (epochs, notes, the run's end); a note is also an instant of the trace.</summary>
    public void Report(object message)
    {
        if (message is RunProgress.Note note)
            Trace?.Instant(note.Text);
        Setup.Reporter.Tell(message);
    }
}
