using DistSgd.Numerics.Data;

namespace DistSgd.Host.Settings;

/// <summary>Which data a run reads: a built-in data set by name, or a path with an optional format.</summary>
public sealed record DataRequest(string Dataset, string? Path, string? TestPath, string Format, double TestFraction,
                                 int LabelColumn, bool CsvHeader, LearningTask Task, int Seed, int SyntheticCount);
