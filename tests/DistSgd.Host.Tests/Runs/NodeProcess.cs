using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace DistSgd.Host.Tests.Runs;

/// <summary>
/// A `distsgd node` (or any distsgd command) in its own OS process: the built distsgd.dll next to the test
/// assembly (the test project references the Host project), run with `dotnet`. Output is captured; Dispose
/// kills the whole process tree, so a failing test leaves nothing behind.
/// </summary>
internal sealed class NodeProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly StringBuilder _standardOutput = new();

    private NodeProcess(Process process) => _process = process;

    /// <summary>The distsgd.dll built with the tests.</summary>
    public static string Program => Path.Combine(AppContext.BaseDirectory, "distsgd.dll");

    /// <summary>
    /// Starts `[prefix…] dotnet distsgd.dll args…`; <paramref name="prefix"/> is a wrapper such as
    /// `ip netns exec NAME`, <paramref name="environment"/> extra variables.
    /// </summary>
    public static NodeProcess Start(IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null,
                                    IReadOnlyList<string>? prefix = null)
    {
        Assert.True(File.Exists(Program), $"{Program} is missing: the Host test project must reference the Host project");
        var all = new List<string>(prefix ?? []);
        all.AddRange(["dotnet", Program]);
        all.AddRange(args);
        return Launch(all, environment);
    }

    /// <summary>Starts any program (a script, a published distsgd) with <paramref name="args"/>, captured and killed like a node.</summary>
    public static NodeProcess StartProgram(string program, IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null) =>
        Launch([program, .. args], environment);

    private static NodeProcess Launch(List<string> all, IReadOnlyDictionary<string, string>? environment)
    {
        var start = new ProcessStartInfo(all[0])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string arg in all.Skip(1))
            start.ArgumentList.Add(arg);
        // A developer's own DISTSGD_* variables must not change what the test asked for.
        foreach (var variable in start.Environment.Keys.Where(k => k.StartsWith("DISTSGD_", StringComparison.Ordinal)).ToList())
            start.Environment.Remove(variable);
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
            start.Environment[name] = value;
        var process = new Process { StartInfo = start };
        var node = new NodeProcess(process);
        process.OutputDataReceived += (_, e) =>
        {
            node.Append(e.Data);
            node.AppendStandardOutput(e.Data);
        };
        process.ErrorDataReceived += (_, e) => node.Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return node;
    }

    /// <summary>Everything the process printed so far (stdout and stderr, interleaved by line).</summary>
    public string Output
    {
        get
        {
            lock (_output)
                return _output.ToString();
        }
    }

    /// <summary>What the process printed on standard output alone.</summary>
    public string StandardOutput
    {
        get
        {
            lock (_output)
                return _standardOutput.ToString();
        }
    }

    public bool HasExited => _process.HasExited;

    /// <summary>Waits until the output contains <paramref name="text"/>; fails the test (showing the output) after <paramref name="timeout"/>.</summary>
    /// <param name="others">Processes whose output the failure shows too (what the other side of a conversation saw).</param>
    public void WaitForOutput(string text, TimeSpan timeout, params NodeProcess[] others)
    {
        var clock = Stopwatch.StartNew();
        while (!Output.Contains(text, StringComparison.Ordinal))
        {
            if (clock.Elapsed > timeout || _process.HasExited)
                Assert.Fail($"the process did not print '{text}' within {timeout.TotalSeconds:0}s; its output:\n{Output}" +
                            string.Concat(others.Select((o, i) => $"\n---- the output of other process {i}:\n{o.Output}")));
            Thread.Sleep(100);
        }
    }

    /// <summary>Sends SIGTERM, as systemd or a container runtime stops a service.</summary>
    public void Terminate()
    {
        using var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
    }

    /// <summary>SIGKILL (kill -9): the process dies at once, closing no connection gracefully and leaving no cluster.</summary>
    public void KillNow() => Kill();

    /// <summary>Sends SIGSTOP (<paramref name="stop"/>) or SIGCONT: a frozen process keeps its connections open but answers nothing.</summary>
    public void Freeze(bool stop)
    {
        using var signal = Process.Start("kill", [stop ? "-STOP" : "-CONT", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        signal.WaitForExit();
    }

    /// <summary>Waits for the process to exit and returns its exit code; fails the test (showing the output) after <paramref name="timeout"/>.</summary>
    public int WaitForExit(TimeSpan timeout)
    {
        if (!_process.WaitForExit(timeout))
        {
            Kill();
            Assert.Fail($"the process did not exit within {timeout.TotalSeconds:0}s; its output:\n{Output}");
        }
        _process.WaitForExit(); // flushes the asynchronous output readers
        return _process.ExitCode;
    }

    public void Dispose()
    {
        Kill();
        _process.Dispose();
    }

    /// <summary>Kills the process and its children at once (SIGKILL, as kill -9): no shutdown code runs.</summary>
    public void Kill()
    {
        try
        {
            if (!_process.HasExited)
                _process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // Never started or already gone.
        }
    }

    private void AppendStandardOutput(string? line)
    {
        if (line is null)
            return;
        lock (_output)
            _standardOutput.AppendLine(line);
    }

    /// <summary>
    /// Asserts that <paramref name="folder"/> holds the node's Akka log and none of the results, which only the node that
    /// ends the run writes.
    /// </summary>
    public static void AssertHoldsOnlyTheLog(string folder)
    {
        Assert.True(File.Exists(Path.Combine(folder, DistSgd.Host.Results.RunLog.FileName)), $"{folder} holds no {DistSgd.Host.Results.RunLog.FileName}");
        Assert.Equal(new[] { DistSgd.Host.Results.RunLog.FileName }, Directory.GetFileSystemEntries(folder).Select(p => Path.GetFileName(p)!).ToArray());
    }

    private void Append(string? line)
    {
        if (line is null)
            return;
        lock (_output)
            _output.AppendLine(line);
    }

    /// <summary>Loopback ports that were free a moment ago (bound to port 0, then released).</summary>
    public static int[] FreePorts(int count)
    {
        var listeners = Enumerable.Range(0, count).Select(_ =>
        {
            var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            return listener;
        }).ToList();
        var ports = listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port).ToArray();
        foreach (var listener in listeners)
            listener.Stop();
        return ports;
    }
}

/// <summary>Several node processes that are all killed together when the test ends, however it ends.</summary>
internal sealed class NodeGroup : IDisposable
{
    private readonly List<NodeProcess> _nodes = new();

    public NodeProcess Start(IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null, IReadOnlyList<string>? prefix = null)
    {
        var node = NodeProcess.Start(args, environment, prefix);
        _nodes.Add(node);
        return node;
    }

    public void Dispose()
    {
        foreach (var node in _nodes)
            node.Dispose();
    }
}
