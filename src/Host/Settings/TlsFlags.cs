using Akka.Configuration;
using DistSgd.Actors.Security;

namespace DistSgd.Host.Settings;

/// <summary>
/// The TLS flags of `train` and `node`: a PKCS#12 file with the node's key, certificate and CA certificate, and its
/// password (from --tls-password, --tls-password-file, or DISTSGD_TLS_PASSWORD, in that order). They become
/// Akka.Remote's own keys (<see cref="NodeTls"/>), over those of --config.
/// </summary>
public sealed record TlsFlags(string? Certificate, string? Password, string? PasswordFile)
{
    public static readonly TlsFlags None = new(null, null, null);

    /// <summary>The variable that gives the password when no flag does (for `node` every flag has its variable anyway).</summary>
    public const string PasswordVariable = "DISTSGD_TLS_PASSWORD";

    /// <summary>
    /// The HOCON the flags stand for, or null when none was given: --tls-cert turns TLS on with that file; the password
    /// (a flag, else DISTSGD_TLS_PASSWORD) applies to it or to the certificate of --config. Errors name the flag.
    /// </summary>
    public Config? Overrides(RunMode mode)
    {
        Validate(mode);
        var keys = new List<string>();
        if (Certificate is not null)
        {
            keys.Add($"{NodeTls.EnableSslKey} = on");
            keys.Add($"{NodeTls.MutualAuthenticationKey} = on");
            keys.Add($"{NodeTls.CertificatePathKey} = {HoconFile.Quote(Path.GetFullPath(Certificate))}");
        }
        if ((Password ?? ReadPasswordFile() ?? Environment.GetEnvironmentVariable(PasswordVariable)) is { } password)
            keys.Add($"{NodeTls.CertificatePasswordKey} = {HoconFile.Quote(password)}");
        return keys.Count == 0 ? null : ConfigurationFactory.ParseString(string.Join('\n', keys));
    }

    /// <summary>Flag combinations that cannot work: two passwords, or a certificate for a run that opens no connection.</summary>
    public void Validate(RunMode mode)
    {
        if (Password is not null && PasswordFile is not null)
            throw new UsageException("--tls-password and --tls-password-file: give the password one way, not both");
        if (Certificate is not null && mode == RunMode.Sequential)
            throw new UsageException("--tls-cert: sequential training runs in one process and opens no connection; TLS is for the distributed modes");
    }

    /// <summary>A password flag given while TLS stays off is a mistake worth naming.</summary>
    public void CheckUsed(bool tlsOn)
    {
        if (!tlsOn && (Password is not null || PasswordFile is not null))
            throw new UsageException(
                $"{(Password is not null ? "--tls-password" : "--tls-password-file")} (or its variable {(Password is not null ? PasswordVariable : PasswordVariable + "_FILE")}): " +
                "given, but TLS is off: give the certificate with --tls-cert " +
                $"(or {NodeTls.EnableSslKey} and {NodeTls.CertificatePathKey} in --config)");
    }

    private string? ReadPasswordFile()
    {
        if (PasswordFile is null)
            return null;
        try
        {
            // The file's last line break is not part of the password (echo and editors add one).
            return File.ReadAllText(PasswordFile).TrimEnd('\r', '\n');
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"--tls-password-file: cannot read {PasswordFile}: {e.Message}");
        }
    }
}
