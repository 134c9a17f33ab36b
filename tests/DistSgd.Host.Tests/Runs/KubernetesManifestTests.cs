using DistSgd.Host.Tests.Cli;
using k8s;
using k8s.Models;

namespace DistSgd.Host.Tests.Runs;

/// <summary>
/// deploy/kubernetes/ read as Kubernetes reads it (KubernetesClient's own YAML types), without a Kubernetes cluster: the
/// StatefulSet's container, with a ConfigMap's variables and the pod's fields filled in, is parsed by distsgd's own
/// command line (--print-config) and gives the intended run, roles and discovery; the objects refer to each other.
/// </summary>
[Collection(NodeProcessCollection.Name)]
[System.Runtime.Versioning.SupportedOSPlatform("linux")] // the pods and their entry script are Linux ones
public class KubernetesManifestTests
{
    private const string PodIp = "10.1.0.5";
    private const string PodNamespace = "ml-jobs";

    private static string Folder => Path.Combine(NodeCommandTests.RepositoryRoot(), "deploy", "kubernetes");

    private static List<object> Load(string file) => KubernetesYaml.LoadAllFromString(File.ReadAllText(Path.Combine(Folder, file)));

    private static V1StatefulSet StatefulSet => Assert.Single(Load("statefulset.yaml").OfType<V1StatefulSet>());

