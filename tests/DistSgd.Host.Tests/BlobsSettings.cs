using DistSgd.Host.Runs;
using DistSgd.Host.Settings;

namespace DistSgd.Host.Tests;

/// <summary>The settings of a small run on the synthetic blobs, for tests that call the run code without the command line.</summary>
internal static class BlobsSettings
{
    public static TrainSettings Create(string outDir, RunMode mode, int samples, int[] hidden, int epochs, int batchSize) => new()
    {
        Mode = mode,
        Data = new DataRequest(DataSources.Blobs, null, null, "auto", 0.2, 0, false, Numerics.Data.LearningTask.Classification, 1, samples),
        Model = hidden.Length > 0 ? Numerics.Models.ModelKind.Mlp : Numerics.Models.ModelKind.Softmax,
        Hidden = hidden,
        Activation = Numerics.Models.Activation.Relu,
        Epochs = epochs,
        BatchSize = batchSize,
        LearningRate = 0.05,
        Momentum = 0.9,
        WeightDecay = 0,
        Schedule = "cosine",
        Seed = 1,
        Patience = 0,
        MinDelta = 0,
        Normalize = "auto",
        Threads = 1,
        Out = outDir,
        Quiet = false,
        ComputeNodes = 2,
    };
}
