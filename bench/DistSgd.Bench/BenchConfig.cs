using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace DistSgd.Bench;

/// <summary>Shared BenchmarkDotNet setup: allocations shown, a GFLOP/s column, a short job.</summary>
public static class BenchConfig
{
    public static IConfig Create() =>
        DefaultConfig.Instance
            .AddJob(Job.Default.WithWarmupCount(3).WithIterationCount(10).WithLaunchCount(1))
            .AddDiagnoser(MemoryDiagnoser.Default)
            .AddColumn(new GflopsColumn());
}

/// <summary>A benchmark whose cases know their flops per operation.</summary>
public interface IFlopCounted
{
    double FlopsPerOperation(BenchmarkCase benchmarkCase);
}

/// <summary>GFLOP/s = flops per operation / mean time per operation.</summary>
public sealed class GflopsColumn : IColumn
{
    public string Id => "GFLOPs";
    public string ColumnName => "GFLOP/s";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => "Billions of float32 operations per second (2·m·n·k per GEMM).";

    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public bool IsAvailable(Summary summary) => true;

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var stats = summary[benchmarkCase]?.ResultStatistics;
        if (stats == null) return "-";
        if (Activator.CreateInstance(benchmarkCase.Descriptor.Type) is not IFlopCounted counted) return "-";
        double flops = counted.FlopsPerOperation(benchmarkCase);
        return (flops / stats.Mean).ToString("F1", System.Globalization.CultureInfo.InvariantCulture);
    }
}
