using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using DistSgd.Actors.Security;

namespace DistSgd.Actors.Tests.Security;

/// <summary>
/// A throw-away certificate authority made with .NET's CertificateRequest (no openssl needed), and PKCS#12 files of
/// node certificates it signs, laid out like scripts/make-certs.sh's: the node's key and certificate plus the CA's.
/// </summary>
internal sealed class TestCertificates : IDisposable
{
    public const string Password = "test-password";

    private readonly ECDsa _caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);

    public TestCertificates(string name = "DistSgd test CA")
    {
        Folder = Directory.CreateTempSubdirectory("distsgd-tls-").FullName;
        var request = new CertificateRequest($"CN={name}", _caKey, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        Authority = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-10), DateTimeOffset.UtcNow.AddYears(1));
    }

    public string Folder { get; }

    /// <summary>The CA's certificate, with its key.</summary>
    public X509Certificate2 Authority { get; }

    /// <summary>Writes NAME.pfx (node key and certificate, and the CA certificate unless <paramref name="withAuthority"/> is off).</summary>
    public string Node(string name, bool withAuthority = true, DateTimeOffset? notAfter = null, string password = Password)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(Authority, true, false));
        var start = DateTimeOffset.UtcNow.AddDays(-5);
        using var signed = request.Create(Authority, start, notAfter ?? DateTimeOffset.UtcNow.AddMonths(6), RandomNumberGenerator.GetBytes(8));
        using var withKey = signed.CopyWithPrivateKey(key);
        var files = new X509Certificate2Collection { withKey };
        if (withAuthority)
            files.Add(X509CertificateLoader.LoadCertificate(Authority.RawData));
        string path = Path.Combine(Folder, $"{name}.pfx");
        File.WriteAllBytes(path, files.Export(X509ContentType.Pkcs12, password)!);
        return path;
    }

    /// <summary>A loaded identity of a node of this CA.</summary>
    public NodeTls Load(string name) => NodeTls.Load(Node(name), Password);

    public void Dispose()
    {
        Authority.Dispose();
        _caKey.Dispose();
        Directory.Delete(Folder, recursive: true);
    }
}
