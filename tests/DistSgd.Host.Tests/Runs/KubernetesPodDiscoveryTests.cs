using Akka.Actor;
using Akka.Configuration;
using Akka.Discovery;
using DistSgd.Host.Runs;
using DistSgd.Host.Settings;
using k8s.Models;

namespace DistSgd.Host.Tests.Runs;

/// <summary>The Kubernetes lookup of the contact points, without a Kubernetes cluster: the pod list's mapping, and its loading by Akka.Discovery.</summary>
public class KubernetesPodDiscoveryTests
{
    private static V1Pod Pod(string ip, string phase = "Running", bool deleting = false, string? port = null, bool waiting = false) => new()
    {
        Metadata = new V1ObjectMeta { Name = $"distsgd-{ip}", DeletionTimestamp = deleting ? DateTime.UtcNow : null },
        Spec = new V1PodSpec
        {
            Containers = [new V1Container { Name = "node", Ports = port is null ? null : [new V1ContainerPort { Name = port, ContainerPort = 8558 }] }],
        },
        Status = new V1PodStatus
        {
            Phase = phase,
            PodIP = ip,
            ContainerStatuses = [new V1ContainerStatus { Name = "node", State = new V1ContainerState { Waiting = waiting ? new V1ContainerStateWaiting() : null } }],
        },
    };

    [Fact]
    public void Running_pods_with_an_IP_are_the_contact_points_and_others_are_left_out()
    {
        var pods = new V1PodList
        {
            Items =
            [
                Pod("10.1.0.5"), Pod("10.1.0.6", phase: "Pending"), Pod("10.1.0.7", deleting: true), Pod(""), Pod("10.1.0.8", waiting: true),
                Pod("10.1.0.9"),
            ],
        };
        var targets = KubernetesPodDiscovery.Targets(pods, portName: null, "ml", "cluster.local", rawIp: true, containerName: "node");
        Assert.Equal(["10.1.0.5", "10.1.0.9"], targets.Select(t => t.Host));
        Assert.All(targets, t => Assert.Null(t.Port));

        // Without the raw IP, the pod's DNS name; a port asked for by name comes from the container, and a pod without it is left out.
        var named = KubernetesPodDiscovery.Targets(new V1PodList { Items = [Pod("10.1.0.5", port: "management"), Pod("10.1.0.9")] },
                                                   "management", "ml", "cluster.local", rawIp: false, containerName: null);
        var target = Assert.Single(named);
        Assert.Equal("10-1-0-5.ml.pod.cluster.local", target.Host);
        Assert.Equal(8558, target.Port);
    }

    [Theory]
    [InlineData("ml", "other", "ml")]
    [InlineData("<pod-namespace>", "jobs\n", "jobs")]
    [InlineData(null, null, "default")]
    public void The_namespace_is_the_configured_one_else_the_pod_s_own(string? configured, string? fromFile, string expected) =>
        Assert.Equal(expected, KubernetesPodDiscovery.PodNamespace(configured, fromFile));

    [Fact]
    public async Task Akka_Discovery_loads_it_for_kubernetes_api_and_outside_a_pod_a_lookup_says_why_it_cannot_work()
    {
        var discovery = DiscoverySettings.Create(ClusterDiscovery.Kubernetes, false, null, null, null, null, null, 4053, "127.0.0.1", null);
        var config = ConfigurationFactory.ParseString("akka.discovery.kubernetes-api.api-service-host-env-name = DISTSGD_TEST_NO_SUCH_VARIABLE")
            .WithFallback(NodeBootstrap.Build(discovery, "127.0.0.1", "127.0.0.1", "distsgd"))
            .WithFallback(NodeBootstrap.Defaults(discovery));
        var system = ActorSystem.Create("discovery-test", config);
        try
        {
            var lookup = Discovery.Get(system).LoadServiceDiscovery(NodeBootstrap.KubernetesMethod);
            Assert.IsType<KubernetesPodDiscovery>(lookup);
            var e = await Assert.ThrowsAsync<InvalidOperationException>(() => lookup.Lookup(new Lookup("distsgd"), TimeSpan.FromSeconds(1)));
            Assert.Contains("DISTSGD_TEST_NO_SUCH_VARIABLE or KUBERNETES_SERVICE_PORT is not set", e.Message);
        }
        finally
        {
            await system.Terminate();
        }
    }
}
