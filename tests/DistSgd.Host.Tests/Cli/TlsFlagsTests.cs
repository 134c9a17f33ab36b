using DistSgd.Host.Runs;
using DistSgd.Host.Tests.Runs;

namespace DistSgd.Host.Tests.Cli;

/// <summary>The --tls-* flags: what a mistake says (exit 2, before any port is opened) and what a good file turns on.</summary>
public sealed class TlsFlagsTests(ScriptCertificates certificates) : IClassFixture<ScriptCertificates>
{
    private static readonly string[] Small = ["--dataset", "blobs", "--samples", "200", "--hidden", "4", "--quiet"];

    public static TheoryData<string, string[], string> Mistakes => new()
    {
        { "a file that is not there", ["--tls-cert", "{dir}/nowhere.pfx", "--tls-password", ScriptCertificates.Password], "nowhere.pfx' (--tls-cert" },
        { "the wrong password", ["--tls-cert", "{master}", "--tls-password", "wrong"], "cannot open it with the password given" },
        { "no password", ["--tls-cert", "{master}"], "wrong or missing password" },
        { "a password without a certificate", ["--tls-password", "x"], "--tls-password (or its variable DISTSGD_TLS_PASSWORD): given, but TLS is off" },
        { "two passwords", ["--tls-cert", "{master}", "--tls-password", "x", "--tls-password-file", "{pwfile}"], "not both" },
        { "a password file that is not there", ["--tls-cert", "{master}", "--tls-password-file", "{dir}/none.txt"], "--tls-password-file: cannot read" },
        { "a plain seed address", ["--tls-cert", "{master}", "--tls-password", ScriptCertificates.Password, "--seed-nodes", "akka.tcp://distsgd@127.0.0.1:4053"],
          "TLS is on, so a seed node's address is akka.ssl.tcp://" },
    };

    [Theory]
    [MemberData(nameof(Mistakes))]
    public void A_TLS_mistake_is_refused_with_exit_2_naming_the_flag(string mistake, string[] flags, string expected)
    {
        var args = flags.Select(f => f.Replace("{dir}", certificates.Cluster).Replace("{master}", certificates.Node("master"))
                                       .Replace("{pwfile}", certificates.PasswordFile)).ToArray();
        var outcome = CliRunner.Run(["node", "--port", "0", .. Small, .. args]);
        Assert.True(outcome.ExitCode == ExitCodes.BadInput, $"{mistake}: exit {outcome.ExitCode}\n{outcome.Output}\n{outcome.Error}");
        Assert.Contains(expected, outcome.Error);
    }

    [Fact]
    public void The_shipped_tls_conf_turns_TLS_on_once_its_path_names_a_certificate()
    {
        using var temp = new TempFolder();
        string shipped = File.ReadAllText(Path.Combine(NodeCommandTests.RepositoryRoot(), "hocon", "tls.conf"));
        Assert.Contains("/etc/distsgd/node1.pfx", shipped);
        File.WriteAllText(temp["tls.conf"], shipped.Replace("/etc/distsgd/node1.pfx", certificates.Node("master")));

        var outcome = CliRunner.Run(["node", "--print-config", .. Small, "--config", temp["tls.conf"], "--tls-password-file", certificates.PasswordFile]);
        Assert.True(outcome.ExitCode == 0, outcome.Error);
        Assert.Contains("akka.remote.dot-netty.tcp.enable-ssl = on", outcome.Output);
        Assert.Contains($"akka.remote.dot-netty.tcp.ssl.certificate.path = {certificates.Node("master")}", outcome.Output);

        // As shipped, the path names no file yet: the message says which key and file.
        var unchanged = CliRunner.Run(["node", "--print-config", .. Small, "--config", Path.Combine(NodeCommandTests.RepositoryRoot(), "hocon", "tls.conf")]);
        Assert.Equal(ExitCodes.BadInput, unchanged.ExitCode);
        Assert.Contains("'/etc/distsgd/node1.pfx' (--tls-cert, or akka.remote.dot-netty.tcp.ssl.certificate.path): cannot read the file", unchanged.Error);
    }

    [Fact]
    public void The_simulated_cluster_over_TLS_writes_the_same_model_as_without()
    {
        using var temp = new TempFolder();
        string[] run = ["train", "--workers", "2", "--epochs", "2", "--hidden", "8", "--dataset", "blobs", "--samples", "300"];
        var plain = CliRunner.Run([.. run, "--out", temp["plain"]]);
        var tls = CliRunner.Run([.. run, "--out", temp["tls"], "--tls-cert", certificates.Node("master"), "--tls-password-file", certificates.PasswordFile]);
        Assert.True(plain.ExitCode == 0, plain.Error);
        Assert.True(tls.ExitCode == 0, tls.Error);
        // TLS was really on in the second run and off in the first: the identity was loaded, and every node's
        // Akka.Remote listened on akka.ssl.tcp (NodeTlsTests checks that the data plane takes its TLS from there).
        Assert.Contains("tls: on, certificate CN=master", tls.Output);
        Assert.DoesNotContain("tls: on", plain.Output);
        Assert.Equal(3, ListeningOn(temp["tls"], "akka.ssl.tcp"));
        Assert.Equal(0, ListeningOn(temp["tls"], "akka.tcp"));
        Assert.Equal(3, ListeningOn(temp["plain"], "akka.tcp"));
        Assert.Equal(File.ReadAllBytes(Path.Combine(temp["plain"], RunFiles.ModelFileName)), File.ReadAllBytes(Path.Combine(temp["tls"], RunFiles.ModelFileName)));
    }

    /// <summary>How many nodes of the run in <paramref name="folder"/> started remoting on <paramref name="scheme"/> (its distsgd.log).</summary>
    private static int ListeningOn(string folder, string scheme) =>
        File.ReadLines(Path.Combine(folder, DistSgd.Host.Results.RunLog.FileName)).Count(l => l.Contains($"Remoting started; listening on addresses : [{scheme}://", StringComparison.Ordinal));

    [Fact]
    public void Sequential_training_refuses_a_certificate()
    {
        var outcome = CliRunner.Run(["train", "--mode", "sequential", .. Small, "--tls-cert", certificates.Node("master")]);
        Assert.Equal(ExitCodes.BadInput, outcome.ExitCode);
        Assert.Contains("--tls-cert: sequential training", outcome.Error);
    }

    [Fact]
    public void A_good_certificate_turns_TLS_on_with_ssl_seed_addresses_and_the_password_never_shows()
    {
        var outcome = CliRunner.Run(["node", "--print-config", "--seed-nodes", "127.0.0.1:4053", .. Small,
                                     "--tls-cert", certificates.Node("master"), "--tls-password-file", certificates.PasswordFile]);
        Assert.True(outcome.ExitCode == 0, outcome.Error);
        Assert.Contains("akka.remote.dot-netty.tcp.enable-ssl = on", outcome.Output);
        Assert.Contains("akka.remote.dot-netty.tcp.ssl.require-mutual-authentication = on", outcome.Output);
        Assert.Contains("akka.cluster.seed-nodes = [\"akka.ssl.tcp://distsgd@127.0.0.1:4053\"]", outcome.Output);
        Assert.DoesNotContain(ScriptCertificates.Password, outcome.Output);
    }
}
