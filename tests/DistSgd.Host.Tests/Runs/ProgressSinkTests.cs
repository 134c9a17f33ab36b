using DistSgd.Actors.Centralized;
using DistSgd.Actors.Decentralized;
using DistSgd.Actors.Steps;
using DistSgd.Host.Runs;
using DistSgd.Numerics.Training;

namespace DistSgd.Host.Tests.Runs;

public class ProgressSinkTests
{
    private static readonly EpochMetrics Epoch = new(1, 10, 0.5, 0.6, 0.7, 1.0, 100, 0.05);

    [Fact]
    public async Task Epochs_and_notes_reach_their_callbacks_and_a_completed_run_ends()
    {
        var output = new StringWriter();
        var epochs = new List<EpochMetrics>();
        var sink = new ProgressSink(output, epochs.Add);
        var completed = new RunProgress.RunCompleted([1f, 2f], new TrainingResult([Epoch], StopReason.EpochLimit, 1.0));

        sink.Report(new RunProgress.EpochCompleted(Epoch));
        sink.Report(new RunProgress.Note("worker 1 left the run"));
        Assert.False(sink.Ended.IsCompleted);
        sink.Report(completed);
        sink.Report(new RunProgress.RunFailed("too late"));

        Assert.Equal([Epoch], epochs);
        Assert.Equal("cluster: worker 1 left the run" + Environment.NewLine, output.ToString());
        Assert.Same(completed, await sink.Ended);
    }

    [Fact]
    public async Task A_workers_RunEnded_ends_only_a_sink_told_that_it_does()
    {
        var cluster = new ProgressSink(TextWriter.Null, _ => { });
        var node = new ProgressSink(TextWriter.Null, _ => { }) { AlsoEnds = m => m is RunEnded };

        cluster.Report(new RunEnded("run"));
        node.Report(new RunEnded("run"));

        Assert.False(cluster.Ended.IsCompleted);
        Assert.IsType<RunEnded>(await node.Ended);
    }

    [Fact]
    public void A_finished_peer_goes_to_its_callback_and_does_not_end_the_run()
    {
        var finished = new List<PeerFinished>();
        var sink = new ProgressSink(TextWriter.Null, _ => { }) { OnPeerFinished = finished.Add };
        var peer = new PeerFinished(2, [1f], [0xAB]);

        sink.Report(peer);

        Assert.Equal([peer], finished);
        Assert.False(sink.Ended.IsCompleted);
    }

    [Fact]
    public void A_failed_run_outcome_throws_with_its_reason()
    {
        var error = Assert.Throws<TrainingFailedException>(() => RunCoordinators.Completed(new RunProgress.RunFailed("every worker was lost")));
        Assert.Equal("every worker was lost", error.Message);
    }
}
