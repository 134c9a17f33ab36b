using System.Globalization;
using System.Text;
using DistSgd.Numerics.Cost;
using DistSgd.Numerics.Training;

namespace DistSgd.Host.Runs;

/// <summary>`distsgd bench cost`: the cost model's predictions (<see cref="CostModel"/>) as markdown, one table per link rate.</summary>
public static class CostTable
{
    /// <summary>
    /// For every rate, a table with one row per node count: the predicted samples/s and ms per step of each mode and
    /// collective, the bytes the busiest node sends per step, and the collective <see cref="CostModel.FastestCollective"/>
    /// picks; under it, where the master, the all-gather and the all-reduce stop scaling (<see cref="CostModel.StopsScalingAt"/>).
    /// </summary>
    public static string Markdown(CostConstants constants, IReadOnlyList<int> nodeCounts, IReadOnlyList<LinkRate> rates, int sharedCores)
    {
        var text = new StringBuilder();
        var sequential = CostModel.Sequential(constants);
        text.AppendLine(Invariant($"Cost model: G = {constants.GradientBytes:N0} bytes, b = {constants.BatchPerNode} per node, C = {constants.ComputeSeconds * 1e3:0.###} ms, ") +
                        Invariant($"α = {constants.MessageSeconds * 1e6:0.#} µs, κ = {constants.RoundSeconds * 1e6:0.#} µs, loopback β = {constants.LoopbackSecondsPerByte * 1e9:0.###} ns/byte, ") +
                        Invariant($"γ = {constants.SumSecondsPerByte * 1e9:0.###} ns/byte, δ = {constants.UpdateSecondsPerByte * 1e9:0.###} ns/byte; ") +
                        (sharedCores > 0 ? Invariant($"every node's compute on {sharedCores} shared cores") : "one machine per node") +
                        $". Sequential: {Cell(sequential)}.");
        foreach (var rate in rates)
        {
            text.AppendLine();
            text.AppendLine($"Link {rate} each way. Cells: samples/s (ms per step); MB: sent per step by the master / by each peer (all-gather, all-reduce).");
            text.AppendLine();
            text.AppendLine("| N | centralized | all-gather | ring | pairwise | MB master | MB all-gather | MB all-reduce | fastest collective |");
            text.AppendLine("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
            foreach (int n in nodeCounts)
            {
                var shape = new ClusterShape(n, rate, sharedCores);
                var centralized = CostModel.Centralized(constants, shape);
                var costs = CostModel.Collectives.ToDictionary(c => c, c => CostModel.Decentralized(constants, c, shape));
                text.AppendLine(
                    $"| {n} | {Cell(centralized)} | {Cell(costs[Collective.AllGather])} | {Cell(costs[Collective.Ring])} | {Cell(costs[Collective.Pairwise])} | " +
                    Invariant($"{centralized.BytesSentPerNode / 1e6:0.00} | {costs[Collective.AllGather].BytesSentPerNode / 1e6:0.00} | ") +
                    Invariant($"{costs[Collective.Pairwise].BytesSentPerNode / 1e6:0.00} | {CostModel.FastestCollective(constants, shape).Name()} |"));
            }
            int? master = CostModel.StopsScalingAt(n => CostModel.Centralized(constants, new ClusterShape(n, rate, sharedCores)));
            int? allGather = CostModel.StopsScalingAt(n => CostModel.Decentralized(constants, Collective.AllGather, new ClusterShape(n, rate, sharedCores)));
            int? allReduce = CostModel.StopsScalingAt(n => CostModel.Decentralized(constants, Collective.Pairwise, new ClusterShape(n, rate, sharedCores)));
            text.AppendLine();
            text.AppendLine($"Stops scaling (the fewest nodes within 10 % of the best samples/s of any N up to 1024) at: centralized N = {Where(master)}, all-gather N = {Where(allGather)}, " +
                            $"pairwise all-reduce N = {Where(allReduce)}.");
        }
        return text.ToString();
    }

    public const string CsvHeader = "rate,nodes,run,seconds_per_step,samples_per_second,bytes_sent_per_node";

    /// <summary>
    /// The same predictions as <see cref="Markdown"/>, one CSV line per rate, node count and run (sequential,
    /// centralized, allgather, ring, pairwise), for scripts (scripts/bench-network.sh).
    /// </summary>
    public static string Csv(CostConstants constants, IReadOnlyList<int> nodeCounts, IReadOnlyList<LinkRate> rates, int sharedCores)
    {
        var text = new StringBuilder(CsvHeader).Append('\n');
        foreach (var rate in rates)
            foreach (int n in nodeCounts)
            {
                var shape = new ClusterShape(n, rate, sharedCores);
                var runs = new List<(string Run, StepCost Cost)> { ("sequential", CostModel.Sequential(constants)), ("centralized", CostModel.Centralized(constants, shape)) };
                runs.AddRange(CostModel.Collectives.Select(c => (c.Name(), CostModel.Decentralized(constants, c, shape))));
                foreach (var (run, cost) in runs)
                    text.Append(Invariant($"{rate},{n},{run},{cost.TotalSeconds:R},{cost.SamplesPerSecond:R},{cost.BytesSentPerNode:R}")).Append('\n');
            }
        return text.ToString();
    }

    private static string Cell(StepCost cost) => Invariant($"{cost.SamplesPerSecond:N0} ({cost.TotalSeconds * 1e3:0.0})");

    private static string Where(int? n) => n is { } v ? v.ToString(CultureInfo.InvariantCulture) : "never (up to 1024)";

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
