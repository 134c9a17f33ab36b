using System.Diagnostics;
using System.Text.Json;
using DistSgd.Actors.Steps;

namespace DistSgd.Actors.Tests.Steps;

public class StepTraceTests
{
    private static JsonElement[] Events(StepTrace trace)
    {
        var text = new StringWriter();
        trace.Write(text);
        return JsonDocument.Parse(text.ToString()).RootElement.EnumerateArray().ToArray();
    }

    private static long Ms(double ms) => (long)(ms * Stopwatch.Frequency / 1000);

    [Fact]
    public void A_step_is_written_as_chrome_trace_events_with_its_phases_nested_in_it()
    {
        var trace = new StepTrace(3, "peer 3", 4);
        long t = 1_000_000 * Stopwatch.Frequency / 1000;
        trace.Add(StepPhase.Compute, 7, t, t + Ms(2));
        trace.Add(StepPhase.Update, 7, t + Ms(3), t + Ms(3.5));
        trace.StepDone(7, t, t + Ms(4), allocatedBytes: 120);

        var events = Events(trace);
        var spans = events.Where(e => e.GetProperty("ph").GetString() == "X").ToArray();
        var step = spans.Single(e => e.GetProperty("name").GetString() == "step");
        var compute = spans.Single(e => e.GetProperty("name").GetString() == "compute");

        Assert.Contains(events, e => e.GetProperty("ph").GetString() == "M" && e.GetProperty("args").GetProperty("name").GetString() == "peer 3");
        Assert.All(spans, e => Assert.Equal(3, e.GetProperty("pid").GetInt32()));
        Assert.Equal(4000.0, step.GetProperty("dur").GetDouble(), 1);
        Assert.Equal(2000.0, compute.GetProperty("dur").GetDouble(), 1);
        Assert.Equal(step.GetProperty("ts").GetDouble(), compute.GetProperty("ts").GetDouble(), 1);
        Assert.Equal(120, step.GetProperty("args").GetProperty("allocated_bytes").GetInt64());
        Assert.Equal(7, compute.GetProperty("args").GetProperty("step").GetInt64());
    }

    [Fact]
    public void A_frame_received_on_a_reader_thread_becomes_a_receive_span_there_and_a_hand_off_to_the_coordinator()
    {
        var trace = new StepTrace(0, "peer 0", 2);
        long t = Stopwatch.GetTimestamp();
        var reader = new Thread(() => trace.Received(1, 5, t, t + Ms(0.5)));
        reader.Start();
        reader.Join();
        trace.Offered(1, 5, t + Ms(0.8), t + Ms(0.9));
        trace.Offered(1, 6, t + Ms(1.0), t + Ms(1.1));   // no frame of step 6 was reported: no hand-off for it

        var spans = Events(trace).Where(e => e.GetProperty("ph").GetString() == "X").ToArray();
        var receive = spans.Single(e => e.GetProperty("name").GetString() == "receive");
        var handOff = spans.Single(e => e.GetProperty("name").GetString() == "hand-off");

        Assert.Equal(101, receive.GetProperty("tid").GetInt32());
        Assert.Equal(StepTrace.CoordinatorThread, handOff.GetProperty("tid").GetInt32());
        Assert.Equal(300.0, handOff.GetProperty("dur").GetDouble(), 1);
        Assert.Equal(5, handOff.GetProperty("args").GetProperty("step").GetInt64());
        Assert.Equal(2, spans.Count(e => e.GetProperty("name").GetString() == "offer"));
    }

    [Fact]
    public void The_trace_file_of_a_coordinator_is_named_after_it()
    {
        Assert.Equal(Path.Combine("runs", "x", "step-trace-peer-2.json"), StepTrace.PathIn(Path.Combine("runs", "x"), "peer 2"));
        Assert.Equal("hand-off", StepTrace.Label(StepPhase.HandOff));
    }

    [Fact]
    public void A_garbage_collection_during_a_step_is_a_gc_pause_span_at_its_end()
    {
        var trace = new StepTrace(0, "peer 0", 2);
        long t = Stopwatch.GetTimestamp();
        trace.StepDone(1, t, t + Ms(1), 0);
        GC.Collect(2, GCCollectionMode.Forced, blocking: true);
        long end = Stopwatch.GetTimestamp();
        trace.StepDone(2, end - Ms(1), end, 0);

        // Other tests of this process collect too (CI saw one land on step 1): the forced collection must be step 2's.
        var pauses = Events(trace).Where(e => e.GetProperty("name").GetString() == "gc pause").ToArray();
        var pause = Assert.Single(pauses, p => p.GetProperty("args").GetProperty("step").GetInt64() == 2);
        Assert.True(pause.GetProperty("dur").GetDouble() > 0);
        Assert.All(pauses, p => Assert.InRange(p.GetProperty("args").GetProperty("step").GetInt64(), 1, 2));
    }
}

