using System.Reflection;
using System.Reflection.Metadata;
using System.Reflection.Metadata.Ecma335;
using System.Reflection.PortableExecutable;

namespace DistSgd.Host.Tests.Runs;

/// <summary>
/// Akka.Management 1.5.73 was built against Ceen.Httpd 0.9.9 and KubernetesClient 17; the registry has 0.9.10 and 19.0.2,
/// which Directory.Packages.props pins (decision 0106). A method that changed between those versions fails only when it is
/// first called (MissingMethodException), so every call from the Akka packages into them is resolved here, ahead of time.
/// </summary>
public class ManagementPackageTests
{
    [Fact]
    public void The_Kubernetes_discovery_misses_only_the_KubernetesClient_members_KubernetesPodDiscovery_calls_in_their_place()
    {
        var (checkedCount, missing) = Resolve(typeof(Akka.Discovery.KubernetesApi.KubernetesDiscovery).Assembly, "KubernetesClient");
        Assert.True(checkedCount > 10, $"only {checkedCount} references into KubernetesClient were found");
        // KubernetesApiServiceDiscovery.Lookup's pod listing (17's signatures); the settings and the keys, which we use, resolve.
        Assert.Equal(["k8s.CoreV1OperationsExtensions.ListNamespacedPodAsync", "k8s.CoreV1OperationsExtensions.ListPodForAllNamespacesAsync",
                      "k8s.Models.V1PodList..ctor"], missing.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Akka_Http_Shim_misses_only_the_Ceen_method_NodeBootstrap_calls_in_its_place()
    {
        var shim = typeof(Akka.Http.Dsl.AkkaRouter).Assembly;
        var (httpd, missing) = Resolve(shim, "Ceen.Httpd");
        var (common, missingCommon) = Resolve(shim, "Ceen.Common");
        Assert.True(httpd + common > 5, $"only {httpd + common} references into Ceen were found");
        Assert.Empty(missingCommon);
        // HttpExt.BindAndHandleAsync (what AkkaManagement.Start uses) calls ListenAsync(IPEndPoint, …); 0.9.10 takes an EndPoint.
        // NodeBootstrap.StartAsync serves the same routes with AkkaRouter and calls ListenAsync itself.
        Assert.Equal(["Ceen.Httpd.HttpServer.ListenAsync"], missing);
        var (_, missingInManagement) = Resolve(typeof(Akka.Management.Dsl.AkkaManagement).Assembly, "Ceen.Httpd");
        Assert.Empty(missingInManagement);
    }

    /// <summary>
    /// Resolves every member reference of <paramref name="from"/> whose type lives in the assembly <paramref name="target"/>
    /// (generic instantiations aside): how many were checked, and "Type.Member" of those that do not exist.
    /// </summary>
    private static (int Checked, List<string> Missing) Resolve(Assembly from, string target)
    {
        using var stream = File.OpenRead(from.Location);
        using var pe = new PEReader(stream);
        var reader = pe.GetMetadataReader();
        int count = 0;
        var missing = new List<string>();
        foreach (var handle in reader.MemberReferences)
        {
            var reference = reader.GetMemberReference(handle);
            if (reference.Parent.Kind != HandleKind.TypeReference || ScopeOf(reader, (TypeReferenceHandle)reference.Parent) != target)
                continue;
            var type = reader.GetTypeReference((TypeReferenceHandle)reference.Parent);
            string name = $"{reader.GetString(type.Namespace)}.{reader.GetString(type.Name)}.{reader.GetString(reference.Name)}";
            count++;
            try
            {
                from.ManifestModule.ResolveMember(MetadataTokens.GetToken(handle));
            }
            catch (MissingMemberException)
            {
                missing.Add(name);
            }
        }
        return (count, missing);
    }

    private static string? ScopeOf(MetadataReader reader, TypeReferenceHandle handle)
    {
        var scope = reader.GetTypeReference(handle).ResolutionScope;
        return scope.Kind switch
        {
            HandleKind.AssemblyReference => reader.GetString(reader.GetAssemblyReference((AssemblyReferenceHandle)scope).Name),
            HandleKind.TypeReference => ScopeOf(reader, (TypeReferenceHandle)scope),
            _ => null,
        };
    }
}
