using DistSgd.Actors.Protocol;
using DistSgd.Numerics.Models;

namespace DistSgd.Actors.Tests.Protocol;

public class RunPlanTests
{
    private static readonly RunPlan Plan = new("a", new ModelSpec(ModelKind.Mlp, 20, 4, [16]), 64, 1, 2, 480, 3,
                                               "workers=3;lr=0.05;momentum=0.9;normalize=standardize");

    [Fact]
    public void Plans_that_differ_only_in_the_run_id_have_no_differences()
    {
        Assert.Empty(Plan.Differences(Plan with { RunId = "b" }));
    }

    [Fact]
    public void Every_difference_is_named_with_both_values()
    {
        var other = Plan with
        {
            Spec = new ModelSpec(ModelKind.Mlp, 20, 4, [32]),
            BatchSizePerWorker = 16,
            TrainCount = 500,
            Hyperparameters = "workers=3;lr=0.1;momentum=0.9;normalize=standardize;extra=1",
        };
        Assert.Equal(
        [
            "model: mlp 20-16-4 relu here vs mlp 20-32-4 relu there",
            "batch size per worker: 64 here vs 16 there",
            "training samples: 480 here vs 500 there",
            "lr: 0.05 here vs 0.1 there",
            "extra: (unset) here vs 1 there",
        ], Plan.Differences(other));
    }

    [Fact]
    public void A_different_activation_is_named_even_where_the_model_text_is_the_same()
    {
        var linear = Plan with { Spec = new ModelSpec(ModelKind.Softmax, 20, 4, [], Activation.Relu) };
        var other = linear with { Spec = new ModelSpec(ModelKind.Softmax, 20, 4, [], Activation.Tanh) };
        Assert.Single(linear.Differences(other));
    }

    [Fact]
    public void A_node_whose_data_cannot_serve_the_plan_is_told_what_differs()
    {
        static DistSgd.Numerics.Data.Dataset Data(int count, int features, int classes) =>
            new("d", new float[count * features], features, Enumerable.Range(0, count).Select(i => (float)(i % classes)).ToArray(), classes);

        Assert.Null(Plan.DataMismatch(Data(480, 20, 4)));
        Assert.Equal("this node has 479 training samples, the run expects 480 (every node must read the same data)",
                     Plan.DataMismatch(Data(479, 20, 4)));
        Assert.Contains("has 21 features, the model", Plan.DataMismatch(Data(480, 21, 4)));
        Assert.Contains("has 3 classes, the model", Plan.DataMismatch(Data(480, 20, 3)));
    }
}
