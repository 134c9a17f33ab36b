using DistSgd.Numerics.Compression;

namespace DistSgd.Numerics.Training;

/// <summary>
/// How the decentralized peers turn their gradient shares of a step into every peer's average (distsgd.collective,
/// <c>--collective</c>); the implementations are in <c>DistSgd.Actors.Collectives</c>.
/// </summary>
public enum Collective : byte
{
    /// <summary>Every peer sends its whole share to every other peer and averages them all: (N−1)·G bytes sent per peer and step. The seed's path and the reference.</summary>
    AllGather = 0,

    /// <summary>All-reduce over a ring: 2·(N−1) neighbour hops (reduce-scatter, then all-gather), pipelined in segments: 2·(N−1)/N·G bytes per peer.</summary>
    Ring = 1,

    /// <summary>All-reduce in two rounds: each peer sends slice k of its share to the owner of slice k, owners send the averaged slice back: 2·(N−1)/N·G bytes per peer.</summary>
    Pairwise = 2,
}

/// <summary>The names users read and write for each <see cref="Collective"/>.</summary>
public static class CollectiveNames
{
    /// <summary>"allgather", "ring" or "pairwise": the name in the configuration, the flag, lines and summary.json.</summary>
    public static string Name(this Collective collective) => collective switch
    {
        Collective.AllGather => "allgather",
        Collective.Ring => "ring",
        Collective.Pairwise => "pairwise",
        _ => throw new ArgumentOutOfRangeException(nameof(collective), collective, null),
    };

    /// <summary>The collective named <paramref name="name"/>, or null for another name ("auto" included: it is chosen, not named).</summary>
    public static Collective? Parse(string name) => name switch
    {
        "allgather" => Collective.AllGather,
        "ring" => Collective.Ring,
        "pairwise" => Collective.Pairwise,
        _ => null,
    };

    /// <summary>True for the all-reduces: the step's average is made by the collective, not from every whole share.</summary>
    public static bool Reduces(this Collective collective) => collective != Collective.AllGather;

    /// <summary>
    /// Why <paramref name="collective"/> cannot carry a run whose gradients travel as <paramref name="wire"/>, naming the
    /// keys; null when it can (decision 0090). The all-reduces carry 16-bit parts (the ring bf16 only: its partial sums
    /// overflow binary16) and local SGD's dense changes Δ at its averaging steps (decision 0136); top-k shares travel with
    /// the all-gather.
    /// </summary>
    public static string? Refusal(this Collective collective, ShareEncoding wire)
    {
        if (!collective.Reduces())
            return null;
        string name = $"distsgd.collective = {collective.Name()}";
        if (wire.IsSparse)
            return $"{name} sums dense parts: top-k gradients (distsgd.compress = {wire.CompressName}) travel with the all-gather, " +
                   "whose shares stay sparse (an all-reduce would densify them at the first sum); set distsgd.collective = allgather or auto";
        if (collective == Collective.Ring && wire.Precision == WirePrecision.Fp16)
            return $"{name} with distsgd.wire = fp16: the ring's partial sums (up to the global batch times a gradient) overflow binary16 " +
                   "at the static scale; set distsgd.wire = bf16, or distsgd.collective = pairwise or allgather";
        return null;
    }
}
