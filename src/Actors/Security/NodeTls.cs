using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Akka.Actor.Setup;
using Akka.Configuration;
using Akka.Event;
using Akka.Remote.Transport.DotNetty;

namespace DistSgd.Actors.Security;

/// <summary>
/// A node's TLS identity: its certificate with the private key, and the certificate authorities that every other
/// node's certificate must chain to. One PKCS#12 file holds both (the node's key and certificate, and the CA's
/// certificate: <c>scripts/make-certs.sh</c> writes such files). The same identity secures Akka.Remote (through
/// Akka's <see cref="DotNettySslSetup"/> with a custom validator, mutual authentication required) and the direct
/// data plane (<see cref="SslStream"/>, client certificates required).
/// </summary>
/// <remarks>
/// Peers are checked against <see cref="Authorities"/> only (X509 custom root trust), never the operating system's
/// store: a private CA needs no system-wide installation, and a certificate from a public CA, or from another
/// private one, is refused. Akka.Remote 1.5.74 by itself validates against the system store only (its
/// <c>CertificateValidation.ValidateChain</c> accepts what SslStream's default chain accepts), hence the custom
/// validator. Host names are not compared (Akka's own default, validate-certificate-hostname = off): a node is
/// whoever holds a key whose certificate the CA signed. Revocation is not checked (a private CA has no CRL here):
/// to remove a node, issue new certificates from a new CA.
/// </remarks>
public sealed class NodeTls
{
    /// <summary>Akka.Remote's keys, which DistSgd reads too (the CLI's --tls-* flags set them).</summary>
    public const string EnableSslKey = "akka.remote.dot-netty.tcp.enable-ssl";
    public const string CertificatePathKey = "akka.remote.dot-netty.tcp.ssl.certificate.path";
    public const string CertificatePasswordKey = "akka.remote.dot-netty.tcp.ssl.certificate.password";
    public const string SuppressValidationKey = "akka.remote.dot-netty.tcp.ssl.suppress-validation";
    public const string MutualAuthenticationKey = "akka.remote.dot-netty.tcp.ssl.require-mutual-authentication";
    public const string ThumbprintKey = "akka.remote.dot-netty.tcp.ssl.certificate.use-thumbprint-over-file";

    /// <summary>The protocols the data plane accepts; Akka.Remote's DotNetty offers 1.0–1.2, of which OpenSSL 3 keeps 1.2.</summary>
    public const SslProtocols Protocols = SslProtocols.Tls12 | SslProtocols.Tls13;

    private readonly SslStreamCertificateContext _context;

    private NodeTls(string path, X509Certificate2 certificate, X509Certificate2Collection authorities, X509Certificate2Collection intermediates)
    {
        Path = path;
        Certificate = certificate;
        Authorities = authorities;
        Intermediates = intermediates;
        _context = SslStreamCertificateContext.Create(certificate, intermediates, offline: true);
    }

    /// <summary>The PKCS#12 file it was read from.</summary>
    public string Path { get; }

    /// <summary>This node's certificate, with its private key.</summary>
    public X509Certificate2 Certificate { get; }

    /// <summary>The trust anchors: a peer's certificate must chain to one of these.</summary>
    public X509Certificate2Collection Authorities { get; }

    /// <summary>Intermediate CA certificates of the file, sent along in handshakes.</summary>
    public X509Certificate2Collection Intermediates { get; }

    /// <summary>
    /// Reads a PKCS#12 file: exactly one certificate with a private key (this node's), and the CA certificates it
    /// chains to. Every failure is a <see cref="ConfigurationException"/> that names the file and the flag or key,
    /// what was expected and what was found: no file, wrong password, not PKCS#12, no private key, no CA, expired,
    /// or a node certificate its own CA did not sign.
    /// </summary>
    public static NodeTls Load(string path, string? password)
    {
        string where = $"TLS certificate '{path}' (--tls-cert, or {CertificatePathKey})";
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigurationException($"{where}: cannot read the file ({e.Message})");
        }
        if (ContentType(bytes) is var kind && kind != X509ContentType.Pkcs12)
            throw new ConfigurationException(
                $"{where}: expected a PKCS#12 file (.pfx/.p12) holding the node's key, its certificate and the CA certificate, " +
                $"found {(kind == X509ContentType.Unknown ? "something else" : $"{kind} content")} (scripts/make-certs.sh writes such files)");
        X509Certificate2Collection all;
        try
        {
            all = X509CertificateLoader.LoadPkcs12Collection(bytes, password ?? "", X509KeyStorageFlags.DefaultKeySet);
        }
        catch (CryptographicException e)
        {
            throw new ConfigurationException(
                $"{where}: cannot open it with the password given (--tls-password, --tls-password-file, DISTSGD_TLS_PASSWORD or " +
                $"{CertificatePasswordKey}): wrong or missing password? ({e.Message})");
        }

