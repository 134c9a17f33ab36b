using Akka.Actor;
using Akka.Configuration;
using Akka.Remote;
using DistSgd.Actors.Deployment;
using DistSgd.Actors.Security;
using DistSgd.Host.Runs;

namespace DistSgd.Host.Tests.Runs;

/// <summary>A cluster of `distsgd node` processes with TLS: who may join and who may even deliver a message.</summary>
[Collection(NodeProcessCollection.Name)]
public sealed class TlsNodeProcessTests(ScriptCertificates certificates) : IClassFixture<ScriptCertificates>
{
    private static readonly TimeSpan Bound = NodeProcessTests.Bound;
    /// <summary>How long a probe waits for a reply or a refusal; either comes within a second on an idle machine.</summary>
    private static readonly TimeSpan Decision = TimeSpan.FromSeconds(30);

    private string[] Tls(string node) => ["--tls-cert", certificates.Node(node)];

    /// <summary>A node of <see cref="NodeProcessTests.SmallRun"/> that prints its progress (the master's "waiting" line is awaited).</summary>
    private static string[] Node(int port, string seed, string roles, params string[] run) =>
        NodeProcessTests.Node(port, seed, roles, run).Where(a => a != "--quiet").ToArray();

    [Fact]
    public async Task Only_nodes_with_a_certificate_of_the_clusters_CA_join_deliver_messages_and_train()
    {
        using var temp = new TempFolder();
        var ports = NodeProcess.FreePorts(4);
        string seed = $"127.0.0.1:{ports[0]}";
        using var group = new NodeGroup();
        // The master reads its password from a file, the others from DISTSGD_TLS_PASSWORD.
        var master = group.Start([.. Node(ports[0], seed, "master", "--workers", "1", "--out", temp["master"]),
                                  .. Tls("master"), "--tls-password-file", certificates.PasswordFile]);
        master.WaitForOutput("master waiting for 1 workers", Bound);

        // A node with a certificate of another CA, and a node without TLS, cannot join ...
        var intruder = group.Start([.. Node(ports[1], seed, "worker", "--workers", "1", "--join-timeout", "5"), .. Tls("intruder")],
                                   ScriptCertificates.PasswordVariable);
        var plain = group.Start(Node(ports[2], seed, "worker", "--workers", "1", "--join-timeout", "5"));
        // ... nor deliver a message to the master's node, while a holder of the cluster CA's certificate can.
        var replies = await Task.WhenAll(Identify(ports[0], "intruder"), Identify(ports[0], null), Identify(ports[0], "probe")).WaitAsync(Bound);
        Assert.False(replies[0], "a system with another CA's certificate got a reply from the master's node");
        Assert.False(replies[1], "a system without TLS got a reply from the master's node");
        Assert.True(replies[2], "a system with the cluster CA's certificate got no reply from the master's node");

        Assert.True(intruder.WaitForExit(Bound) == ExitCodes.BadInput, intruder.Output);
        Assert.Contains("could not join the cluster", intruder.Output);
        Assert.True(plain.WaitForExit(Bound) == ExitCodes.BadInput, plain.Output);
        Assert.Contains("TLS: refused the connection", master.Output);
        Assert.Contains("CN=intruder", master.Output);
        Assert.DoesNotContain("worker registered", master.Output);

        // The right certificate joins, and the run (Akka.Remote and the data plane both over TLS) completes.
        var worker = group.Start([.. Node(ports[3], seed, "worker", "--workers", "1"), .. Tls("worker")],
                                 ScriptCertificates.PasswordVariable);
        Assert.True(worker.WaitForExit(Bound) == 0, worker.Output);
        Assert.True(master.WaitForExit(Bound) == 0, master.Output);
        Assert.Contains($"worker registered: akka.ssl.tcp://distsgd@127.0.0.1:{ports[3]}", master.Output);
        Assert.True(File.Exists(Path.Combine(temp["master"], RunFiles.ModelFileName)), master.Output);
    }

    /// <summary>
    /// Sends Identify from a fresh ActorSystem in this process to the node's reporter actor: true when the node
    /// answered, false when the connection was refused: the probe's remoting reports an association error or a
    /// disassociation from the node, or the Identify it could not deliver went to its own dead letters, which answer
    /// with no subject (the node itself would name its reporter, which exists: the "probe" case). Neither within
    /// <see cref="Decision"/> fails the test: a slow node is not a refusing one. <paramref name="node"/> names the
    /// certificate; null = no TLS.
    /// </summary>
    private async Task<bool> Identify(int port, string? node)
    {
        var config = ConfigurationFactory.ParseString($$"""
            akka.loglevel = OFF
            akka.stdout-loglevel = OFF
            akka.actor.provider = remote
            akka.remote.dot-netty.tcp { hostname = "127.0.0.1", port = 0, enable-ssl = {{(node is null ? "off" : "on")}} }
            akka.remote.dot-netty.tcp.ssl.certificate { path = "{{certificates.Node(node ?? "probe")}}", password = "{{ScriptCertificates.Password}}" }
            """);
        using var system = node is null ? ActorSystem.Create("probe", config) : NodeConfig.CreateActorSystem(config, NodeTls.FromConfig(config));
        try
        {
            var refused = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
            var listener = system.ActorOf(Props.Create(() => new RefusalListener(port, refused)));
            system.EventStream.Subscribe(listener, typeof(AssociationErrorEvent));
            system.EventStream.Subscribe(listener, typeof(DisassociatedEvent));
            string scheme = node is null ? "akka.tcp" : "akka.ssl.tcp";
            var selection = system.ActorSelection($"{scheme}://{NodeConfig.SystemName}@127.0.0.1:{port}/user/reporter");
            var reply = selection.Ask<ActorIdentity>(new Identify(node), Decision);
            var first = await Task.WhenAny(reply, refused.Task);
            if (first == refused.Task)
                return false;
            if (reply.IsFaulted)
                Assert.Fail($"{node ?? "a system without TLS"}: neither a reply nor a refusal from the master's node within {Decision.TotalSeconds:0} s ({reply.Exception!.InnerException!.GetType().Name})");
            return reply.Result.Subject is not null;
        }
        finally
        {
            await system.Terminate();
        }
    }

    /// <summary>Hears the probe's remoting fail or lose its association with one node.</summary>
    private sealed class RefusalListener : ReceiveActor
    {
        /// <summary>Completes <paramref name="refused"/> when the association with the node on <paramref name="port"/> fails or is lost.</summary>
        public RefusalListener(int port, TaskCompletionSource<string> refused)
        {
            Receive<AssociationErrorEvent>(e => e.RemoteAddress.Port == port, e => refused.TrySetResult(e.ToString()));
            Receive<DisassociatedEvent>(e => e.RemoteAddress.Port == port, e => refused.TrySetResult(e.ToString()));
        }
    }
}
