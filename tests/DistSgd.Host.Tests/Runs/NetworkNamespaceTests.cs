using System.Diagnostics;
using DistSgd.Host.Runs;
using Xunit.Abstractions;

namespace DistSgd.Host.Tests.Runs;

/// <summary>
/// Network namespaces joined by veth pairs to a bridge in a namespace of its own: hosts with their own
/// addresses (10.77.0.1, .2, …) and their own port spaces, so the nodes really live on different hosts.
/// Nothing is changed in the test machine's own namespace; Dispose deletes every namespace (and with them
/// their links).
/// </summary>
internal sealed class NetworkNamespaces : IDisposable
{
    private readonly List<string> _created = new();

    private NetworkNamespaces(string prefix) => Prefix = prefix;

    /// <summary>Names start with this (unique per test run), so that concurrent runs do not collide.</summary>
    public string Prefix { get; }

    public IReadOnlyList<string> Hosts => _created.Skip(1).ToList();

    public static string Address(int host) => $"10.77.0.{host + 1}";

    /// <summary>
    /// Why tests that need namespaces are skipped in this process, or null where they must run: only where the
    /// process may not create them (not Linux, or without CAP_SYS_ADMIN and CAP_NET_ADMIN, i.e. not root). Where it
    /// may, any failure of <c>ip</c> (iproute2 missing included) fails the test instead.
    /// </summary>
    public static string? SkipReason() =>
        SkipReason(OperatingSystem.IsLinux(), OperatingSystem.IsLinux() ? File.ReadAllText("/proc/self/status") : null, Environment.UserName);

    /// <summary>The decision of <see cref="SkipReason()"/> from the OS and the text of /proc/self/status.</summary>
    internal static string? SkipReason(bool linux, string? processStatus, string user)
    {
        if (!linux)
            return $"network namespaces are a Linux feature; this is {System.Runtime.InteropServices.RuntimeInformation.OSDescription}";
        if (EffectiveCapabilities(processStatus) is not { } effective)
            return "cannot read this process's capabilities (CapEff in /proc/self/status)";
        bool capable = (effective >> NetAdmin & 1) == 1 && (effective >> SysAdmin & 1) == 1;
        return capable ? null : $"creating network namespaces needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN); running as {user} without them";
    }

    /// <summary>Capability numbers (linux/capability.h).</summary>
    internal const int NetAdmin = 12, SysAdmin = 21;

    /// <summary>The effective capabilities (CapEff) in the text of /proc/self/status, or null when it has none.</summary>
    internal static ulong? EffectiveCapabilities(string? processStatus)
    {
        var line = processStatus?.Split('\n').FirstOrDefault(l => l.StartsWith("CapEff:", StringComparison.Ordinal));
        return line is not null && ulong.TryParse(line["CapEff:".Length..].Trim(), System.Globalization.NumberStyles.HexNumber, null, out ulong effective)
            ? effective : null;
    }

    /// <summary>Creates <paramref name="count"/> hosts; throws, naming the <c>ip</c> command that failed and its error, when one fails.</summary>
    public static NetworkNamespaces Create(int count)
    {
        var namespaces = new NetworkNamespaces($"dsgd{Environment.ProcessId % 100000}{Random.Shared.Next(100, 999)}");
        try
        {
            string hub = namespaces.Add("h");
            namespaces.Exec(hub, "ip", "link", "add", "br0", "type", "bridge");
            namespaces.Exec(hub, "ip", "link", "set", "br0", "up");
            for (int i = 0; i < count; i++)
            {
                string host = namespaces.Add($"n{i}");
                string inside = $"{namespaces.Prefix}v{i}", outside = $"{namespaces.Prefix}b{i}";
                Check(Ip("link", "add", inside, "type", "veth", "peer", "name", outside));
                Check(Ip("link", "set", inside, "netns", host));
                Check(Ip("link", "set", outside, "netns", hub));
                namespaces.Exec(hub, "ip", "link", "set", outside, "master", "br0");
                namespaces.Exec(hub, "ip", "link", "set", outside, "up");
                namespaces.Exec(host, "ip", "link", "set", "lo", "up");
                namespaces.Exec(host, "ip", "link", "set", inside, "name", "eth0");
                namespaces.Exec(host, "ip", "addr", "add", $"{Address(i)}/24", "dev", "eth0");
                namespaces.Exec(host, "ip", "link", "set", "eth0", "up");
            }
            return namespaces;
        }
        catch
        {
            namespaces.Dispose();
            throw;
        }
    }

    /// <summary>The command prefix that runs a program on host <paramref name="host"/>.</summary>
    public IReadOnlyList<string> On(int host) => ["ip", "netns", "exec", Hosts[host]];

    /// <summary>Cuts host <paramref name="host"/> off from every other (its link to the bridge goes down): a network partition.</summary>
    public void Cut(int host) => Exec(Prefix + "h", "ip", "link", "set", $"{Prefix}b{host}", "down");

    public void Dispose()
    {
        foreach (string name in _created)
            Ip("netns", "delete", name);
    }

