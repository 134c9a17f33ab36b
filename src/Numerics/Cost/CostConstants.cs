using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace DistSgd.Numerics.Cost;

/// <summary>
/// The measured constants of the α–β cost model (<see cref="CostModel"/>) for one model and per-node batch: what a
/// step computes and what each message and byte costs. <c>distsgd bench calibrate</c> measures them on this machine
/// and writes them as JSON; <see cref="Measured"/> holds the values measured here.
/// </summary>
public sealed record CostConstants
{
    /// <summary>G: bytes of one gradient (= bytes of θ), float32.</summary>
    public required long GradientBytes { get; init; }

    /// <summary>b: samples of one node's gradient per step.</summary>
    public required int BatchPerNode { get; init; }

    /// <summary>C: seconds one node takes for the forward and backward pass of its batch (one thread).</summary>
    public required double ComputeSeconds { get; init; }

    /// <summary>δ: seconds per byte of θ for the optimizer update (momentum SGD), paid once per step by whoever updates.</summary>
    public required double UpdateSecondsPerByte { get; init; }

    /// <summary>γ: seconds per byte to add one vector into a running sum (the reduction of a share).</summary>
    public required double SumSecondsPerByte { get; init; }

    /// <summary>α: seconds per message on the data plane: one-way latency and per-message overhead, independent of size.</summary>
    public required double MessageSeconds { get; init; }

    /// <summary>
    /// κ: seconds each message round of a step pays on top of α in this program: the sender's actor, the receiver's
    /// data-plane reader thread and its hand-off to the peer actor's mailbox, the actor taking the part (two thread
    /// wake-ups and the scheduling between them). Every round of every mode and collective costs α + κ
    /// (<see cref="CostModel"/>). <c>bench calibrate</c> cannot see it (it times a bare socket) and writes
    /// <see cref="Measured"/>'s; <c>scripts/bench-network.sh</c> fits it to its runs, with ν. 0 (a file without it): not counted.
    /// </summary>
    public double RoundSeconds { get; init; }

    /// <summary>β of the local data plane (TCP over loopback, no rate limit): seconds per byte the sockets themselves cost.</summary>
    public required double LoopbackSecondsPerByte { get; init; }

    /// <summary>
    /// ν: CPU seconds the machine's network stack spends per byte one node sends to another (the sender's and the
    /// receiver's side together), which nodes on shared cores (<see cref="ClusterShape.SharedCores"/>) pay out of those
    /// cores on top of the link's own time. <c>bench calibrate</c> takes the loopback's β (all CPU there);
    /// <c>scripts/bench-network.sh</c> fits it to the emulated network's runs (veth, a bridge and two token buckets per
    /// byte cost more than loopback). 0 (a file without it): not counted.
    /// </summary>
    public double NetworkSecondsPerByte { get; init; }

    /// <summary>Where and how these were measured (machine, date, load), for the reader of the file.</summary>
    public string Source { get; init; } = "";

    /// <summary>
    /// This project's machine (AMD EPYC Zen 4, .NET 10), default MLP (784-256-128-10, G = 940,584 bytes), b = 64, as
    /// a quiet machine gives them: C from the quiet sequential run (49,655 samples/s at b = 64, README: 1.29 ms a step,
    /// of which 1.2 ms forward and backward), the loopback's β from the quiet socket bench (0.57 ms for 940 KB there
    /// and back, README "Transports"); δ, γ and α from <c>distsgd bench calibrate</c> (medians of three, load average
    /// 31–32; memory-bound, so little changed by load; α a bare socket's). κ from scripts/bench-network.sh's quiet runs
    /// (2026-12-02 05:03–05:13 UTC): each round of a step cost 0.4–0.9 ms over the bare-α prediction, the all-gather's
    /// one round 0.39 ms at N = 2, the least of all; least-squares fits of κ with ν over the cells the ring's 64 KiB
    /// segments did not distort give 0.4–0.54 ms (κ and ν trade off: 0.4 ms with ν 1.66 ns/byte, 0.54 with 1.54). 0.36 ms
    /// prices a round, α + κ, at the 0.40 ms that decision 0122 measured and <c>--collective auto</c> has used since
    /// (decision 0125). The README's projections and auto's choice use these.
    /// </summary>
    public static CostConstants Measured { get; } = new()
    {
        GradientBytes = 940_584,
        BatchPerNode = 64,
        ComputeSeconds = 1.2e-3,
        UpdateSecondsPerByte = 0.081e-9,
        SumSecondsPerByte = 0.12e-9,
        MessageSeconds = 44e-6,
        RoundSeconds = 0.36e-3,
        LoopbackSecondsPerByte = 0.30e-9,
        NetworkSecondsPerByte = 0.30e-9,
        Source = "this project's machine, quiet: C and loopback β from the README's quiet runs; δ, γ, α from bench calibrate (2026-12-01)",
    };

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, NumberHandling = JsonNumberHandling.Strict };

    /// <summary>The constants as an indented JSON object.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>
    /// Reads constants written by <see cref="ToJson"/>; throws an <see cref="ArgumentException"/> naming
    /// <paramref name="source"/> and the field when the text is not such an object or a value is out of range.
    /// </summary>
    public static CostConstants FromJson(string json, string source)
    {
        CostConstants? constants;
        try
        {
            constants = JsonSerializer.Deserialize<CostConstants>(json, Json);
        }
        catch (JsonException e)
        {
            throw new ArgumentException($"{source}: expected the JSON object distsgd bench calibrate writes, found an error at line {e.LineNumber + 1}: {e.Message}");
        }
        if (constants is null)
            throw new ArgumentException($"{source}: expected the JSON object distsgd bench calibrate writes, found null");
        constants.Validate(source);
        return constants;
    }

    /// <summary>Throws an <see cref="ArgumentException"/> naming the first field out of range.</summary>
    public void Validate(string source)
    {
        Check(GradientBytes > 0, nameof(GradientBytes), "> 0", GradientBytes);
        Check(BatchPerNode > 0, nameof(BatchPerNode), "> 0", BatchPerNode);
        foreach (var (name, value) in new[]
                 {
                     (nameof(ComputeSeconds), ComputeSeconds), (nameof(UpdateSecondsPerByte), UpdateSecondsPerByte),
                     (nameof(SumSecondsPerByte), SumSecondsPerByte), (nameof(MessageSeconds), MessageSeconds), (nameof(RoundSeconds), RoundSeconds),
                     (nameof(LoopbackSecondsPerByte), LoopbackSecondsPerByte), (nameof(NetworkSecondsPerByte), NetworkSecondsPerByte),
                 })
            Check(value >= 0 && double.IsFinite(value), name, "a finite number ≥ 0", value);

        void Check(bool ok, string name, string expected, double found)
        {
            if (!ok)
                throw new ArgumentException($"{source}: {name}: expected {expected}, found {found.ToString(CultureInfo.InvariantCulture)}");
        }
    }
}
