using System.Numerics;
using System.Runtime.InteropServices;

namespace DistSgd.Numerics.Tensors;

/// <summary>
/// Whether every value of a vector is finite: the check a step's gather applies to each gradient it accepts (a NaN or ±∞
/// anywhere makes the share non-finite). A float is NaN or ±∞ exactly when its 8 exponent bits are all ones, so the check
/// is a bitwise test per value, vectorized, with no arithmetic that could itself overflow; it gives the same answer for any
/// split of the vector into parts (the data plane judges a frame part by part as its bytes arrive).
/// </summary>
public static class FiniteValues
{
    private const int ExponentBits = 0x7F800000;

    /// <summary>True when no value of <paramref name="values"/> is NaN, +∞ or −∞ (true for an empty vector).</summary>
    public static bool All(ReadOnlySpan<float> values)
    {
        var bits = MemoryMarshal.Cast<float, int>(values);
        ref int first = ref MemoryMarshal.GetReference(bits);
        var exponent = new Vector<int>(ExponentBits);
        var notFinite = Vector<int>.Zero;
        int width = Vector<int>.Count, i = 0;
        for (; i <= bits.Length - 2 * width; i += 2 * width)
        {
            var a = Vector.LoadUnsafe(ref first, (nuint)i) & exponent;
            var b = Vector.LoadUnsafe(ref first, (nuint)(i + width)) & exponent;
            notFinite |= Vector.Equals(a, exponent) | Vector.Equals(b, exponent);
        }
        for (; i <= bits.Length - width; i += width)
            notFinite |= Vector.Equals(Vector.LoadUnsafe(ref first, (nuint)i) & exponent, exponent);
        if (!Vector.EqualsAll(notFinite, Vector<int>.Zero))
            return false;
        for (; i < bits.Length; i++)
            if ((bits[i] & ExponentBits) == ExponentBits)
                return false;
        return true;
    }
}
