using DistSgd.Numerics.Models;
using DistSgd.Numerics.Optim;

namespace DistSgd.Numerics.Tests.Models;

public class ModelWarmUpTests
{
    [Theory]
    [InlineData(ModelKind.Mlp, 10, 64)]       // the MLP of the README at its batch
    [InlineData(ModelKind.Softmax, 2, 1)]     // logistic regression, one row
    [InlineData(ModelKind.Linear, 0, 300)]    // regression (class count 0, target 0 a valid response), more rows than an evaluation chunk
    public void Runs_every_model_kind_at_any_batch_size_with_every_optimizer_option(ModelKind kind, int classes, int batch)
    {
        // A node runs it before it takes part: a throw here would fail the node, so every valid run's shape must pass.
        var spec = new ModelSpec(kind, 20, classes, kind == ModelKind.Mlp ? [16, 8] : null);
        foreach (var options in new[] { new SgdOptions(0.1), new SgdOptions(0.1, momentum: 0.9, weightDecay: 0.01, nesterov: true) })
            Assert.Null(Record.Exception(() => ModelWarmUp.Run(spec, batch, options)));
    }

    [Fact]
    public void Rejects_a_batch_of_no_rows()
    {
        var spec = new ModelSpec(ModelKind.Softmax, 4, 3);
        Assert.Throws<ArgumentOutOfRangeException>(() => ModelWarmUp.Run(spec, 0, new SgdOptions(0.1)));
    }

    [Theory]
    [InlineData(null, true)]
    [InlineData("", true)]
    [InlineData("on", true)]
    [InlineData("off", false)]
    [InlineData("OFF", false)]
    public void Runs_unless_switched_off(string? value, bool expected) =>
        Assert.Equal(expected, ModelWarmUp.Enabled(value));
}