/// <summary>The trace's bound, its membership instants, one file of several tracks, and the clock estimate that aligns processes.</summary>
public class StepTraceWindowTests
{
    private static JsonElement[] Events(string json) => JsonDocument.Parse(json).RootElement.EnumerateArray().ToArray();

    private static string Written(StepTrace trace)
    {
        var text = new StringWriter();
        trace.Write(text);
        return text.ToString();
    }

    [Fact]
    public void A_trace_keeps_only_its_newest_spans_however_many_steps_the_run_takes()
    {
        var trace = new StepTrace(0, "peer 0", 2, maxSpans: 100);
        long t = Stopwatch.GetTimestamp();
        for (int step = 0; step < 1_000; step++)
            trace.Add(StepPhase.Compute, step, t + step * 10, t + step * 10 + 5);

        var spans = Events(Written(trace)).Where(e => e.GetProperty("ph").GetString() == "X").ToArray();
        Assert.Equal(100, spans.Length);
        Assert.Equal(Enumerable.Range(900, 100), spans.Select(s => (int)s.GetProperty("args").GetProperty("step").GetInt64()));
        Assert.Equal(900, trace.Overwritten);
        var process = Events(Written(trace)).Single(e => e.GetProperty("name").GetString() == "process_name");
        Assert.Equal(900, process.GetProperty("args").GetProperty("spans_overwritten").GetInt64());
    }

    [Fact]
    public void A_membership_event_is_an_instant_with_its_words_escaped()
    {
        var trace = new StepTrace(1000, "master", 2);
        trace.Instant("worker 1 at \"akka.tcp://distsgd@h:1\" unreachable");
        var instant = Events(Written(trace)).Single(e => e.GetProperty("ph").GetString() == "i");
        Assert.Equal("worker 1 at \"akka.tcp://distsgd@h:1\" unreachable", instant.GetProperty("name").GetString());
        Assert.Equal("membership", instant.GetProperty("cat").GetString());
        Assert.Equal(1000, instant.GetProperty("pid").GetInt32());
    }

    [Fact]
    public void Several_traces_make_one_file_one_track_each_moved_to_the_reference_clock()
    {
        var master = new StepTrace(1000, "master", 2);
        var worker = new StepTrace(2000, "worker 0", 1);
        long t = 10 * Stopwatch.Frequency;
        master.Add(StepPhase.Wait, 1, t, t + Stopwatch.Frequency / 1000);
        worker.Add(StepPhase.Compute, 1, t, t + Stopwatch.Frequency / 1000);
        var text = new StringWriter();
        StepTraces.Write(text, [worker, master], offsetTicks: Stopwatch.Frequency / 100);   // 10 ms

        var events = Events(text.ToString());
        Assert.Equal(["master", "worker 0"], events.Where(e => e.GetProperty("name").GetString() == "process_name")
                                                   .Select(e => e.GetProperty("args").GetProperty("name").GetString()));
        var spans = events.Where(e => e.GetProperty("ph").GetString() == "X").ToArray();
        Assert.All(spans, s => Assert.Equal(10_010_000.0, s.GetProperty("ts").GetDouble(), 1));
    }

    [Fact]
    public void The_clock_offset_comes_from_the_probe_with_the_shortest_round_trip()
    {
        // The reference reads 1,000 ns more than this clock. The first probe waited 400 ns on the way out (its echo is
        // late), the second came back after 100 ns each way: only the second is trusted.
        var samples = new (long SentAt, long EchoAt, long ReceivedAt)[]
        {
            (0, 1_000 + 400, 500),
            (10_000, 11_000 + 100, 10_200),
        };
        Assert.Equal((1_000L, 200L), TraceClock.Estimate(samples));
        Assert.Null(TraceClock.Estimate([]));
        Assert.Equal((-50L, 0L), TraceClock.Estimate([(100, 50, 100)]));
    }

    [Fact]
    public void A_trace_keeps_at_least_one_span()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new StepTrace(0, "peer 0", 1, maxSpans: 0));
    }
}
