using System.Security.Cryptography.X509Certificates;
using Akka.Configuration;
using DistSgd.Actors.Deployment;
using DistSgd.Actors.Security;
using DistSgd.Actors.Transport;

namespace DistSgd.Actors.Tests.Security;

/// <summary>What a node's certificate file must hold, what each mistake says, and which peers it accepts.</summary>
public sealed class NodeTlsTests : IDisposable
{
    private readonly TestCertificates _ca = new();
    private readonly TestCertificates _otherCa = new("Another CA");

    public void Dispose()
    {
        _ca.Dispose();
        _otherCa.Dispose();
    }

    [Fact]
    public void A_node_file_of_the_CA_loads_with_its_key_and_the_CA_as_the_only_anchor()
    {
        var tls = _ca.Load("node1");
        Assert.True(tls.Certificate.HasPrivateKey);
        Assert.Equal("CN=node1", tls.Certificate.Subject);
        Assert.Equal(_ca.Authority.Thumbprint, Assert.Single(tls.Authorities).Thumbprint);
    }

    [Fact]
    public void Peers_are_accepted_only_with_a_certificate_of_the_same_CA()
    {
        var tls = _ca.Load("node1");
        Assert.Null(tls.Check(_ca.Load("node2").Certificate, null));
        string? refused = tls.Check(_otherCa.Load("intruder").Certificate, null);
        Assert.NotNull(refused);
        Assert.Contains("CN=intruder", refused);
        Assert.Contains("does not chain to this node's CA", refused);
        Assert.Equal("the peer presented no certificate", tls.Check(null, null));
    }

    [Fact]
    public void The_CA_itself_is_not_a_node_certificate_of_another_CA_and_a_self_signed_certificate_is_refused()
    {
        var tls = _ca.Load("node1");
        // A certificate whose subject copies the CA's name but is signed by another key does not chain.
        using var impostor = new TestCertificates("DistSgd test CA");
        Assert.NotNull(tls.Check(impostor.Load("node2").Certificate, null));
        Assert.NotNull(tls.Check(X509CertificateLoader.LoadCertificate(impostor.Authority.RawData), null));
    }

    public static TheoryData<string, string> BadFiles => new()
    {
        { "missing", "cannot read the file" },
        { "wrong password", "cannot open it with the password given" },
        { "not pkcs12", "expected a PKCS#12 file" },
        { "no CA", "expected the CA certificate that signed every node's certificate" },
        { "no private key", "expected exactly one certificate with its private key" },
        { "expired", "is valid from" },
        { "CA of another file", "does not chain to the CA in the file" },
    };

    [Theory]
    [MemberData(nameof(BadFiles))]
    public void A_bad_certificate_file_fails_naming_the_file_the_flag_and_what_is_wrong(string kind, string expected)
    {
        string path = _ca.Node("node1");
        string password = TestCertificates.Password;
        switch (kind)
        {
            case "missing":
                path = Path.Combine(_ca.Folder, "nowhere.pfx");
                break;
            case "wrong password":
                password = "not-the-password";
                break;
            case "not pkcs12":
                path = Path.Combine(_ca.Folder, "text.pfx");
                File.WriteAllText(path, "this is not a certificate");
                break;
            case "no CA":
                path = _ca.Node("lonely", withAuthority: false);
                break;
            case "no private key":
                path = Path.Combine(_ca.Folder, "ca-only.pfx");
                File.WriteAllBytes(path, new X509Certificate2Collection(X509CertificateLoader.LoadCertificate(_ca.Authority.RawData))
                                             .Export(X509ContentType.Pkcs12, password)!);
                break;
            case "expired":
                path = _ca.Node("old", notAfter: DateTimeOffset.UtcNow.AddDays(-1));
                break;
            case "CA of another file":
                // node1's key and certificate, but the other CA's certificate as the anchor.
                var node = X509CertificateLoader.LoadPkcs12CollectionFromFile(_ca.Node("mixed"), password).Single(c => c.HasPrivateKey);
                path = Path.Combine(_ca.Folder, "mixed.pfx");
                File.WriteAllBytes(path, new X509Certificate2Collection { node, X509CertificateLoader.LoadCertificate(_otherCa.Authority.RawData) }
                                             .Export(X509ContentType.Pkcs12, password)!);
                break;
        }
        var error = Assert.Throws<ConfigurationException>(() => NodeTls.Load(path, password));
        Assert.Contains(path, error.Message);
        Assert.Contains("--tls-cert", error.Message);
        Assert.Contains(expected, error.Message);
    }

    [Theory]
    [InlineData("ssl.suppress-validation = on", NodeTls.SuppressValidationKey)]
    [InlineData("ssl.require-mutual-authentication = off", NodeTls.MutualAuthenticationKey)]
    [InlineData("ssl.certificate.use-thumbprint-over-file = on", NodeTls.ThumbprintKey)]
    [InlineData("ssl.certificate.path = \"\"", NodeTls.CertificatePathKey)]
    public void Settings_that_would_weaken_or_bypass_TLS_are_refused_naming_the_key(string setting, string key)
    {
        var config = ConfigurationFactory.ParseString($"akka.remote.dot-netty.tcp.{setting}").WithFallback(ConfigurationFactory.ParseString($"""
            akka.remote.dot-netty.tcp.enable-ssl = on
            akka.remote.dot-netty.tcp.ssl.certificate.path = "{_ca.Node("node1")}"
            akka.remote.dot-netty.tcp.ssl.certificate.password = "{TestCertificates.Password}"
            """));
        var error = Assert.Throws<ConfigurationException>(() => NodeTls.FromConfig(config));
        Assert.Contains(key, error.Message);
    }

    [Fact]
    public async Task A_node_started_with_TLS_gives_its_data_plane_the_same_identity_and_one_without_cannot_start_a_plain_one()
    {
        var config = ConfigurationFactory.ParseString($$"""
            akka.actor.provider = cluster
            akka.loglevel = OFF
            akka.remote.dot-netty.tcp { hostname = "127.0.0.1", port = 0, enable-ssl = on }
            akka.remote.dot-netty.tcp.ssl.certificate { path = "{{_ca.Node("node1")}}", password = "{{TestCertificates.Password}}" }
            """).WithFallback(DistSgdConfig.ReferenceConfig);
        var tls = NodeTls.FromConfig(config)!;
        var system = NodeConfig.CreateActorSystem(config, tls);
        try
        {
            Assert.Same(tls, DistSgdSettings.DataPlane(system, "run", 10, FrameKind.GradientReply, 1).Tls);
            Assert.StartsWith("akka.ssl.tcp://", Akka.Cluster.Cluster.Get(system).SelfAddress.ToString());
            // Remoting with TLS but no certificate for the data plane: refused, never a plain data plane.
            Assert.Throws<InvalidOperationException>(() => NodeConfig.CreateActorSystem(config, null));
        }
        finally
        {
            await system.Terminate();
        }
    }

    [Fact]
    public void TLS_off_in_the_configuration_means_no_identity()
    {
        Assert.Null(NodeTls.FromConfig(ConfigurationFactory.ParseString("akka.remote.dot-netty.tcp.hostname = x")));
    }
}
