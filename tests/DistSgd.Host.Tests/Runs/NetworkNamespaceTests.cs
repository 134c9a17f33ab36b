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

    /// <summary>Creates <paramref name="count"/> hosts, or returns why they cannot be created here.</summary>
    public static (NetworkNamespaces? Namespaces, string? Reason) TryCreate(int count)
    {
        if (!OperatingSystem.IsLinux())
            return (null, $"network namespaces are a Linux feature; this is {System.Runtime.InteropServices.RuntimeInformation.OSDescription}");
        if (Environment.UserName != "root" && Ip("netns", "list").ExitCode != 0)
            return (null, $"creating network namespaces needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN); running as {Environment.UserName}");
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
            return (namespaces, null);
        }
        catch (InvalidOperationException e)
        {
            namespaces.Dispose();
            return (null, $"network namespaces cannot be created here: {e.Message}");
        }
    }

    /// <summary>
    /// Creates <paramref name="count"/> hosts for a test, or returns null having logged why the test is skipped: only
    /// where namespaces cannot be created (not root, no iproute2, not Linux); any other reason fails the test.
    /// </summary>
    public static NetworkNamespaces? CreateOrSkip(int count, ITestOutputHelper log)
    {
        var (namespaces, reason) = TryCreate(count);
        if (namespaces is null)
        {
            log.WriteLine($"SKIPPED: {reason}");
            Assert.Matches("needs root|not available|cannot be created|Linux feature", reason);
        }
        return namespaces;
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
            throw new InvalidOperationException(result.Error.Trim());
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

/// <summary>The multi-process tests again, with every node on a host of its own (a network namespace).</summary>
[Collection(NodeProcessCollection.Name)]
public class NetworkNamespaceTests(ITestOutputHelper log)
{
    [Theory]
    [InlineData("centralized")]
    [InlineData("decentralized")]
    public void Nodes_on_hosts_of_their_own_train_to_the_end(string mode)
    {
        bool decentralized = mode == "decentralized";
        int hosts = 3;
        using var namespaces = NetworkNamespaces.CreateOrSkip(hosts, log);
        if (namespaces is null)
            return;
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
        Assert.False(Directory.Exists(temp["host-1"]));
        Assert.Equal(3, File.ReadAllLines(Path.Combine(temp["host-0"], RunFiles.MetricsFileName)).Length);
        log.WriteLine($"{mode} on {hosts} hosts ({string.Join(", ", namespaces.Hosts)}): {nodes[0].Output}");
    }
}
