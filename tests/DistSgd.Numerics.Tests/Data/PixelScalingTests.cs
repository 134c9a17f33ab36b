using DistSgd.Numerics.Data;

namespace DistSgd.Numerics.Tests.Data;

public sealed class PixelScalingTests
{
    private static Dataset Pixels() => new("pixels", [0f, 51f, 255f, 127.5f], 2, [1f, 0f], 2);

    [Fact]
    public void Scaling_maps_0_to_255_onto_0_to_1_and_leaves_the_input_untouched()
    {
        var raw = Pixels();

        var scaled = PixelScaling.Apply(raw);

        Assert.Equal([0f, 0.2f, 1f, 0.5f], scaled.Features);
        Assert.Equal(raw.Targets, scaled.Targets);
        Assert.Equal(2, scaled.ClassCount);
        Assert.Equal([0f, 51f, 255f, 127.5f], raw.Features);
    }

    [Fact]
    public void Scaling_in_place_changes_the_given_data_set()
    {
        var data = Pixels();

        PixelScaling.ApplyInPlace(data);

        Assert.Equal([0f, 0.2f, 1f, 0.5f], data.Features);
    }
}
