using DistSgd.Actors.Protocol;
using DistSgd.Actors.Transport;
using DistSgd.Numerics.Training;

namespace DistSgd.Actors.Collectives;

/// <summary>
/// Which collective distsgd.collective = auto runs: one pure rule, in one place, so that a cost model can replace it.
/// </summary>
public static class CollectiveChoice
{
    /// <summary>
    /// The all-gather on the Akka transport (the only collective there) and for 2 peers (where both all-reduces send the
    /// same bytes as the all-gather, 2·(N−1)/N·G = (N−1)·G, in two rounds instead of one); the pairwise all-reduce for 3
    /// peers or more on the data plane (2·(N−1)/N·G bytes per peer instead of (N−1)·G, in 2 rounds where the ring takes
    /// 2·(N−1) hops).
    /// </summary>
    /// <param name="compressed">The gradients travel as top-k shares (distsgd.compress) or local SGD averages changes
    /// (distsgd.sync-every): the all-gather carries them (<see cref="CollectiveNames.Refusal"/>). A 16-bit wire alone
    /// (distsgd.wire) leaves the choice as it is: the all-reduces carry 16-bit parts.</param>
    public static Collective Pick(int peers, PayloadTransport transport, bool compressed = false) =>
        transport != PayloadTransport.Direct || peers <= 2 || compressed ? Collective.AllGather : Collective.Pairwise;

    /// <summary>The line a run prints at its start: the collective and why.</summary>
    public static string Describe(Collective collective, Collective? requested, int peers, PayloadTransport transport, bool compressed = false) =>
        requested is not null
            ? $"collective: {collective.Name()} (distsgd.collective / --collective)"
            : $"collective: {collective.Name()} (auto for {peers} peers on the {(transport == PayloadTransport.Direct ? "direct" : "akka")} transport" +
              (compressed ? ", top-k gradients or local SGD" : "") + ")";
}
