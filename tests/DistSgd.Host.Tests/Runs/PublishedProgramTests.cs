using System.Diagnostics;
using DistSgd.Host.Tests.Cli;

namespace DistSgd.Host.Tests.Runs;

/// <summary>
/// scripts/publish.sh's single file, run where no .NET is installed: a mount namespace of this machine in which every
/// .NET install folder is an empty tmpfs, so neither `dotnet` nor a shared runtime can be found (DOTNET_ROOT unset).
/// </summary>
[Collection(NodeProcessCollection.Name)]
public class PublishedProgramTests
{
    /// <summary>
    /// How long publishing may take: a Release build of the three projects for linux-x64 and the bundling, IL only (about
    /// 1 to 1.5 minutes of CPU; over 8 minutes of wall time were seen on the 2 cores shared by five builds).
    /// </summary>
    private static readonly TimeSpan PublishBound = TimeSpan.FromMinutes(15);

    [PublishedProgramFact]
    public void The_published_file_trains_where_no_dotnet_is_installed_and_gives_the_model_train_gives()
    {
        using var temp = new TempFolder();
        string root = NodeCommandTests.RepositoryRoot();
        using (var publish = NodeProcess.StartProgram("env", [.. WithoutTestBuildVariables(), "bash", Path.Combine(root, "scripts", "publish.sh"),
                                                              "--no-ready-to-run", temp["dist"]]))
            Assert.True(publish.WaitForExit(PublishBound) == 0, publish.Output);
        string program = Path.Combine(temp["dist"], "distsgd");
        Assert.True(File.Exists(program), $"publish.sh wrote no {program}");
        Assert.True(Directory.Exists(Path.Combine(temp["dist"], "data", "fashion-mnist-sample")), "the bundled sample is not next to the file");
        Assert.Equal(["distsgd"], Directory.GetFiles(temp["dist"]).Select(Path.GetFileName));

        string[] hidden = InstallFolders().ToArray();
        Assert.NotEmpty(hidden);
        string[] run = ["train", .. NodeProcessTests.SmallRun, "--workers", "2", "--out", temp["published"]];
        // Inside the namespace: every install folder hidden, then `dotnet` must not run, then the published file runs.
        string script = string.Join(" && ", hidden.Select(folder => $"mount -t tmpfs none '{folder}'")) +
                        " && if dotnet --info >/dev/null 2>&1; then echo 'dotnet still runs inside the namespace' >&2; exit 97; fi" +
                        " && exec \"$0\" \"$@\"";
        var environment = new Dictionary<string, string> { ["DOTNET_BUNDLE_EXTRACT_BASE_DIR"] = temp["bundle"] };
        using (var published = NodeProcess.StartProgram("env", ["-u", "DOTNET_ROOT", "unshare", "--mount", "--propagation", "private",
                                                                "sh", "-c", script, program, .. run], environment))
        {
            Assert.True(published.WaitForExit(NodeProcessTests.Bound) == 0, published.Output);
            Assert.Contains("done: 2 epochs", published.Output);
        }

        // The same run in this process, on the SDK's runtime: the same model, byte for byte.
        var reference = CliRunner.Run(["train", .. NodeProcessTests.SmallRun, "--workers", "2", "--out", temp["reference"]]);
        Assert.True(reference.ExitCode == 0, reference.Error);
        Assert.Equal(File.ReadAllBytes(Path.Combine(temp["reference"], DistSgd.Host.Runs.RunFiles.ModelFileName)),
                     File.ReadAllBytes(Path.Combine(temp["published"], DistSgd.Host.Runs.RunFiles.ModelFileName)));
    }

