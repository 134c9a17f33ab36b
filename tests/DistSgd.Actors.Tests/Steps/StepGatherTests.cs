using DistSgd.Actors.Centralized;
using DistSgd.Actors.Steps;

namespace DistSgd.Actors.Tests.Steps;

public class StepGatherTests
{
    private static GradientReply Reply(long step, int worker, string run = "run", int samples = 4, float[]? gradient = null) =>
        new(run, step, worker, samples, 1.0, 0.001, gradient ?? [1f, 2f, 3f]);

    private static StepGather Open(long step = 5)
    {
        var gather = new StepGather("run", parameterCount: 3);
        gather.Begin(step, [0, 1, 2]);
        return gather;
    }

    [Fact]
    public void A_local_step_gathers_the_peers_own_whole_share_and_leaves_the_all_reduce_to_the_averaging_steps()
    {
        // Decision 0136: with local SGD through an all-reduce, only the rounds' averaging steps are the all-reduce's.
        var gather = new StepGather("run", parameterCount: 3);
        gather.ReduceWith(new UnfinishedAllReduce());

        gather.Begin(5, [1], local: true);
        Assert.Null(gather.Reduction);
        Assert.True(gather.Reduces);
        Assert.Equal(GatherOutcome.Accepted, gather.Offer(Reply(5, 1)));
        Assert.True(gather.IsComplete);

        gather.Begin(6, [0, 1]);
        Assert.NotNull(gather.Reduction);
        Assert.Equal(GatherOutcome.WrongLength, gather.Offer(Reply(6, 1)));   // an averaging step's share carries the metadata only
        Assert.Equal(GatherOutcome.Accepted, gather.Offer(Reply(6, 1, gradient: [])));
        Assert.Equal(GatherOutcome.Accepted, gather.Offer(Reply(6, 0, gradient: [])));
        Assert.False(gather.IsComplete);   // every participant answered, the all-reduce has not finished
    }

    /// <summary>An all-reduce whose step never completes.</summary>
    private sealed class UnfinishedAllReduce : DistSgd.Actors.Collectives.IAllReduce
    {
        public Numerics.Training.Collective Kind => Numerics.Training.Collective.Ring;
        public Action<DistSgd.Actors.Collectives.CollectivePart>? Noticed { get; set; }
        public long FirstStep { get; set; }
        public bool IsComplete => false;
        public ReadOnlySpan<float> Average => [];
        public long Samples => 0;
        public void Connect(int self, IReadOnlyDictionary<int, string> endpoints) { }
        public long Send(DistSgd.Actors.Protocol.IGradientContribution share, int epoch, int stepInEpoch, IReadOnlyCollection<int> participants, Action<int, string> unreachable) => 0;
        public void Begin(long step, IReadOnlyCollection<int> participants) { }
        public DistSgd.Actors.Collectives.PartOutcome Take(DistSgd.Actors.Collectives.CollectivePart part, bool stepping, ref long bytesSent) => DistSgd.Actors.Collectives.PartOutcome.Stale;
        public void AddMissing(ISet<int> missing) { }
        public void Dispose() { }
    }

    private static Numerics.Tensors.SparseVector EntriesOf(float[] share)
    {
        var entries = new Numerics.Tensors.SparseVector(share.Length, share.Length);
        entries.Collect(share);
        return entries;
    }

    [Fact]
    public void The_entries_of_a_step_are_there_only_when_every_share_with_samples_has_them()
    {
        // Decision 0141: a step averages entries only when every weighted share carries them; else the dense vectors.
        var gather = Open();
        gather.Offer(Reply(5, 2, gradient: [0, 0, 2f]) with { Entries = EntriesOf([0, 0, 2f]) });
        gather.Offer(Reply(5, 1, samples: 0, gradient: []));
        gather.Offer(Reply(5, 0, gradient: [1f, 0, 0]) with { Entries = EntriesOf([1f, 0, 0]) });
        var entries = gather.Entries();
        Assert.NotNull(entries);
        var indices = entries.Select(e => e is null ? null : e.Indices.ToArray()).ToArray();
        Assert.Equal([0], indices[0]!);
        Assert.Null(indices[1]);
        Assert.Equal([2], indices[2]!);
        Assert.Equal([4, 0, 4], gather.Shares().Weights);

        var dense = Open();
        dense.Offer(Reply(5, 2, gradient: [0, 0, 2f]) with { Entries = EntriesOf([0, 0, 2f]) });
        dense.Offer(Reply(5, 0, gradient: [1f, 0, 0]));   // came over Akka: no entries
        Assert.Null(dense.Entries());

        var empty = Open();
        empty.Offer(Reply(5, 1, samples: 0, gradient: []));
        Assert.Null(empty.Entries());   // nothing weighted: the dense path, as before
    }

