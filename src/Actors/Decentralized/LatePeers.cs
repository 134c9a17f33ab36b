using Akka.Actor;
using Akka.Event;
using DistSgd.Actors.Protocol;
using DistSgd.Actors.Steps;
using DistSgd.Numerics.Data;
using DistSgd.Numerics.Training;

namespace DistSgd.Actors.Decentralized;

/// <summary>
/// Elastic decentralized runs (issue 20, decision 0097), both sides: a running peer answers a late peer's
/// <see cref="PeerReady"/> (the lead says the run is under way, or why it cannot join), takes in the peers the lead
/// admitted at an epoch's end, and the lead sends each of them the replica (<see cref="JoinState"/>); a late peer adopts
/// that state and steps with the others. The decisions are <see cref="PeerAdmission"/>'s; this class does their I/O, and the
/// <see cref="PeerActor"/> routes the messages to it.
/// </summary>
internal sealed class LatePeers(PeerRun run, IPeerControl control, PeerStep step)
{
    /// <summary>Late peers the lead refused, logged once each.</summary>
    private readonly HashSet<string> _refused = new(StringComparer.Ordinal);

    private Replica Replica => run.Replica;

    /// <summary>
    /// A late peer's <see cref="PeerReady"/> while this peer takes part in the run: recorded (<see cref="PeerAdmission.Request"/>),
    /// and the lead answers it (<see cref="RunUnderWay"/>); false for a participant's own, which the caller acknowledges as before.
    /// </summary>
    /// <param name="isUpMember">Its address is an Up member of the cluster here and its actor lives there.</param>
    public bool Answer(PeerReady ready, bool isUpMember)
    {
        bool known = run.Admission.Pending.Contains(ready.NodeAddress);
        var answer = run.Admission.Request(ready, StartBarrier.Mismatch(run.Plan, run.Shares.IsDirect, ready), isUpMember, run.NodeIds, run.Peers,
                                           run.Participants, run.NextNodeId, ending: Replica.AtEpochLimit);
        if (answer.Verdict == JoinVerdict.Member)
            return false;
        if (answer.Verdict == JoinVerdict.Pending)
            control.Publish(new PeerPresent(run.Plan.RunId, run.SelfAddress));   // it may take part once this reaches it
        if (answer.Verdict == JoinVerdict.NotYet || !run.IsLead)
            return true;
        var addresses = run.NodeIds.Where(n => run.Participants.Contains(n.Value)).Select(n => n.Key).ToArray();
        ready.Peer.Tell(new RunUnderWay(run.Plan.RunId, Replica.Epoch, run.Participants.Count, answer.Refusal) { Members = addresses });
        if (answer.Verdict == JoinVerdict.Pending && !known)
            run.Report(new RunProgress.Note($"a late peer at {ready.NodeAddress} asks to join: it takes part from the end of the epoch in which every peer hears it (now epoch {Replica.Epoch})"));
        else if (answer.Verdict == JoinVerdict.Refused && _refused.Add(ready.NodeAddress))
            run.Log.Warning("late peer at {0} refused: {1}", ready.NodeAddress, answer.Refusal);
        return true;
    }

    /// <summary>A late peer says every participant's publications reach it: the lead may admit it now.</summary>
    public void Reaches(JoinReady ready)
    {
        if (ready.RunId == run.Plan.RunId && run.Admission.Reaches(ready.NodeAddress))
            run.Log.Info("late peer at {0} hears every participant: it joins at the end of epoch {1}", ready.NodeAddress, Replica.Epoch);
    }

    /// <summary>The late peers the lead admits at this epoch's end, for its hash; none on the others, or when it votes to stop.</summary>
    public PeerJoin[] ForHash(bool votesToStop) =>
        run.IsLead && !votesToStop ? run.Admission.Admit(run.NextNodeId, run.NodeIds, run.Participants) : [];

