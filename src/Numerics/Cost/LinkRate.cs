using System.Globalization;

namespace DistSgd.Numerics.Cost;

/// <summary>
/// The rate of each node's network link, in bits per second each way (full duplex), as <c>tc</c> writes it:
/// <c>100mbit</c>, <c>1gbit</c>, <c>25gbit</c>; <see cref="Unlimited"/> (<c>none</c>) is no limit at all, where the
/// data plane's own cost on this machine (loopback) is the link.
/// </summary>
public readonly record struct LinkRate
{
    private static readonly (string Suffix, double Factor)[] Units = [("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3), ("bit", 1)];

    private LinkRate(double bitsPerSecond) => BitsPerSecond = bitsPerSecond;

    /// <summary>Bits per second each way; <see cref="double.PositiveInfinity"/> for <see cref="Unlimited"/>.</summary>
    public double BitsPerSecond { get; }

    /// <summary>No limit: the link costs what the local data plane costs (<see cref="CostConstants.LoopbackSecondsPerByte"/>).</summary>
    public static LinkRate Unlimited => new(double.PositiveInfinity);

    public bool IsUnlimited => double.IsPositiveInfinity(BitsPerSecond);

    /// <summary>A link of <paramref name="bitsPerSecond"/> bits per second each way.</summary>
    public static LinkRate FromBitsPerSecond(double bitsPerSecond) =>
        bitsPerSecond > 0 && double.IsFinite(bitsPerSecond)
            ? new LinkRate(bitsPerSecond)
            : throw new ArgumentOutOfRangeException(nameof(bitsPerSecond), bitsPerSecond, "a link rate is a finite number of bits per second > 0");

    /// <summary>Seconds per byte on this link, β = 8 / rate (0 for <see cref="Unlimited"/>: the caller adds the loopback's).</summary>
    public double SecondsPerByte => IsUnlimited ? 0 : 8 / BitsPerSecond;

    /// <summary>Reads <c>none</c> or a number and a unit (<c>bit</c>, <c>kbit</c>, <c>mbit</c>, <c>gbit</c>), e.g. <c>1gbit</c>, <c>2.5gbit</c>.</summary>
    public static bool TryParse(string text, out LinkRate rate)
    {
        rate = Unlimited;
        string t = text.Trim().ToLowerInvariant();
        if (t is "none" or "unlimited")
            return true;
        foreach (var (suffix, factor) in Units)
        {
            if (!t.EndsWith(suffix, StringComparison.Ordinal))
                continue;
            if (!double.TryParse(t[..^suffix.Length], NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double value)
                || !(value * factor >= 1) || !double.IsFinite(value * factor))
                return false;
            rate = new LinkRate(value * factor);
            return true;
        }
        return false;
    }

    /// <summary><see cref="TryParse"/>, or an <see cref="ArgumentException"/> saying what a rate looks like and what was found.</summary>
    public static LinkRate Parse(string text, string what = "link rate") =>
        TryParse(text, out var rate) ? rate
            : throw new ArgumentException($"{what}: expected none or a rate such as 100mbit, 1gbit, 2.5gbit, found '{text}'");

    /// <summary>The rate as <c>tc</c> reads it (<c>1gbit</c>, <c>100mbit</c>), or <c>none</c>.</summary>
    public override string ToString()
    {
        if (IsUnlimited)
            return "none";
        foreach (var (suffix, factor) in Units)
            if (BitsPerSecond >= factor)
                return (BitsPerSecond / factor).ToString("0.###", CultureInfo.InvariantCulture) + suffix;
        return BitsPerSecond.ToString(CultureInfo.InvariantCulture) + "bit";
    }
}
