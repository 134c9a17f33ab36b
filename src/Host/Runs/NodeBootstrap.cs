using System.Net;
using System.Net.Sockets;
using Akka.Actor;
using Akka.Configuration;
using Akka.Http.Dsl;
using Ceen.Httpd;
using Akka.Discovery;
using Akka.Discovery.KubernetesApi;
using Akka.Management.Cluster.Bootstrap;
using Akka.Management.Dsl;
using DistSgd.Host.Settings;

namespace DistSgd.Host.Runs;

/// <summary>
/// Joining through Akka.Management's cluster bootstrap (--discovery config|kubernetes; decision 0106): the node serves
/// Akka.Management's HTTP endpoint, finds the other contact points by the discovery method, asks each for the cluster it
/// is in, joins that one, and, when none has formed and all the required contact points answered, the contact point
/// with the lowest address starts the cluster. What follows is the node's start as with seed nodes.
/// </summary>
public static class NodeBootstrap
{
    /// <summary>Akka.Discovery's name of config discovery (akka.discovery.config).</summary>
    public const string ConfigMethod = "config";

    /// <summary>Akka.Discovery.KubernetesApi's name (akka.discovery.kubernetes-api).</summary>
    public const string KubernetesMethod = "kubernetes-api";

    /// <summary>The environment variable every Kubernetes pod has and Akka.Discovery.KubernetesApi reaches the API server by.</summary>
    public const string KubernetesHostVariable = "KUBERNETES_SERVICE_HOST";

    /// <summary>The configuration keys --print-config shows for a node that bootstraps, besides the per-method ones.</summary>
    public static readonly string[] PrintedKeys =
    [
        "akka.management.http.hostname",
        "akka.management.http.port",
        "akka.management.http.bind-hostname",
        "akka.management.http.bind-port",
        "akka.management.cluster.bootstrap.contact-point-discovery.service-name",
        "akka.management.cluster.bootstrap.contact-point-discovery.discovery-method",
        "akka.management.cluster.bootstrap.contact-point-discovery.required-contact-point-nr",
        "akka.management.cluster.bootstrap.contact-point-discovery.stable-margin",
        "akka.management.cluster.bootstrap.contact-point.fallback-port",
        "akka.discovery.method",
    ];

    /// <summary>The Kubernetes keys --print-config shows for --discovery kubernetes.</summary>
    public static readonly string[] KubernetesKeys =
    [
        "akka.discovery.kubernetes-api.class",
        "akka.discovery.kubernetes-api.pod-label-selector",
        "akka.discovery.kubernetes-api.pod-namespace",
    ];

    /// <summary>The key that lists config discovery's endpoints of the service <paramref name="serviceName"/>.</summary>
    public static string EndpointsKey(string serviceName) => $"akka.discovery.config.services.{serviceName}.endpoints";

    /// <summary>
    /// The configuration of the bootstrap: Akka.Management's HTTP endpoint on <paramref name="bindHost"/> (advertised as
    /// <paramref name="advertisedHost"/>, where the other contact points reach it), the contact points looked up as the
    /// service <paramref name="serviceName"/> (the run id) by the discovery method. These keys come from the flags and
    /// win over a --config file; the libraries' own defaults under it are <see cref="Defaults"/>. Empty for seed nodes.
    /// </summary>
    public static Config Build(DiscoverySettings discovery, string bindHost, string advertisedHost, string serviceName)
    {
        if (!discovery.Bootstraps)
            return Config.Empty;
        string Quote(string s) => HoconFile.Quote(s);
        string method = discovery.Method == ClusterDiscovery.Kubernetes ? KubernetesMethod : ConfigMethod;
        string perMethod = discovery.Method == ClusterDiscovery.Kubernetes
            ? $"akka.discovery.kubernetes-api.class = {Quote(KubernetesPodDiscovery.ClassName)}\n" +
              $"akka.discovery.kubernetes-api.pod-label-selector = {Quote(discovery.KubernetesSelector)}" +
              (discovery.KubernetesNamespace is { } ns ? $"\nakka.discovery.kubernetes-api.pod-namespace = {Quote(ns)}" : "")
            : $"{EndpointsKey(serviceName)} = [{string.Join(", ", discovery.Endpoints.Select(e => Quote(e.ToString())))}]";
        return ConfigurationFactory.ParseString($$"""
            akka.management.http {
              hostname = {{Quote(advertisedHost)}}
              port = {{discovery.ManagementPort}}
              bind-hostname = {{Quote(bindHost)}}
              bind-port = {{discovery.ManagementPort}}
            }
            akka.management.cluster.bootstrap {
              contact-point-discovery {
                service-name = {{Quote(serviceName)}}
                discovery-method = {{method}}
                required-contact-point-nr = {{discovery.RequiredContactPoints}}
              }
              # Kubernetes finds the contact points without a port: they serve on this one. Config lists each with its own
              # port (several nodes of one host differ), so the contact points are not filtered by this port.
              contact-point.fallback-port = {{discovery.ManagementPort}}
              contact-point.filter-on-fallback-port = false
            }
            akka.discovery.method = {{method}}
            {{perMethod}}
            """);
    }