    private string Add(string suffix)
    {
        string name = Prefix + suffix;
        Check(Ip("netns", "add", name));
        _created.Add(name);
        return name;
    }

    private void Exec(string ns, params string[] command) => Check(Ip(["netns", "exec", ns, .. command]));

    private static void Check((int ExitCode, string Error) result)
    {
        if (result.ExitCode != 0)
            throw new InvalidOperationException($"this process may create network namespaces, yet {result.Error.Trim()}");
    }

    private static (int ExitCode, string Error) Ip(params string[] args)
    {
        var start = new ProcessStartInfo("ip") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (string arg in args)
            start.ArgumentList.Add(arg);
        try
        {
            using var process = Process.Start(start)!;
            string error = process.StandardError.ReadToEnd();
            process.StandardOutput.ReadToEnd();
            if (!process.WaitForExit(TimeSpan.FromSeconds(20)))
            {
                process.Kill(entireProcessTree: true);
                return (-1, $"ip {string.Join(' ', args)}: no answer within 20s");
            }
            return (process.ExitCode, $"ip {string.Join(' ', args)}: {error}");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return (-1, $"the ip command (iproute2) is not available: {e.Message}");
        }
    }
}

/// <summary>
/// A test that needs network namespaces (<see cref="NetworkNamespaces"/>): skipped, with the reason, only where this
/// process may not create them (<see cref="NetworkNamespaces.SkipReason()"/>); as root it runs, and fails if they fail.
/// </summary>
public sealed class NamespaceFactAttribute : FactAttribute
{
    public NamespaceFactAttribute() => Skip = NetworkNamespaces.SkipReason();
}

/// <summary>The <see cref="NamespaceFactAttribute"/> of a theory.</summary>
public sealed class NamespaceTheoryAttribute : TheoryAttribute
{
    public NamespaceTheoryAttribute() => Skip = NetworkNamespaces.SkipReason();
}

/// <summary>The multi-process tests again, with every node on a host of its own (a network namespace).</summary>
[Collection(NodeProcessCollection.Name)]
public class NetworkNamespaceTests(ITestOutputHelper log)
{
    [NamespaceTheory]
    [InlineData("centralized")]
    [InlineData("decentralized")]
    public void Nodes_on_hosts_of_their_own_train_to_the_end(string mode)
    {
        bool decentralized = mode == "decentralized";
        int hosts = 3;
        using var namespaces = NetworkNamespaces.Create(hosts);
        using var temp = new TempFolder();
        string seed = $"{NetworkNamespaces.Address(0)}:4053";
        using var group = new NodeGroup();
        var nodes = Enumerable.Range(0, hosts).Select(i =>
        {
            string roles = decentralized ? "peer" : i == 0 ? "master" : "worker";
            // The same port on every host: each namespace has a port space of its own.
            return group.Start(["node", "--host", NetworkNamespaces.Address(i), "--port", "4053", "--seed-nodes", seed, "--roles", roles,
                                "--mode", mode, "--workers", decentralized ? $"{hosts}" : $"{hosts - 1}",
                                .. NodeProcessTests.SmallRun, "--out", temp[$"host-{i}"]], prefix: namespaces.On(i));
        }).ToList();

        foreach (var node in nodes)
            Assert.True(node.WaitForExit(NodeProcessTests.Bound) == 0, node.Output);
        // Host 0 has the lowest address: the master, or the lead peer (node 0); it alone writes the results.
        Assert.True(File.Exists(Path.Combine(temp["host-0"], RunFiles.ModelFileName)), nodes[0].Output);
        NodeProcess.AssertHoldsOnlyTheLog(temp["host-1"]);
        Assert.Equal(3, File.ReadAllLines(Path.Combine(temp["host-0"], RunFiles.MetricsFileName)).Length);
        log.WriteLine($"{mode} on {hosts} hosts ({string.Join(", ", namespaces.Hosts)}): {nodes[0].Output}");
    }
}

/// <summary>When the namespace tests run and when they are skipped.</summary>
public class NamespaceSkipTests
{
    private const string Root = "Name:\tdotnet\nCapInh:\t0000000000000000\nCapEff:\t000001fffeffffff\n";

    [Theory]
    [InlineData(true, Root, null)]
    [InlineData(true, "CapEff:\t0000000000201000\n", null)]                       // exactly CAP_SYS_ADMIN and CAP_NET_ADMIN
    [InlineData(true, "CapEff:\t0000000000000000\n", "needs root")]              // an ordinary user
    [InlineData(true, "CapEff:\t00000000a80425fb\n", "needs root")]              // root in a default container: no CAP_SYS_ADMIN
    [InlineData(true, "CapEff:\t0000000000200000\n", "needs root")]              // CAP_SYS_ADMIN alone
    [InlineData(true, "Name:\tdotnet\n", "cannot read")]
    [InlineData(false, null, "Linux feature")]
    public void Namespace_tests_are_skipped_only_without_the_capabilities_to_make_namespaces(bool linux, string? status, string? reason)
    {
        string? skip = NetworkNamespaces.SkipReason(linux, status, "someone");
        if (reason is null)
            Assert.Null(skip);
        else
            Assert.Contains(reason, skip);
    }
}
