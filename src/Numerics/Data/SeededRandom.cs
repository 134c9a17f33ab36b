using System.Numerics;

namespace DistSgd.Numerics.Data;

/// <summary>
/// xoshiro256** (Blackman and Vigna), seeded through SplitMix64. Used wherever the project promises
/// "the same seed gives the same order": the algorithm is fixed here, so the sequence cannot change
/// with the runtime (System.Random's seeded sequence is a compatibility habit, not a specification),
/// and being a struct it costs no allocation per epoch.
/// </summary>
internal struct SeededRandom
{
    private ulong _s0, _s1, _s2, _s3;

    public SeededRandom(ulong seed)
    {
        // SplitMix64 spreads any seed (0 included) over the 256-bit state, as the authors recommend.
        _s0 = SplitMix64(ref seed);
        _s1 = SplitMix64(ref seed);
        _s2 = SplitMix64(ref seed);
        _s3 = SplitMix64(ref seed);
    }

    /// <summary>A seed for the stream of (<paramref name="seed"/>, <paramref name="stream"/>), e.g. (run seed, epoch).</summary>
    public static ulong Combine(int seed, int stream)
    {
        // Mixed, not just concatenated, so neighbouring epochs start from unrelated states.
        ulong x = ((ulong)(uint)seed << 32) | (uint)stream;
        return SplitMix64(ref x);
    }

    public ulong NextUInt64()
    {
        ulong result = BitOperations.RotateLeft(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0;
        _s3 ^= _s1;
        _s1 ^= _s2;
        _s0 ^= _s3;
        _s2 ^= t;
        _s3 = BitOperations.RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>A uniform integer in [0, <paramref name="bound"/>), without modulo bias (Lemire's method).</summary>
    public int NextInt(int bound)
    {
        ulong range = (ulong)bound;
        UInt128 product = (UInt128)NextUInt64() * range;
        ulong low = (ulong)product;
        if (low < range)
        {
            // Reject the few values that would make small results more likely than large ones.
            ulong threshold = (0 - range) % range;
            while (low < threshold)
            {
                product = (UInt128)NextUInt64() * range;
                low = (ulong)product;
            }
        }
        return (int)(product >> 64);
    }

    /// <summary>Fisher–Yates shuffle of <paramref name="values"/> in place.</summary>
    public void Shuffle(Span<int> values)
    {
        for (int i = values.Length - 1; i > 0; i--)
        {
            int j = NextInt(i + 1);
            (values[i], values[j]) = (values[j], values[i]);
        }
    }

    private static ulong SplitMix64(ref ulong state)
    {
        ulong z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
