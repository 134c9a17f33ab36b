using Akka.Configuration;
using DistSgd.Actors.Deployment;

namespace DistSgd.Actors.Tests;

/// <summary>Configuration of a TestKit node: a cluster provider on a free loopback port, short timeouts.</summary>
internal static class TestConfig
{
    public static Config Node(string roles = "\"master\", \"worker\"", string stepTimeout = "2s") =>
        ConfigurationFactory.ParseString($"distsgd.step-timeout = {stepTimeout}\ndistsgd.start-timeout = 10s")
            .WithFallback(NodeConfig.Build("127.0.0.1", 0, roles.Split(',').Select(r => r.Trim().Trim('"')), 4 << 20));
}
