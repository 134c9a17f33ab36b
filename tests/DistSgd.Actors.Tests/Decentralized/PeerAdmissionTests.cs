using Akka.Actor;
using DistSgd.Actors.Decentralized;
using DistSgd.Actors.Protocol;
using DistSgd.Numerics.Models;

namespace DistSgd.Actors.Tests.Decentralized;

/// <summary>Which late peers a running decentralized run admits, with which node ids, and which it refuses (decision 0097).</summary>
public class PeerAdmissionTests : Akka.TestKit.Xunit2.TestKit
{
    private static readonly RunPlan Plan = new("run", new ModelSpec(ModelKind.Softmax, 2, 3), 4, 1, 5, 42, 4);
    private const string A = "akka.tcp://distsgd@h:1", B = "akka.tcp://distsgd@h:2", C = "akka.tcp://distsgd@h:3";
    private const string Late1 = "akka.tcp://distsgd@h:7", Late2 = "akka.tcp://distsgd@h:5";

    /// <summary>Three peers at the start barrier: ids by address rank.</summary>
    private readonly Dictionary<string, int> _nodeIds = new() { [A] = 0, [B] = 1, [C] = 2 };
    private readonly Dictionary<int, IActorRef> _peers;
    private readonly SortedSet<int> _participants = [0, 1, 2];

    public PeerAdmissionTests() => _peers = new() { [0] = Actor("a"), [1] = Actor("b"), [2] = Actor("c") };

    /// <summary>A stand-in actor reference, equal only to itself (what PeerReady.Peer is compared by).</summary>
    private IActorRef Actor(string? name = null) => (name is null ? CreateTestProbe() : CreateTestProbe(name)).Ref;

    private PeerReady Ready(string address, IActorRef? peer = null) => new(Plan, address, peer ?? Actor());

    private JoinAnswer Request(PeerAdmission admission, PeerReady ready, string? mismatch = null, bool isUpMember = true, bool ending = false, int nextNodeId = 3) =>
        admission.Request(ready, mismatch, isUpMember, _nodeIds, _peers, _participants, nextNodeId, ending);

    [Fact]
    public void A_participants_own_announcement_is_no_join()
    {
        var admission = new PeerAdmission(3);
        Assert.Equal(JoinVerdict.Member, Request(admission, Ready(B, _peers[1])).Verdict);
        Assert.Empty(admission.Pending);
        Assert.True(PeerAdmission.IsMember(Ready(B, _peers[1]), _nodeIds, _peers, _participants));
    }

    [Fact]
    public void Late_peers_take_new_node_ids_in_address_order_at_the_epochs_end()
    {
        var admission = new PeerAdmission(3);
        Assert.Equal(JoinAnswer.Pending, Request(admission, Ready(Late1)));
        Assert.Equal(JoinAnswer.Pending, Request(admission, Ready(Late2)));
        Assert.Equal(JoinAnswer.Pending, Request(admission, Ready(Late1)));          // announced again: still one request
        Assert.Empty(admission.Admit(3, _nodeIds, _participants));                    // neither hears every participant yet
        Assert.True(admission.Reaches(Late1));
        Assert.Equal([(3, Late1)], admission.Admit(3, _nodeIds, _participants).Select(j => (j.NodeId, j.NodeAddress)));
        Assert.True(admission.Reaches(Late2));
        Assert.False(admission.Reaches("akka.tcp://distsgd@h:99"));                   // not pending: nothing to admit

        var joins = admission.Admit(3, _nodeIds, _participants);
        Assert.Equal([(3, Late2), (4, Late1)], joins.Select(j => (j.NodeId, j.NodeAddress)));
        Assert.Equal(joins, admission.Admit(3, _nodeIds, _participants), new JoinComparer());   // pure: the same requests, the same joins
        admission.Joined(joins);
        Assert.Empty(admission.Pending);
    }

    [Fact]
    public void A_peer_that_comes_back_takes_a_new_id_once_its_old_one_is_lost_and_not_before()
    {
        var admission = new PeerAdmission(3);
        var again = Ready(C, Actor("c-again"));                                       // a new incarnation at node 2's address
        Assert.Equal(JoinAnswer.Pending, Request(admission, again));
        admission.Reaches(C);
        Assert.Empty(admission.Admit(3, _nodeIds, _participants));                    // node 2 still takes part: not yet

        _participants.Remove(2);                                                     // the others agreed node 2 is lost
        var joins = admission.Admit(3, _nodeIds, _participants);
        Assert.Equal([(3, C)], joins.Select(j => (j.NodeId, j.NodeAddress)));
        Assert.Same(again.Peer, joins[0].Peer);
    }

