using DistSgd.Numerics.Tensors;

namespace DistSgd.Numerics.Tests.Tensors;

/// <summary>The gather's finiteness check of a gradient: every value, wherever it sits, in any split of the vector.</summary>
public class FiniteValuesTests
{
    private static readonly float[] NotFinite = [float.NaN, float.PositiveInfinity, float.NegativeInfinity, BitConverter.Int32BitsToSingle(unchecked((int)0xFFC00001))];

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(33)]
    [InlineData(235_146)]   // the default MLP's parameters: no vector width divides it
    public void Finite_values_of_any_length_are_finite(int length)
    {
        var values = Enumerable.Range(0, length).Select(i => (i % 3 - 1) * (i % 2 == 0 ? float.MaxValue : float.Epsilon)).ToArray();
        Assert.True(FiniteValues.All(values));
    }

    [Fact]
    public void One_NaN_or_infinity_anywhere_is_not_finite()
    {
        foreach (int length in new[] { 1, 8, 17, 64, 1001 })
            for (int at = 0; at < length; at += Math.Max(1, length / 13))
                foreach (float bad in NotFinite)
                {
                    var values = new float[length];
                    Array.Fill(values, -0f);
                    values[at] = bad;
                    Assert.False(FiniteValues.All(values), $"{bad} at {at} of {length}");
                    Assert.False(FiniteValues.All(values.AsSpan(at)), $"{bad} first of a part");
                    Assert.True(FiniteValues.All(values.AsSpan(0, at)), $"the part before {at}");
                }
    }

    [Fact]
    public void Values_whose_sum_overflows_are_still_finite()
    {
        var values = Enumerable.Repeat(float.MaxValue, 100).ToArray();
        Assert.False(float.IsFinite(System.Numerics.Tensors.TensorPrimitives.Sum(values)));
        Assert.True(FiniteValues.All(values));
    }
}
