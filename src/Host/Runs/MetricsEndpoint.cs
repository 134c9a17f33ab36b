using System.Net;
using Akka.Actor;
using Akka.Cluster;
using DistSgd.Actors.Steps;
using OpenTelemetry;
using OpenTelemetry.Metrics;

namespace DistSgd.Host.Runs;

/// <summary>
/// --metrics-port: serves the <see cref="RunMeters"/> instruments of this process at http://HOST:PORT/metrics in
/// Prometheus's text format, through OpenTelemetry's MeterProvider and its Prometheus HttpListener exporter. A port that
/// cannot be listened on is bad input (exit 2), found before any data is read.
/// </summary>
public sealed class MetricsEndpoint : IDisposable
{
    private readonly MeterProvider _provider;
    private readonly List<string> _members = new();

    private MetricsEndpoint(MeterProvider provider, string url) => (_provider, Url) = (provider, url);

    /// <summary>Where the metrics are served: http://HOST:PORT/metrics.</summary>
    public string Url { get; }

    /// <summary>
    /// Starts serving on <paramref name="host"/>:<paramref name="port"/> (0.0.0.0 or :: = every interface), or returns
    /// null when <paramref name="port"/> is null.
    /// </summary>
    public static MetricsEndpoint? Start(int? port, string host)
    {
        if (port is not { } p)
            return null;
        string listen = host is "0.0.0.0" or "::" or "*" ? "*" : host.Contains(':') && !host.StartsWith('[') ? $"[{host}]" : host;
        string prefix = $"http://{listen}:{p}/";
        try
        {
            var provider = Sdk.CreateMeterProviderBuilder()
                .AddMeter(RunMeters.MeterName)
                .AddPrometheusHttpListener(options =>
                {
                    options.Host = listen;
                    options.Port = p;
                })
                .Build();
            return new MetricsEndpoint(provider, $"{prefix}metrics");
        }
        catch (Exception e) when (e is HttpListenerException or InvalidOperationException or System.Net.Sockets.SocketException)
        {
            throw new UsageException($"--metrics-port {p}: cannot serve metrics at {prefix} ({Innermost(e).Message}); is another process using the port?");
        }
    }

    /// <summary>The members Up that <paramref name="node"/> sees are shown as distsgd_members_up until this endpoint is disposed.</summary>
    public void Watch(ActorSystem node)
    {
        string address = ((ExtendedActorSystem)node).Provider.DefaultAddress.ToString();
        var cluster = Cluster.Get(node);
        RunMeters.ObserveMembers(address, () => cluster.State.Members.Count(m => m.Status == MemberStatus.Up));
        _members.Add(address);
    }

    public void Dispose()
    {
        foreach (string address in _members)
            RunMeters.ForgetMembers(address);
        _provider.Dispose();
    }

    private static Exception Innermost(Exception e)
    {
        while (e.InnerException is not null)
            e = e.InnerException;
        return e;
    }
}