    /// <summary>
    /// The folders a .NET install can be found in: the `dotnet` on PATH (its real folder), $DOTNET_ROOT, ~/.dotnet and the
    /// usual system places; those that exist.
    /// </summary>
    internal static IEnumerable<string> InstallFolders()
    {
        var folders = new List<string>();
        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var host = new FileInfo(Path.Combine(dir, "dotnet"));
            if (host.Exists)
                folders.Add(Path.GetDirectoryName(host.ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? host.FullName)!);
        }
        folders.Add(Environment.GetEnvironmentVariable("DOTNET_ROOT") ?? "");
        folders.Add(Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".dotnet"));
        folders.AddRange(["/usr/share/dotnet", "/usr/lib/dotnet", "/usr/local/share/dotnet", "/opt/dotnet", "/etc/dotnet"]);
        // A folder on PATH that holds other programs too (/usr/bin) is not an install folder: its `dotnet` is a link into one.
        return folders.Where(f => f.Length > 0 && Directory.Exists(f) && f is not "/usr/bin" and not "/bin" and not "/usr/local/bin")
                      .Select(f => Path.GetFullPath(f).TrimEnd('/')).Distinct();
    }

    /// <summary>`env` arguments that unset the variables `dotnet test` sets for its own MSBuild, which a nested publish must not inherit.</summary>
    private static IEnumerable<string> WithoutTestBuildVariables() =>
        Environment.GetEnvironmentVariables().Keys.Cast<string>()
                   .Where(name => name.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase) || name.StartsWith("VSTEST", StringComparison.OrdinalIgnoreCase))
                   .SelectMany(name => new[] { "-u", name });

    /// <summary>Why this process cannot hide the install folders (it needs a mount namespace: root's CAP_SYS_ADMIN, and unshare), or null.</summary>
    internal static string? SkipReason(bool linux, string? processStatus, bool unshareFound)
    {
        if (!linux)
            return "the published file is linux-x64 and the check hides folders in a Linux mount namespace";
        if (NetworkNamespaces.EffectiveCapabilities(processStatus) is not { } effective || (effective >> NetworkNamespaces.SysAdmin & 1) == 0)
            return "hiding the .NET install folders needs a mount namespace: run as root (CAP_SYS_ADMIN)";
        return unshareFound ? null : "unshare (util-linux) is not on PATH";
    }
}

/// <summary>
/// The published-file test: skipped, with the reason, only where this process cannot make a mount namespace
/// (<see cref="PublishedProgramTests.SkipReason"/>); as root with unshare it runs, and a failure to publish or hide fails it.
/// </summary>
public sealed class PublishedProgramFactAttribute : FactAttribute
{
    public PublishedProgramFactAttribute() => Skip = PublishedProgramTests.SkipReason(
        OperatingSystem.IsLinux(), OperatingSystem.IsLinux() ? File.ReadAllText("/proc/self/status") : null,
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(dir => File.Exists(Path.Combine(dir, "unshare"))));
}

/// <summary>When the published-file test runs and when it says why not.</summary>
public class PublishedProgramSkipTests
{
    private const string Root = "Name:\tdotnet\nCapEff:\t000001ffffffffff\n";
    private const string Unprivileged = "Name:\tdotnet\nCapEff:\t0000000000000000\n";

    [Fact]
    public void It_runs_as_root_with_unshare_and_otherwise_names_what_is_missing()
    {
        Assert.Null(PublishedProgramTests.SkipReason(linux: true, Root, unshareFound: true));
        Assert.Contains("run as root (CAP_SYS_ADMIN)", PublishedProgramTests.SkipReason(linux: true, Unprivileged, unshareFound: true));
        Assert.Contains("run as root (CAP_SYS_ADMIN)", PublishedProgramTests.SkipReason(linux: true, processStatus: null, unshareFound: true));
        Assert.Contains("unshare (util-linux) is not on PATH", PublishedProgramTests.SkipReason(linux: true, Root, unshareFound: false));
        Assert.Contains("linux-x64", PublishedProgramTests.SkipReason(linux: false, processStatus: null, unshareFound: true));
    }

    [Fact]
    public void The_install_folders_hidden_include_the_real_folder_of_the_dotnet_on_PATH()
    {
        string host = Environment.GetEnvironmentVariable("PATH")!.Split(':').Select(dir => Path.Combine(dir, "dotnet")).First(File.Exists);
        string real = Path.GetDirectoryName(new FileInfo(host).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? host)!;
        Assert.Contains(Path.GetFullPath(real).TrimEnd('/'), PublishedProgramTests.InstallFolders());
        Assert.DoesNotContain("/usr/bin", PublishedProgramTests.InstallFolders());
    }
}
