using Akka.Actor;
using DistSgd.Actors.Centralized;
using DistSgd.Actors.Steps;
using DistSgd.Actors.Tests.Steps;
using DistSgd.Actors.Transport;

namespace DistSgd.Actors.Tests.Centralized;

/// <summary>
/// The master's step between the socket and the kernels allocates nothing on its thread: opening the gather over the
/// roster's participants, the send loop's bookkeeping (who is asked, shards, endpoints, the frame header), taking the
/// replies in (backup workers' check, the gather, the totals), the fused update and the progress meter (issue 17,
/// decision 0130). The replies themselves are made before the measurement: a frame's record is the data plane's, on
/// its reader thread.
/// </summary>
public class MasterStepAllocationTests
{
    private sealed class Worker(int n) : MinimalActorRef
    {
        public override ActorPath Path { get; } = new RootActorPath(new Address("akka.tcp", "distsgd", $"10.0.0.{n}", 4053)) / "user" / "worker";
        public override IActorRefProvider Provider => throw new NotSupportedException();
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void Steps_of_the_master_allocate_nothing_on_its_thread(int backupWorkers)
    {
        using var replica = ReplicaTests.Make(epochs: 1, hyperparameters: ReplicaTests.SomeHyperparameters);
        int n = replica.Parameters.Length;
        var roster = new WorkerRoster();
        for (int w = 1; w <= 3; w++)
            roster.Register(new Worker(w));
        roster.NumberByAddress();
        for (int index = 0; index < 3; index++)
            roster.Accept(index, $"10.0.0.{index + 1}:9000");
        roster.StartEpoch();
        var gather = new StepGather(replica.Plan.RunId, n);
        var backups = new BackupWorkers(backupWorkers, long.MaxValue / 2);
        var meter = new ProgressMeter(long.MaxValue, TimeSpan.FromDays(1));
        meter.Start([(0, "worker", "a"), (1, "worker", "b"), (2, "worker", "c")]);
        var asked = new List<int>();
        const int warmUp = 20, measured = 500;
        var arrays = Enumerable.Range(0, 3).Select(i => Enumerable.Repeat(0.01f * (i + 1), n).ToArray()).ToArray();
        var replies = Enumerable.Range(0, warmUp + measured)
            .Select(s => Enumerable.Range(0, 3).Select(w => new GradientReply(replica.Plan.RunId, s, w, 1, 0.001, 0.001, arrays[w])
                                                            { FrameBytes = 4 * n + FrameHeader.Size, FiniteOnArrival = true }).ToArray())
            .ToArray();
        long sent = 0, reports = 0;

        void Step(long s)
        {
            // Open (MasterStep's IStepExchange.Open): with backup workers only those not busy are asked.
            var participants = roster.ParticipantIndices;
            if (!backups.Enabled)
                gather.Begin(s, participants);
            else
            {
                asked.Clear();
                for (int i = 0; i < participants.Count; i++)
                    if (!backups.IsBusy(participants[i], s))
                        asked.Add(participants[i]);
                gather.Begin(s, asked, backups.FinishWith(participants.Count, asked.Count));
            }
            // The send loop's bookkeeping (SendParametersDirect), the socket left out.
            for (int i = 0; i < participants.Count; i++)
            {
                int index = participants[i];
                if (!gather.Includes(index))
                    continue;
                backups.Asked(index, s, s);
                var header = new FrameHeader(FrameKind.ComputeGradient, 0, s, 0, replica.Epoch, replica.StepInEpoch, roster.ShardCount, 0, 0, 0,
                                             (ushort)roster.ShardOf(index), 0);
                if (roster.TryEndpoint(index, out var endpoint) && endpoint.Length > 0 && header.Step == s)
                    sent++;
            }
            // The replies (MasterStep.Offer).
            foreach (var reply in replies[s])
            {
                if (backups.Answered(reply.WorkerIndex, reply.Step, gather.Step, gather.IsOpen))
                    continue;
                if (gather.Offer(reply) == GatherOutcome.Accepted)
                    replica.Totals.AddReceived(((DistSgd.Actors.Protocol.IGradientContribution)reply).WireBytes);
            }
            Assert.True(gather.IsComplete);
            gather.Close();
            var outcome = replica.Apply(gather, 0.002);
            Assert.Null(outcome.Divergence);
            if (meter.StepDone(gather.Replies, 0.002, replica.Totals, 1, replica.StepInEpoch + 1) is not null)
                reports++;   // the epoch's first step only: the interval is a day
            replica.Advance();
        }

        long allocated = StepAllocations.Measure(Step, warmUp, measured);

        Assert.Equal(warmUp + measured, replica.Step);
        Assert.Equal(3L * (warmUp + measured), sent);   // every participant was asked at every step
        Assert.Equal(1, reports);
        Assert.Equal(0, allocated);
    }

    [Fact]
    public void The_participant_indices_follow_the_roster()
    {
        var roster = new WorkerRoster();
        var workers = Enumerable.Range(1, 3).Select(w => new Worker(w)).ToArray();
        foreach (var w in workers)
            roster.Register(w);
        roster.NumberByAddress();
        Assert.Equal([0, 1, 2], roster.ParticipantIndices);

        roster.Evict(1);
        Assert.Equal([0, 2], roster.ParticipantIndices);

        roster.Register(workers[1], 1);
        Assert.True(roster.JoinUnderWay(workers[1], 1, null));
        Assert.Equal([0, 2], roster.ParticipantIndices);   // joins from the next epoch
        roster.StartEpoch();
        Assert.Equal([0, 1, 2], roster.ParticipantIndices);

        roster.Clear();
        Assert.Empty(roster.ParticipantIndices);
    }
}
