using System.Globalization;
using DistSgd.Actors.Protocol;
using DistSgd.Actors.Transport;
using DistSgd.Numerics.Cost;
using DistSgd.Numerics.Training;

namespace DistSgd.Actors.Collectives;

/// <summary>
/// Which collective distsgd.collective = auto runs: the cost model's fastest (<see cref="CostModel.FastestCollective"/>) for
/// the run's peers, gradient size and link (distsgd.link-rate), where a choice exists; one pure rule, in one place.
/// </summary>
public static class CollectiveChoice
{
    /// <summary>
    /// The all-gather on the Akka transport (the only collective there) and for top-k gradients (only the all-gather
    /// carries them, <see cref="CollectiveNames.Refusal"/>); otherwise the collective with the smallest predicted
    /// step for <paramref name="peers"/> nodes of a machine each on <paramref name="link"/>, pricing
    /// <paramref name="gradientBytes"/> on the wire with this project's measured constants (<see cref="Constants"/>):
    /// with the default MLP, the all-gather for 2 peers (every collective sends the same bytes there, and it takes one
    /// round) and pairwise for 3 or more; for a model of a few hundred parameters, where latency is everything, the all-gather's single
    /// round. Compute is the same in every collective, so it does not move the choice; a 16-bit wire halves the bytes.
    /// Local SGD's averaging step moves a dense change Δ of the gradient's size, so it is priced as a gradient step and
    /// gets the same choice (decision 0136); its local steps send nothing whatever the collective.
    /// </summary>
    public static Collective Pick(int peers, PayloadTransport transport, bool compressed, long gradientBytes, LinkRate link) =>
        transport != PayloadTransport.Direct || compressed || peers < 2 ? Collective.AllGather
            : CostModel.FastestCollective(Constants(gradientBytes), new ClusterShape(peers, link));

    /// <summary>
    /// What <see cref="Pick"/> prices: this project's measured constants with <paramref name="gradientBytes"/>; each message
    /// round costs α + κ (<see cref="CostConstants.RoundSeconds"/>), what a step of this program measured, not the bare
    /// socket's α alone: priced at 44 µs the ring won at 2 peers, and measured on unlimited links it ran 5.87 ms a step
    /// against the all-gather's 3.39 (decisions 0122, 0125).
    /// </summary>
    public static CostConstants Constants(long gradientBytes) => CostConstants.Measured with { GradientBytes = gradientBytes };

    /// <summary>The line a run prints at its start: the collective and why.</summary>
    public static string Describe(Collective collective, Collective? requested, int peers, PayloadTransport transport, bool compressed,
                                  long gradientBytes, LinkRate link) =>
        requested is not null ? $"collective: {collective.Name()} (distsgd.collective / --collective)"
        : transport != PayloadTransport.Direct ? $"collective: {collective.Name()} (auto: the only one on the akka transport)"
        : compressed ? $"collective: {collective.Name()} (auto for {peers} peers: top-k gradients travel by all-gather)"
        : $"collective: {collective.Name()} (auto: the cost model's fastest for {peers} peers, {gradientBytes.ToString("N0", CultureInfo.InvariantCulture)} bytes per gradient, " +
          $"link {link} (distsgd.link-rate / --link-rate))";
}
