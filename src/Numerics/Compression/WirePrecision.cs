namespace DistSgd.Numerics.Compression;

/// <summary>The float format a gradient's values travel in between nodes (distsgd.wire, <c>--wire</c>).</summary>
public enum WirePrecision
{
    /// <summary>IEEE float32, the values as computed: today's wire.</summary>
    Fp32,

    /// <summary>bfloat16: float32's sign and exponent with 7 mantissa bits (rounded to nearest, ties to even); float32's range.</summary>
    Bf16,

    /// <summary>IEEE binary16 of the value times a power-of-two scale (<see cref="ShareEncoding.Fp16Scale"/>), saturated at ±65504.</summary>
    Fp16,
}
