namespace DistSgd.Host.Settings;

/// <summary>
/// The values an enum flag takes on the command line, both ways: the name a value is written with (in the run's lines,
/// its results and its errors) and the value a name parses to.
/// </summary>
/// <param name="flag">The flag, as its errors name it ("--mode").</param>
/// <param name="expected">What the error says the flag expects before the list of names ("one of").</param>
/// <param name="names">Every value with its name, in the order the flag's help and errors list them.</param>
internal sealed class FlagValues<T>(string flag, string expected, IReadOnlyList<(T Value, string Name)> names) where T : struct, Enum
{
    /// <summary>The names, in the order the flag's help and errors list them.</summary>
    public string[] Names { get; } = names.Select(n => n.Name).ToArray();

    /// <summary>The value's name on the command line.</summary>
    public string Name(T value)
    {
        foreach (var (v, name) in names)
        {
            if (EqualityComparer<T>.Default.Equals(v, value))
                return name;
        }
        throw new ArgumentOutOfRangeException(nameof(value), value, $"no {flag} name");
    }

    /// <summary>The value a name stands for; any other name fails naming the flag and what it takes.</summary>
    public T Parse(string name)
    {
        foreach (var (value, n) in names)
        {
            if (n == name)
                return value;
        }
        throw new UsageException($"{flag}: expected {expected} {string.Join(", ", Names)}, found '{name}'");
    }
}
