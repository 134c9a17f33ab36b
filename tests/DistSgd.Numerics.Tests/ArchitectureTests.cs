using System.Reflection;
using DistSgd.Numerics.Data;

namespace DistSgd.Numerics.Tests;

public class ArchitectureTests
{
    [Fact]
    public void Numerics_references_no_akka_assembly()
    {
        var referenced = typeof(Dataset).Assembly.GetReferencedAssemblies().Select(a => a.Name ?? "").ToList();
        Assert.Contains("System.Runtime", referenced);
        Assert.DoesNotContain(referenced, name => name.StartsWith("Akka", StringComparison.OrdinalIgnoreCase));
    }
}