    [Fact]
    public void Entries_for_another_length_are_refused_as_the_wrong_length()
    {
        var gather = Open();
        var entries = new Numerics.Tensors.SparseVector(4, 1);
        Assert.Equal(GatherOutcome.WrongLength, gather.Offer(Reply(5, 0) with { Entries = entries }));
    }

    [Fact]
    public void A_step_completes_when_every_participant_has_answered()
    {
        var gather = Open();
        Assert.Equal(GatherOutcome.Accepted, gather.Offer(Reply(5, 2)));
        Assert.Equal(GatherOutcome.Accepted, gather.Offer(Reply(5, 0)));
        Assert.False(gather.IsComplete);
        Assert.Equal(GatherOutcome.Accepted, gather.Offer(Reply(5, 1)));
        Assert.True(gather.IsComplete);
        Assert.Equal([0, 1, 2], gather.Replies.Select(r => r.Participant));
    }

    [Theory]
    [InlineData(4, 0, "run", GatherOutcome.StaleStep)]
    [InlineData(6, 0, "run", GatherOutcome.FutureStep)]
    [InlineData(5, 0, "other", GatherOutcome.ForeignRun)]
    [InlineData(5, 7, "run", GatherOutcome.NotParticipant)]
    public void Messages_outside_the_step_are_dropped_and_counted(long step, int worker, string run, GatherOutcome expected)
    {
        var gather = Open();
        Assert.Equal(expected, gather.Offer(Reply(step, worker, run)));
        Assert.Empty(gather.Replies);
        Assert.Equal(1, gather.Dropped[expected]);
    }

    [Fact]
    public void A_duplicate_is_dropped_and_the_first_kept()
    {
        var gather = Open();
        gather.Offer(Reply(5, 1, gradient: [1f, 1f, 1f]));
        Assert.Equal(GatherOutcome.Duplicate, gather.Offer(Reply(5, 1, gradient: [9f, 9f, 9f])));
        Assert.Equal([1f, 1f, 1f], gather.Replies.Single().Gradient);
    }

    [Fact]
    public void The_data_planes_judgment_of_finiteness_is_taken_and_without_one_every_value_is_checked()
    {
        var gather = Open();
        // The reader judged as the frame arrived: the gather does not read the vector again.
        Assert.Equal(GatherOutcome.NonFinite, gather.Offer(Reply(5, 0) with { FiniteOnArrival = false }));
        Assert.Equal(GatherOutcome.Accepted, gather.Offer(Reply(5, 1) with { FiniteOnArrival = true }));
        // Without a judgment (the Akka transport, a node's own share): every value, not their sum, which may overflow.
        Assert.Equal(GatherOutcome.Accepted, gather.Offer(Reply(5, 2, gradient: [float.MaxValue, float.MaxValue, 1f])));
        Assert.Equal([1, 2], gather.Replies.Select(r => r.Participant));
    }

    [Fact]
    public void Wrong_lengths_and_non_finite_values_are_never_applied()
    {
        var gather = Open();
        Assert.Equal(GatherOutcome.WrongLength, gather.Offer(Reply(5, 0, gradient: [1f, 2f])));
        Assert.Equal(GatherOutcome.NonFinite, gather.Offer(Reply(5, 1, gradient: [1f, float.NaN, 2f])));
        Assert.Equal(GatherOutcome.WrongLength, gather.Offer(Reply(5, 2, samples: 0, gradient: [1f, 2f, 3f])));
        Assert.Empty(gather.Replies);
        Assert.Equal(3, gather.DroppedTotal);
    }

    [Fact]
    public void An_empty_share_with_no_samples_is_accepted()
    {
        var gather = Open();
        Assert.Equal(GatherOutcome.Accepted, gather.Offer(Reply(5, 0, samples: 0, gradient: [])));
    }

    [Fact]
    public void Forgetting_a_lost_participant_can_complete_the_step()
    {
        var gather = Open();
        gather.Offer(Reply(5, 0));
        gather.Offer(Reply(5, 1));
        Assert.True(gather.Forget(2));
        Assert.True(gather.IsComplete);
        Assert.False(gather.Forget(2));
    }

    [Fact]
    public void A_reply_after_the_step_closed_is_stale()
    {
        var gather = Open();
        gather.Offer(Reply(5, 0));
        gather.Close();
        Assert.Equal(GatherOutcome.StaleStep, gather.Offer(Reply(5, 1)));
    }

    [Fact]
    public void A_non_finite_gradient_is_dropped_and_its_sender_no_longer_waited_for()
    {
        var gather = Open();
        gather.Offer(Reply(5, 0));
        Assert.Equal(GatherOutcome.NonFinite, gather.Offer(Reply(5, 1, gradient: [1f, float.PositiveInfinity, 2f])));
        Assert.Equal(GatherOutcome.NonFinite, gather.Offer(Reply(5, 2, gradient: [float.NaN, 0f, 0f])));
        Assert.True(gather.IsComplete);
        Assert.Equal([1, 2], gather.NonFinite.OrderBy(i => i));
        Assert.Single(gather.Replies);
    }
}
