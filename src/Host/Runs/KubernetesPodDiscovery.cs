using System.Net;
using Akka.Actor;
using Akka.Configuration;
using Akka.Discovery;
using Akka.Discovery.KubernetesApi;
using Akka.Event;
using k8s;
using k8s.Authentication;
using k8s.Autorest;
using k8s.Models;

namespace DistSgd.Host.Runs;

/// <summary>
/// Akka.Discovery's lookup of the contact points as the running pods a label selector names, through the Kubernetes API:
/// what Akka.Discovery.KubernetesApi's own <c>KubernetesApiServiceDiscovery</c> does, with its settings and keys
/// (akka.discovery.kubernetes-api.*), but calling KubernetesClient 19, the version the registry has: the package's class
/// calls three KubernetesClient 17 members that 19 changed and would fail with MissingMethodException at the first
/// lookup (decision 0106; <c>ManagementPackageTests</c> lists them). Put in place by akka.discovery.kubernetes-api.class.
/// </summary>
public sealed class KubernetesPodDiscovery : ServiceDiscovery
{
    /// <summary>The value of akka.discovery.kubernetes-api.class that selects this class.</summary>
    public static readonly string ClassName = $"{typeof(KubernetesPodDiscovery).FullName}, {typeof(KubernetesPodDiscovery).Assembly.GetName().Name}";

    private readonly ILoggingAdapter _log;
    private readonly KubernetesDiscoverySettings _settings;
    private readonly Kubernetes? _client;
    private readonly string? _clientProblem;
    private readonly string _namespace;

    /// <summary>Built by Akka.Discovery from akka.discovery.kubernetes-api.</summary>
    public KubernetesPodDiscovery(ExtendedActorSystem system)
        : this(system, system.Settings.Config.GetConfig("akka.discovery.kubernetes-api"))
    {
    }

    /// <summary>Built by Akka.Discovery from the method's configuration block.</summary>
    public KubernetesPodDiscovery(ExtendedActorSystem system, Config config)
    {
        _log = Logging.GetLogger(system, this);
        _settings = KubernetesDiscoverySettings.Create(config);
        _namespace = PodNamespace(_settings.PodNamespace, File.Exists(_settings.PodNamespacePath) ? File.ReadAllText(_settings.PodNamespacePath) : null);
        string? host = Environment.GetEnvironmentVariable(_settings.ApiServiceHostEnvName);
        string? port = Environment.GetEnvironmentVariable(_settings.ApiServicePortEnvName);
        if (string.IsNullOrWhiteSpace(host) || string.IsNullOrWhiteSpace(port))
        {
            _clientProblem = $"{_settings.ApiServiceHostEnvName} or {_settings.ApiServicePortEnvName} is not set: this process does not run in a Kubernetes pod";
            return;
        }
        try
        {
            _client = new Kubernetes(new KubernetesClientConfiguration
            {
                Host = $"https://{host}:{port}",
                TokenProvider = new TokenFileAuth(_settings.ApiTokenPath),
                SslCaCerts = CaCertificates(_settings.ApiCaPath),
                Namespace = _namespace,
            });
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
        {
            _clientProblem = $"cannot read the pod's service account (token {_settings.ApiTokenPath}, CA {_settings.ApiCaPath}): {e.Message}";
        }
    }

    private static System.Security.Cryptography.X509Certificates.X509Certificate2Collection CaCertificates(string path)
    {
        var certificates = new System.Security.Cryptography.X509Certificates.X509Certificate2Collection();
        certificates.ImportFromPemFile(path);
        return certificates;
    }

    /// <summary>The pods' namespace: the configured one, else the pod's own (its service account's namespace file), else "default".</summary>
    public static string PodNamespace(string? configured, string? fromFile) =>
        !string.IsNullOrWhiteSpace(configured) && configured != "<pod-namespace>" ? configured.Trim()
        : !string.IsNullOrWhiteSpace(fromFile) ? fromFile.Trim()
        : "default";

    public override async Task<Resolved> Lookup(Lookup lookup, TimeSpan resolveTimeout)
    {
        if (_client is null)
            throw new InvalidOperationException($"Kubernetes discovery: {_clientProblem}");
        string selector = _settings.PodLabelSelector(lookup.ServiceName);
        using var timeout = new CancellationTokenSource(resolveTimeout);
        V1PodList pods;
        try
        {
            pods = _settings.AllNamespaces
                ? await _client.CoreV1.ListPodForAllNamespacesAsync(labelSelector: selector, cancellationToken: timeout.Token)
                : await _client.CoreV1.ListNamespacedPodAsync(_namespace, labelSelector: selector, cancellationToken: timeout.Token);
        }
        catch (HttpOperationException e) when (e.Response.StatusCode == HttpStatusCode.Forbidden)
        {
            throw new InvalidOperationException(
                $"Kubernetes discovery: the API server refused to list the pods in namespace {_namespace} (403): the pod's service account needs " +
                "the Role that deploy/kubernetes/rbac.yaml grants (pods: get, watch, list)", e);
        }
        var targets = Targets(pods, lookup.PortName, _namespace, _settings.PodDomain, _settings.RawIp, _settings.ContainerName);
        if (targets.Count == 0)
            _log.Warning("Kubernetes discovery: no running pod with an IP in namespace {0} matches the label selector {1}", _namespace, selector);
        return new Resolved(lookup.ServiceName, targets);
    }

    /// <summary>
    /// The contact points among <paramref name="pods"/>: every running pod with an IP that is not being deleted (and whose
    /// container <paramref name="containerName"/>, when given, is not waiting), at its IP (<paramref name="rawIp"/>) or its
    /// pod DNS name, with the port named <paramref name="portName"/> when one is asked for (a pod without it is left out).
    /// </summary>
    public static List<ResolvedTarget> Targets(V1PodList pods, string? portName, string podNamespace, string podDomain, bool rawIp, string? containerName)
    {
        var targets = new List<ResolvedTarget>();
        foreach (var pod in pods.Items ?? [])
        {
            if (pod.Metadata?.DeletionTimestamp is not null || pod.Status is not { } status)
                continue;
            if (!(status.Phase ?? "").Contains("running", StringComparison.OrdinalIgnoreCase) || string.IsNullOrWhiteSpace(status.PodIP))
                continue;
            if (!string.IsNullOrEmpty(containerName)
                && (status.ContainerStatuses ?? []).Any(c => c.Name == containerName && c.State?.Waiting is not null))
                continue;
            int? port = null;
            if (!string.IsNullOrEmpty(portName))
            {
                var named = (pod.Spec?.Containers ?? []).SelectMany(c => c.Ports ?? []).FirstOrDefault(p => p.Name?.Contains(portName, StringComparison.Ordinal) == true);
                if (named is null)
                    continue;
                port = named.ContainerPort;
            }
            string ip = status.PodIP;
            string host = rawIp ? ip : $"{ip.Replace('.', '-')}.{podNamespace}.pod.{podDomain}";
            targets.Add(new ResolvedTarget(host, port, IPAddress.Parse(ip)));
        }
        return targets;
    }
}