    [Fact]
    public void A_late_peer_is_refused_with_the_reason_when_its_plan_differs_the_run_ends_or_the_run_is_full()
    {
        var admission = new PeerAdmission(3, maxPeers: 4);
        var differs = Request(admission, Ready(Late1), mismatch: "the peer at h:7 runs a different run configuration: batch: 4 here vs 8 at h:7");
        Assert.Equal(JoinVerdict.Refused, differs.Verdict);
        Assert.Contains("batch: 4 here vs 8", differs.Refusal);

        Assert.Contains("ending", Request(admission, Ready(Late1), ending: true).Refusal);

        Assert.Equal(JoinAnswer.Pending, Request(admission, Ready(Late1)));
        var full = Request(admission, Ready(Late2));
        Assert.Equal(JoinVerdict.Refused, full.Verdict);
        Assert.Contains("takes at most 4 (distsgd.max-peers", full.Refusal);
        Assert.Equal([Late1], admission.Pending);
    }

    [Fact]
    public void A_late_peer_that_is_not_an_up_member_yet_is_not_answered_and_one_that_left_is_forgotten()
    {
        var admission = new PeerAdmission(3);
        Assert.Equal(JoinAnswer.NotYet, Request(admission, Ready(Late1), isUpMember: false));
        Assert.Empty(admission.Pending);
        Request(admission, Ready(Late1));
        admission.Reaches(Late1);
        admission.Forget(Late1);
        Assert.Empty(admission.Admit(3, _nodeIds, _participants));
    }

    [Fact]
    public void Node_ids_stay_below_the_limit_every_peer_of_the_run_accepts()
    {
        var admission = new PeerAdmission(3, maxPeers: 100);
        Assert.Equal(PeerAdmission.NodeIdLimitFor(3), admission.MaxPeers);          // capped
        var used = Request(admission, Ready(Late1), nextNodeId: PeerAdmission.NodeIdLimitFor(3));
        Assert.Equal(JoinVerdict.Refused, used.Verdict);
        Assert.Contains("node ids", used.Refusal);
        Assert.Equal(6, new PeerAdmission(3).MaxPeers);                               // by default twice the planned peers
    }

    [Fact]
    public void Waiting_late_peers_are_handed_over_once_to_be_refused_when_the_run_ends()
    {
        var admission = new PeerAdmission(3);
        Request(admission, Ready(Late1));
        Assert.Equal([Late1], admission.TakePending().Select(r => r.NodeAddress));
        Assert.Empty(admission.TakePending());
    }

    [Fact]
    public void A_join_state_for_another_peer_or_with_ids_out_of_range_or_twice_is_not_adopted()
    {
        var self = new PeerJoin(3, Late1, ActorRefs.Nobody, "", null);
        var lead = new PeerJoin(0, A, ActorRefs.Nobody, "", null);
        JoinState State(int nodeId, params PeerJoin[] members) => new("run", nodeId, members, [0, 1, 2], 0, []);
        Assert.Null(PeerAdmission.StateProblem(State(3, lead, self), "run", Late1, 20));
        Assert.Contains("run other", PeerAdmission.StateProblem(State(3, lead, self) with { RunId = "other" }, "run", Late1, 20));
        Assert.Contains("does not name this peer", PeerAdmission.StateProblem(State(0, lead, self), "run", Late1, 20));
        Assert.Contains("this run's are 0 to 19", PeerAdmission.StateProblem(State(3, lead, self with { NodeId = 3 }, lead with { NodeId = 25 }), "run", Late1, 20));
        Assert.Contains("twice", PeerAdmission.StateProblem(State(3, lead, self, lead with { NodeId = 1 }), "run", Late1, 20));
    }

    private sealed class JoinComparer : IEqualityComparer<PeerJoin>
    {
        public bool Equals(PeerJoin? x, PeerJoin? y) => (x!.NodeId, x.NodeAddress, x.Peer) == (y!.NodeId, y.NodeAddress, y.Peer);
        public int GetHashCode(PeerJoin obj) => obj.NodeId;
    }
}