        var keyed = all.Where(c => c.HasPrivateKey).ToList();
        if (keyed.Count != 1)
            throw new ConfigurationException(
                $"{where}: expected exactly one certificate with its private key (this node's), found {keyed.Count} among {all.Count} certificates");
        var certificate = keyed[0];
        if (certificate.GetRSAPrivateKey() is null && certificate.GetECDsaPrivateKey() is null)
            throw new ConfigurationException($"{where}: the private key of {certificate.Subject} is neither RSA nor ECDSA, or cannot be read");
        var others = all.Where(c => !ReferenceEquals(c, certificate)).ToList();
        var authorities = new X509Certificate2Collection(others.Where(c => c.SubjectName.RawData.AsSpan().SequenceEqual(c.IssuerName.RawData) && IsAuthority(c)).ToArray());
        var intermediates = new X509Certificate2Collection(others.Where(c => !authorities.Contains(c) && IsAuthority(c)).ToArray());
        if (authorities.Count == 0)
            throw new ConfigurationException(
                $"{where}: expected the CA certificate that signed every node's certificate in the file too (the peers are checked against it, " +
                $"not against the system's trust store), found only {certificate.Subject}; export with openssl pkcs12 -export … -certfile ca.crt " +
                "(scripts/make-certs.sh does)");
        var now = DateTime.Now;
        if (now < certificate.NotBefore || now > certificate.NotAfter)
            throw new ConfigurationException(
                $"{where}: {certificate.Subject} is valid from {certificate.NotBefore:u} to {certificate.NotAfter:u}, not now ({now:u})");
        var tls = new NodeTls(path, certificate, authorities, intermediates);
        if (tls.Check(certificate, null) is { } problem)
            throw new ConfigurationException($"{where}: the node's own certificate {certificate.Subject} does not chain to the CA in the file: {problem}");
        return tls;
    }

    /// <summary>
    /// The identity the configuration asks for: null when akka.remote.dot-netty.tcp.enable-ssl is off, else the
    /// certificate file of ssl.certificate.path. Settings DistSgd cannot honour securely fail, naming their key.
    /// </summary>
    public static NodeTls? FromConfig(Config config)
    {
        if (!config.GetBoolean(EnableSslKey, false))
            return null;
        if (config.GetBoolean(SuppressValidationKey, false))
            throw new ConfigurationException(
                $"{SuppressValidationKey} = on: DistSgd always checks every peer's certificate against the CA in the node's certificate file; " +
                "remove the key (a test CA from scripts/make-certs.sh needs no validation switched off)");
        if (!config.GetBoolean(MutualAuthenticationKey, true))
            throw new ConfigurationException(
                $"{MutualAuthenticationKey} = off: DistSgd requires every node to present its certificate (without it any client could " +
                "join, CVE-2025-61778); remove the key");
        if (config.GetBoolean(ThumbprintKey, false))
            throw new ConfigurationException($"{ThumbprintKey} = on: DistSgd reads the node's certificate from a PKCS#12 file ({CertificatePathKey})");
        string path = config.GetString(CertificatePathKey, "");
        if (string.IsNullOrWhiteSpace(path))
            throw new ConfigurationException($"{EnableSslKey} = on but {CertificatePathKey} is empty: give --tls-cert FILE (a PKCS#12 file)");
        string password = config.GetString(CertificatePasswordKey, "") ?? "";
        return Load(path, password);
    }

    /// <summary>
    /// The configuration to start Akka with: the certificate path and password blanked (Akka gets the loaded
    /// certificate through <see cref="AkkaSetup"/>; the password stays out of the running system's settings).
    /// </summary>
    public static Config WithoutSecrets(Config config) =>
        ConfigurationFactory.ParseString($"{CertificatePathKey} = \"\"\n{CertificatePasswordKey} = \"\"").WithFallback(config);

    /// <summary>
    /// Checks a peer's certificate: it must chain to one of <see cref="Authorities"/> (intermediates from this file or
    /// sent by the peer may sit between), and be within its validity period. Returns null when accepted, else why not.
    /// </summary>
    public string? Check(X509Certificate? peer, X509Chain? sentChain)
    {
        if (peer is null)
            return "the peer presented no certificate";
        using var copy = peer is X509Certificate2 ? null : X509CertificateLoader.LoadCertificate(peer.GetRawCertData());
        var target = (peer as X509Certificate2) ?? copy!;
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(Authorities);
        chain.ChainPolicy.ExtraStore.AddRange(Intermediates);
        if (sentChain is not null)
        {
            // What the peer sent can only add links: trust still ends at our own anchors.
            foreach (var element in sentChain.ChainElements)
                chain.ChainPolicy.ExtraStore.Add(element.Certificate);
        }
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.VerificationFlags = X509VerificationFlags.NoFlag;
        if (chain.Build(target))
            return null;
        string status = string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation.Trim()).Where(s => s.Length > 0).Distinct());
        return $"{target.Subject} (issued by {target.Issuer}) does not chain to this node's CA {Authorities[0].Subject}: " +
               (status.Length > 0 ? status : "untrusted");
    }

    /// <summary>Akka.Remote's TLS: this certificate, mutual authentication, peers validated by <see cref="Check"/>.</summary>
    public DotNettySslSetup AkkaSetup() => new(Certificate, suppressValidation: false, requireMutualAuthentication: true,
        validateCertificateHostname: false, customValidator: (certificate, chain, peer, _, log) =>
        {
            if (Check(certificate, chain) is not { } problem)
                return true;
            log.Warning("TLS: refused the connection with {0}: {1}", peer, problem);
            return false;
        });

    /// <summary>
    /// The identity the data plane of <paramref name="system"/> uses: null on a plain node. A node whose Akka.Remote
    /// runs TLS always has one (<see cref="Deployment.NodeConfig.CreateActorSystem"/>), so no payload goes in clear.
    /// </summary>
    public static NodeTls? Of(Akka.Actor.ActorSystem system)
    {
        var setup = system.Settings.Setup.Get<NodeTlsSetup>();
        if (setup.HasValue)
            return setup.Value.Tls;
        if (system.Settings.Config.GetBoolean(EnableSslKey, false))
            throw new InvalidOperationException(
                $"{EnableSslKey} is on but the node has no certificate for its data plane: start it with NodeConfig.CreateActorSystem");
        return null;
    }

    /// <summary>The data plane's server side: TLS 1.2/1.3, a client certificate required and checked by <see cref="Check"/>.</summary>
    public SslServerAuthenticationOptions ServerOptions() => new()
    {
        ServerCertificateContext = _context,
        ClientCertificateRequired = true,
        EnabledSslProtocols = Protocols,
        CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        RemoteCertificateValidationCallback = (_, certificate, chain, _) => Check(certificate, chain) is null,
    };

    /// <summary>The data plane's client side: presents this certificate and checks the server's by <see cref="Check"/>.</summary>
    public SslClientAuthenticationOptions ClientOptions(string targetHost) => new()
    {
        TargetHost = targetHost,
        ClientCertificateContext = _context,
        EnabledSslProtocols = Protocols,
        CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        RemoteCertificateValidationCallback = (_, certificate, chain, _) => Check(certificate, chain) is null,
    };

    private static X509ContentType ContentType(byte[] bytes)
    {
        try
        {
            return X509Certificate2.GetCertContentType(bytes);
        }
        catch (CryptographicException)
        {
            return X509ContentType.Unknown;
        }
    }

    private static bool IsAuthority(X509Certificate2 certificate) =>
        certificate.Extensions.OfType<X509BasicConstraintsExtension>().Any(b => b.CertificateAuthority);
}

/// <summary>Carries a node's <see cref="NodeTls"/> in its ActorSystem's setup, where its data plane finds it.</summary>
public sealed class NodeTlsSetup(NodeTls tls) : Setup
{
    public NodeTls Tls { get; } = tls;
}
