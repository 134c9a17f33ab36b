using DistSgd.Host.Settings;

namespace DistSgd.Host.Tests.Settings;

/// <summary>The join flags of `distsgd node` checked together (<see cref="DiscoverySettings.Create"/>), without a command line.</summary>
public class DiscoverySettingsTests
{
    private static DiscoverySettings Create(ClusterDiscovery method, bool seeds = false, string? endpoints = null, int? managementPort = null,
                                            int? required = null, string? selector = null, string? ns = null, int port = 4053,
                                            string host = "127.0.0.1", string? publicHost = null) =>
        DiscoverySettings.Create(method, seeds, endpoints, managementPort, required, selector, ns, port, host, publicHost);

    [Fact]
    public void Seed_nodes_stay_the_default_and_do_not_bootstrap()
    {
        var settings = Create(ClusterDiscovery.SeedNodes, seeds: true);
        Assert.Same(DiscoverySettings.SeedNodes, settings);
        Assert.False(settings.Bootstraps);
    }

    [Fact]
    public void Config_discovery_requires_every_endpoint_by_default()
    {
        var settings = Create(ClusterDiscovery.Config, endpoints: "10.0.0.1:8558, 10.0.0.2:8558,node3.example:9000", managementPort: 8558);
        Assert.True(settings.Bootstraps);
        Assert.Equal([new ManagementEndpoint("10.0.0.1", 8558), new("10.0.0.2", 8558), new("node3.example", 9000)], settings.Endpoints);
        Assert.Equal(3, settings.RequiredContactPoints);
        Assert.Equal(8558, settings.ManagementPort);
    }

    [Fact]
    public void Kubernetes_discovery_takes_the_default_selector_and_this_pod_s_namespace()
    {
        var settings = Create(ClusterDiscovery.Kubernetes, host: "0.0.0.0", publicHost: "10.1.2.3");
        Assert.Equal(DiscoverySettings.DefaultKubernetesSelector, settings.KubernetesSelector);
        Assert.Null(settings.KubernetesNamespace);
        Assert.Equal(DiscoverySettings.DefaultManagementPort, settings.ManagementPort);
        Assert.Equal(DiscoverySettings.DefaultKubernetesContactPoints, settings.RequiredContactPoints);
    }

    public static TheoryData<Func<DiscoverySettings>, string> BadCombinations => new()
    {
        { () => Create(ClusterDiscovery.SeedNodes, endpoints: "a:1"), "--discovery-endpoints: only with --discovery config or kubernetes" },
        { () => Create(ClusterDiscovery.SeedNodes, managementPort: 8558), "--management-port: only with --discovery config or kubernetes" },
        { () => Create(ClusterDiscovery.SeedNodes, required: 2), "--required-contact-points: only with --discovery config or kubernetes" },
        { () => Create(ClusterDiscovery.SeedNodes, selector: "app=x"), "--kubernetes-selector: only with --discovery config or kubernetes" },
        { () => Create(ClusterDiscovery.Config, seeds: true, endpoints: "a:1"), "--seed-nodes: not with --discovery config" },
        { () => Create(ClusterDiscovery.Kubernetes, seeds: true), "--seed-nodes: not with --discovery kubernetes" },
        { () => Create(ClusterDiscovery.Config), "--discovery-endpoints: --discovery config needs the contact points' management endpoints" },
        { () => Create(ClusterDiscovery.Config, endpoints: " , "), "--discovery-endpoints: expected host:port,… found ' , '" },
        { () => Create(ClusterDiscovery.Config, endpoints: "10.0.0.1"), "--discovery-endpoints: expected host:port with a port from 1 to 65535 (the node's --management-port), found '10.0.0.1'" },
        { () => Create(ClusterDiscovery.Config, endpoints: "10.0.0.1:0"), "found '10.0.0.1:0'" },
        { () => Create(ClusterDiscovery.Config, endpoints: "10.0.0.1:70000"), "found '10.0.0.1:70000'" },
        { () => Create(ClusterDiscovery.Config, endpoints: ":8558"), "found ':8558'" },
        { () => Create(ClusterDiscovery.Config, endpoints: "a:1,b:x"), "found 'b:x'" },
        { () => Create(ClusterDiscovery.Config, endpoints: "a:1,a:1"), "--discovery-endpoints: a:1 is listed twice" },
        { () => Create(ClusterDiscovery.Config, endpoints: "a:1,b:1", required: 3), "--required-contact-points: 3 is more than the 2 --discovery-endpoints" },
        { () => Create(ClusterDiscovery.Config, endpoints: "a:1", required: 0), "--required-contact-points: expected a number >= 1, found '0'" },
        { () => Create(ClusterDiscovery.Config, endpoints: "a:1", managementPort: 0), "--management-port: expected a port from 1 to 65535, found '0'" },
        { () => Create(ClusterDiscovery.Config, endpoints: "a:1", managementPort: 65536), "--management-port: expected a port from 1 to 65535, found '65536'" },
        { () => Create(ClusterDiscovery.Config, endpoints: "a:1", managementPort: 4053, port: 4053), "--management-port: 4053 is also --port" },
        { () => Create(ClusterDiscovery.Config, endpoints: "a:1", selector: "app=x"), "--kubernetes-selector: only with --discovery kubernetes" },
        { () => Create(ClusterDiscovery.Config, endpoints: "a:1", ns: "ml"), "--kubernetes-namespace: only with --discovery kubernetes" },
        { () => Create(ClusterDiscovery.Kubernetes, endpoints: "a:1"), "--discovery-endpoints: only with --discovery config" },
        { () => Create(ClusterDiscovery.Kubernetes, host: "0.0.0.0"), "--public-host: --host 0.0.0.0 listens on every interface, so --discovery kubernetes needs" },
        { () => Create(ClusterDiscovery.Kubernetes, selector: "app={0}"), "--kubernetes-selector: expected a label selector such as app=distsgd (no braces or quotes), found 'app={0}'" },
        { () => Create(ClusterDiscovery.Kubernetes, selector: " "), "--kubernetes-selector: expected a label selector" },
        { () => Create(ClusterDiscovery.Kubernetes, ns: "ML_jobs"), "--kubernetes-namespace: expected a namespace name (lower-case letters, digits and '-', at most 63), found 'ML_jobs'" },
        { () => Create(ClusterDiscovery.Kubernetes, ns: "-ml"), "found '-ml'" },
    };

    [Theory]
    [MemberData(nameof(BadCombinations))]
    public void A_combination_of_join_flags_that_cannot_work_is_refused_naming_the_flag(Func<DiscoverySettings> create, string message)
    {
        var e = Assert.Throws<UsageException>(create);
        Assert.Contains(message, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void Discovery_names_parse_both_ways_and_a_bad_one_names_the_flag()
    {
        foreach (var method in Enum.GetValues<ClusterDiscovery>())
            Assert.Equal(method, ClusterDiscoveries.Parse(method.Name()));
        var e = Assert.Throws<UsageException>(() => ClusterDiscoveries.Parse("dns"));
        Assert.Equal("--discovery: expected one of seed-nodes, config, kubernetes, found 'dns'", e.Message);
    }
}