    /// <summary>
    /// The agreed epoch end admitted <paramref name="joiners"/> (maybe none): every participant takes them in (ids, actors, data
    /// endpoints and keys), judges the shares held for node ids it did not know, and the next epoch is cut among all
    /// (<see cref="PeerStep.ReshardIfDue"/>, called next by the epoch end).
    /// </summary>
    public void TakeIn(PeerJoin[] joiners)
    {
        foreach (var join in joiners)
            Enter(join);
        // Shares that came before this epoch end from node ids unknown then: judged now (a late peer's first share), or dropped.
        var held = run.Unjudged.ToList();
        run.Unjudged.Clear();
        foreach (var (share, sender) in held)
            step.Offer(share, sender);
        if (joiners.Length == 0)
            return;
        run.Admission.Joined(joiners);
        run.Shares.Connect(run.NodeId, run.Endpoints, run.Keys);
        run.Meter?.Start(joiners.Select(j => (j.NodeId, "peer", j.NodeAddress)));
        step.ReshardNextEpoch();
        string text = $"{Describe(joiners)} joined the run: from epoch {Replica.Epoch} {run.Participants.Count} peers take part (nodes {string.Join(", ", run.Participants)})";
        run.Log.Warning(text);
        if (run.IsLead)
            run.Report(new RunProgress.Note(text));
    }

    /// <summary>The lead, once the next epoch is cut: the replica to each peer that joins now, as the others hold it.</summary>
    public void SendState(PeerJoin[] joiners)
    {
        if (joiners.Length == 0 || !run.IsLead)
            return;
        byte[] state = CheckpointFile.Serialize(Replica.Capture());
        var addresses = run.NodeIds.ToDictionary(n => n.Value, n => n.Key);
        var members = run.Participants.Select(id => new PeerJoin(id, addresses[id], run.Peers.GetValueOrDefault(id, ActorRefs.Nobody),
                                                                 run.Endpoints.GetValueOrDefault(id, ""), run.Keys.GetValueOrDefault(id))).ToArray();
        foreach (var join in joiners)
        {
            join.Peer.Tell(new JoinState(run.Plan.RunId, join.NodeId, members, run.Undo.Senders, run.SkippedSteps, state));
            Replica.Totals.AddSent(state.Length);
        }
    }

    /// <summary>The run ended (or stops at this epoch's end): every late peer still waiting hears it cannot join.</summary>
    public void RefuseWaiting(string why)
    {
        foreach (var ready in run.Admission.TakePending())
            ready.Peer.Tell(new RunUnderWay(run.Plan.RunId, Replica.Epoch, run.Participants.Count, why));
    }

    /// <summary>
    /// The late peer: adopts the lead's <see cref="JoinState"/> (the replica, who takes part, its node id) so that its next
    /// step is the others' next step on the same bits; returns why it cannot (the run is not changed then), or null.
    /// </summary>
    public string? Adopt(JoinState state, string selfAddress)
    {
        if (PeerAdmission.StateProblem(state, run.Plan.RunId, selfAddress, run.Admission.NodeIdLimit) is { } problem)
            return problem;
        Checkpoint checkpoint;
        try
        {
            checkpoint = CheckpointFile.Deserialize(state.State, "the join state from the lead peer");
        }
        catch (DataFormatException e)
        {
            return e.Message;
        }
        if (checkpoint.Parameters.Length != Replica.Parameters.Length || checkpoint.Optimizer.Velocity.Length != Replica.Optimizer.State.Velocity.Length)
            return $"the join state holds {checkpoint.Parameters.Length} parameters and {checkpoint.Optimizer.Velocity.Length} velocities, " +
                   $"this model {Replica.Parameters.Length} and {Replica.Optimizer.State.Velocity.Length}";
        Replica.Adopt(checkpoint);
        run.NodeId = state.NodeId;
        foreach (var member in state.Members)
            Enter(member);
        run.SkippedSteps = state.SkippedSteps;
        run.Shares.Connect(run.NodeId, run.Endpoints, run.Keys);
        run.Buffer.FirstStep = Replica.Step;
        if (run.Shares.AllReduce is { } reduce)
            reduce.FirstStep = Replica.Step;
        run.Undo.Joined(Replica.Step - 1, state.AppliedSenders);
        step.AdoptBalance(checkpoint.Balance);
        step.ReshardNextEpoch();
        step.ReshardIfDue(replan: false);   // the schedule came re-planned with the state
        return null;
    }

    /// <summary>A participant from now on.</summary>
    private void Enter(PeerJoin member)
    {
        run.NodeIds[member.NodeAddress] = member.NodeId;
        run.Peers[member.NodeId] = member.Peer;
        run.Endpoints[member.NodeId] = member.DataEndpoint;
        if (member.DataKey is not null)
            run.Keys[member.NodeId] = member.DataKey;
        run.Participants.Add(member.NodeId);
        run.NextNodeId = Math.Max(run.NextNodeId, member.NodeId + 1);
    }

    private static string Describe(PeerJoin[] joiners) =>
        string.Join(", ", joiners.Select(j => $"node {j.NodeId} (at {j.NodeAddress})"));
}