    /// <summary>
    /// Akka.Management's, Akka.Discovery's and (for Kubernetes) Akka.Discovery.KubernetesApi's embedded defaults: the
    /// extensions add them themselves when they start; here they are in the node's configuration from the start, so that
    /// --print-config shows the values in force and a --config file can override them. Empty for seed nodes.
    /// </summary>
    public static Config Defaults(DiscoverySettings discovery)
    {
        if (!discovery.Bootstraps)
            return Config.Empty;
        var defaults = AkkaManagementProvider.DefaultConfiguration().WithFallback(DiscoveryProvider.DefaultConfiguration());
        return discovery.Method == ClusterDiscovery.Kubernetes ? defaults.WithFallback(KubernetesDiscovery.DefaultConfiguration()) : defaults;
    }

    /// <summary>
    /// Refuses --discovery kubernetes outside a pod (no <see cref="KubernetesHostVariable"/>): Akka.Discovery.KubernetesApi
    /// would only log an error at every lookup until the join timed out. <paramref name="variable"/> is the variable's value.
    /// </summary>
    public static void CheckEnvironment(DiscoverySettings discovery, string? variable)
    {
        if (discovery.Method == ClusterDiscovery.Kubernetes && string.IsNullOrWhiteSpace(variable))
            throw new UsageException(
                $"--discovery kubernetes: {KubernetesHostVariable} is not set, so this process does not run in a Kubernetes pod and cannot ask the API server for the pods; " +
                "outside Kubernetes use --discovery config or --seed-nodes");
    }

    /// <summary>
    /// Serves Akka.Management's routes (the bootstrap's /bootstrap/seed-nodes among them) on
    /// akka.management.http.bind-hostname:bind-port until the ActorSystem terminates, then starts the bootstrap, which
    /// joins in the background; returns the endpoint's advertised address. The routes are served here with Ceen.Httpd
    /// directly rather than by <c>AkkaManagement.Start</c>: Akka.Http.Shim 1.5.73 calls a Ceen.Httpd 0.9.9 method whose
    /// signature 0.9.10, the one the registry has, changed (MissingMethodException; decision 0106).
    /// </summary>
    public static async Task<Uri> StartAsync(ActorSystem system, DiscoverySettings discovery, string bindHost)
    {
        var management = AkkaManagement.Get(system);
        // Building the routes also tells the bootstrap its own contact point (akka.management.http.hostname:port).
        var routes = management.Routes();
        var address = bindHost is "" or "0.0.0.0" ? IPAddress.Any
            : IPAddress.TryParse(bindHost, out var parsed) ? parsed
            : (await Dns.GetHostAddressesAsync(bindHost)).First(a => a.AddressFamily == AddressFamily.InterNetwork);
        var stop = new CancellationTokenSource();
        var serving = HttpServer.ListenAsync(new IPEndPoint(address, discovery.ManagementPort), false,
                                             new ServerConfig { Router = new AkkaRouter(system, routes) }, stop.Token);
        if (serving.IsFaulted)
            await serving;
        // The port is free again for the next incarnation of a node the cluster removed.
        system.RegisterOnTermination(() =>
        {
            stop.Cancel();
            serving.Wait(TimeSpan.FromSeconds(5));
        });
        await ClusterBootstrap.Get(system).Start();
        return new Uri($"http://{management.Settings.Http.Hostname}:{management.Settings.Http.Port}/");
    }

    /// <summary>What the node prints when it starts bootstrapping: the method and where it looks for the contact points.</summary>
    public static string Describe(DiscoverySettings discovery, string serviceName) => discovery.Method switch
    {
        ClusterDiscovery.Config =>
            $"config discovery of '{serviceName}' at {string.Join(", ", discovery.Endpoints)} ({discovery.RequiredContactPoints} contact points required)",
        _ => $"Kubernetes discovery of the pods labelled {discovery.KubernetesSelector} in namespace " +
             $"{discovery.KubernetesNamespace ?? "(this pod's)"} ({discovery.RequiredContactPoints} contact points required)",
    };
}