    [Theory]
    [InlineData("run-decentralized.yaml", "run: decentralized, 3 peers", "peer")]
    [InlineData("run-centralized.yaml", "run: centralized, 3 workers", "master,worker")]
    public void The_statefulset_s_node_parses_to_the_run_of_its_config_map_joining_through_kubernetes_discovery(string runFile, string run, string roles)
    {
        var set = StatefulSet;
        var map = Assert.Single(Load(runFile).OfType<V1ConfigMap>());
        var container = Assert.Single(set.Spec.Template.Spec.Containers);
        Assert.Equal(map.Metadata.Name, Assert.Single(container.EnvFrom).ConfigMapRef.Name);
        Assert.Equal(int.Parse(map.Data["DISTSGD_WORKERS"], System.Globalization.CultureInfo.InvariantCulture), set.Spec.Replicas);

        // What the kubelet gives the container: the ConfigMap's variables, then the container's own (fields of the pod).
        var environment = new Dictionary<string, string>(map.Data);
        foreach (var variable in container.Env)
            environment[variable.Name] = variable.Value ?? variable.ValueFrom.FieldRef.FieldPath switch
            {
                "status.podIP" => PodIp,
                "metadata.namespace" => PodNamespace,
                var field => throw new InvalidOperationException($"the test does not fill in the pod field {field}"),
            };
        using var node = NodeProcess.Start([.. container.Args, "--print-config"], environment);
        Assert.True(node.WaitForExit(NodeProcessTests.Bound) == 0, node.Output);

        string selector = map.Data["DISTSGD_KUBERNETES_SELECTOR"];
        Assert.Contains($"# {run}", node.Output);
        Assert.Contains($"# node: {roles}, joins through Kubernetes discovery of the pods labelled {selector} in namespace {PodNamespace} (3 contact points required)", node.Output);
        Assert.Contains($"akka.remote.dot-netty.tcp.public-hostname = {PodIp}", node.Output);
        Assert.Contains("akka.remote.dot-netty.tcp.hostname = 0.0.0.0", node.Output);
        Assert.Contains($"akka.management.http.hostname = {PodIp}", node.Output);
        Assert.Contains("akka.discovery.method = kubernetes-api", node.Output);
        Assert.Contains($"akka.management.cluster.bootstrap.contact-point-discovery.service-name = {map.Data["DISTSGD_RUN_ID"]}", node.Output);

        // The selector names the StatefulSet's pods, and the ports the node uses are the container's named ports.
        foreach (string requirement in selector.Split(','))
        {
            var (key, value) = (requirement.Split('=')[0], requirement.Split('=')[1]);
            Assert.Equal(value, set.Spec.Template.Metadata.Labels[key]);
        }
        int PortNamed(string name) => container.Ports.Single(p => p.Name == name).ContainerPort;
        Assert.Contains($"akka.management.http.port = {PortNamed("management")}", node.Output);
        Assert.Contains($"akka.remote.dot-netty.tcp.port = {PortNamed("remoting")}", node.Output);
        Assert.Equal(PortNamed("metrics"), int.Parse(map.Data["DISTSGD_METRICS_PORT"], System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public void The_pods_service_account_may_list_the_pods_and_the_headless_service_selects_them()
    {
        var set = StatefulSet;
        var rbac = Load("rbac.yaml");
        var account = Assert.Single(rbac.OfType<V1ServiceAccount>());
        var role = Assert.Single(rbac.OfType<V1Role>());
        var binding = Assert.Single(rbac.OfType<V1RoleBinding>());
        Assert.Equal(account.Metadata.Name, set.Spec.Template.Spec.ServiceAccountName);
        Assert.Contains(role.Rules, rule => rule.Resources.Contains("pods") && rule.Verbs.Contains("list") && rule.ApiGroups.Contains(""));
        Assert.Equal(("Role", role.Metadata.Name), (binding.RoleRef.Kind, binding.RoleRef.Name));
        Assert.Contains(binding.Subjects, s => s.Kind == "ServiceAccount" && s.Name == account.Metadata.Name);

        var service = Assert.Single(Load("service.yaml").OfType<V1Service>());
        Assert.Equal("None", service.Spec.ClusterIP);
        Assert.Equal(service.Metadata.Name, set.Spec.ServiceName);
        Assert.All(service.Spec.Selector, label => Assert.Equal(label.Value, set.Spec.Template.Metadata.Labels[label.Key]));
        Assert.All(set.Spec.Selector.MatchLabels, label => Assert.Equal(label.Value, set.Spec.Template.Metadata.Labels[label.Key]));
    }

    [Fact]
    public void The_image_holds_what_publish_writes_and_starts_the_node_through_its_entry_script()
    {
        string[] kustomized = File.ReadAllLines(Path.Combine(Folder, "kustomization.yaml"))
            .Where(l => l.TrimStart().StartsWith("- ", StringComparison.Ordinal)).Select(l => l.Trim()[2..]).ToArray();
        Assert.Equal(["rbac.yaml", "service.yaml", "statefulset.yaml", "run-decentralized.yaml"], kustomized);
        string dockerfile = File.ReadAllText(Path.Combine(Folder, "Dockerfile"));
        string publish = File.ReadAllText(Path.Combine(NodeCommandTests.RepositoryRoot(), "scripts", "publish.sh"));
        Assert.Contains("out=${1:-dist/linux-x64}", publish);
        Assert.Contains("COPY dist/linux-x64/distsgd /app/distsgd", dockerfile);
        Assert.Contains("COPY deploy/kubernetes/run-node.sh /app/run-node.sh", dockerfile);
        Assert.Contains("ENTRYPOINT [\"/app/run-node.sh\"]", dockerfile);
        Assert.True(File.GetUnixFileMode(Path.Combine(Folder, "run-node.sh")).HasFlag(UnixFileMode.UserExecute), "run-node.sh is not executable");
    }

    [Fact]
    public void The_entry_script_records_the_node_s_exit_code_stays_up_and_does_not_start_the_node_again()
    {
        using var temp = new TempFolder();
        File.WriteAllText(temp["fake-distsgd"], "#!/bin/sh\necho \"fake node $*\" >> \"$(dirname \"$0\")/started\"\nexit 3\n");
        File.SetUnixFileMode(temp["fake-distsgd"], UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var environment = new Dictionary<string, string> { ["DISTSGD_STATE"] = temp["state"], ["DISTSGD_PROGRAM"] = temp["fake-distsgd"] };

        for (int start = 1; start <= 2; start++)
        {
            using var script = NodeProcess.StartProgram(Path.Combine(Folder, "run-node.sh"), ["node", "--discovery", "kubernetes"], environment);
            script.WaitForOutput(start == 1 ? "the node exited with code 3" : "already ended with exit code 3", TimeSpan.FromSeconds(30));
            Thread.Sleep(500);
            Assert.False(script.HasExited, script.Output);
            script.Terminate();
            Assert.Equal(0, script.WaitForExit(TimeSpan.FromSeconds(30)));
        }
        Assert.Equal("3", File.ReadAllText(Path.Combine(temp["state"], "exit-code")).Trim());
        // Started once, with the container's arguments; the restarted container did not start it again.
        Assert.Equal(["fake node node --discovery kubernetes"], File.ReadAllLines(temp["started"]));
    }
}
