using System.Diagnostics;

namespace DistSgd.Host.Tests.Runs;

/// <summary>
/// Two certificate authorities made by scripts/make-certs.sh (openssl), as a user makes them: "cluster" with the
/// nodes master, worker and probe, and "other" with intruder. Each .pfx holds the node's key and certificate and
/// its CA's certificate; every file's password is <see cref="Password"/>.
/// </summary>
public sealed class ScriptCertificates : IDisposable
{
    public const string Password = "tls-test-password";

    private readonly TempFolder _folder = new();

    public ScriptCertificates()
    {
        MakeCerts(Cluster, "master", "worker", "probe");
        MakeCerts(Other, "intruder");
        File.WriteAllText(PasswordFile, Password + "\n");
    }

    public string Cluster => _folder["cluster"];

    public string Other => _folder["other"];

    /// <summary>A file holding the password and a line break, as `echo` writes it.</summary>
    public string PasswordFile => _folder["password.txt"];

    public string Node(string name) => Path.Combine(name == "intruder" ? Other : Cluster, $"{name}.pfx");

    public static IReadOnlyDictionary<string, string> PasswordVariable => new Dictionary<string, string> { ["DISTSGD_TLS_PASSWORD"] = Password };

    /// <summary>A script of the repository's scripts/ folder.</summary>
    public static string Script(string name) => Path.Combine(Cli.NodeCommandTests.RepositoryRoot(), "scripts", name);

    private static void MakeCerts(string folder, params string[] nodes)
    {
        var start = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(Script("make-certs.sh"));
        start.ArgumentList.Add(folder);
        foreach (string node in nodes)
            start.ArgumentList.Add(node);
        start.Environment["DISTSGD_TLS_PASSWORD"] = Password;
        using var process = Process.Start(start)!;
        string output = process.StandardOutput.ReadToEnd() + process.StandardError.ReadToEnd();
        Assert.True(process.WaitForExit(30_000), "make-certs.sh did not finish within 30s");
        Assert.True(process.ExitCode == 0, $"make-certs.sh failed (is openssl installed?):\n{output}");
    }

    public void Dispose() => _folder.Dispose();
}
