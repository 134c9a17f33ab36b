using System.Diagnostics;
using Akka.Actor;
using Akka.Cluster;
using Akka.Configuration;
using DistSgd.Actors;
using DistSgd.Actors.Centralized;
using DistSgd.Actors.Decentralized;
using DistSgd.Actors.Deployment;
using DistSgd.Actors.Steps;
using DistSgd.Host.Display;
using DistSgd.Host.Results;
using DistSgd.Host.Settings;
using DistSgd.Numerics.Models;
using DistSgd.Numerics.Training;

namespace DistSgd.Host.Runs;

/// <summary>
/// Runs `distsgd node`: one cluster node in this process, for a run described by the same flags on every node.
/// The code path of the simulated cluster (<see cref="NodeConfig"/>, the deployments, the actors); only the
/// addresses and the process boundaries differ. The node that ends the run (the master, or the lead peer)
/// writes the results; every other node exits 0 when the run ends.
/// </summary>
public static class NodeRun
{
    /// <summary>How long leaving the cluster (CoordinatedShutdown) may take before the node just stops.</summary>
    private static readonly TimeSpan LeaveTimeout = TimeSpan.FromSeconds(15);

    /// <summary>How long a peer that finished waits for its own lead report (sent right after, in the same handler).</summary>
    private static readonly TimeSpan LeadReportWait = TimeSpan.FromSeconds(2);

    /// <summary>
    /// How long a node the cluster removed waits for a report that its part finished, already on its way: a node that
    /// runs again after a pause reads its removal and the master's RunEnded at about the same moment.
    /// </summary>
    private static readonly TimeSpan RemovalWait = TimeSpan.FromSeconds(1);

    /// <summary>The configuration keys --print-config shows, besides every distsgd.* key.</summary>
    public static readonly string[] PrintedKeys =
    [
        "akka.loglevel",
        "akka.remote.dot-netty.tcp.hostname",
        "akka.remote.dot-netty.tcp.public-hostname",
        "akka.remote.dot-netty.tcp.port",
        "akka.remote.dot-netty.tcp.maximum-frame-size",
        "akka.remote.dot-netty.tcp.send-buffer-size",
        "akka.remote.dot-netty.tcp.receive-buffer-size",
        "akka.cluster.roles",
        "akka.cluster.seed-nodes",
        "akka.cluster.seed-node-timeout",
        "akka.cluster.downing-provider-class",
        "akka.cluster.split-brain-resolver.active-strategy",
        "akka.cluster.split-brain-resolver.stable-after",
        "akka.cluster.down-removal-margin",
        "akka.cluster.failure-detector.acceptable-heartbeat-pause",
        "akka.cluster.run-coordinated-shutdown-when-down",
        Actors.Security.NodeTls.EnableSslKey,
        Actors.Security.NodeTls.CertificatePathKey,
        Actors.Security.NodeTls.MutualAuthenticationKey,
    ];

    private static readonly string[] DistSgdKeys =
        ["step-timeout", "start-timeout", "max-peers", "akka-chunk-size", "ready-interval", "roles.master", "roles.worker", "roles.peer", "standby-masters", "step-trace", "trace-file", "trace-max-spans",
         "checkpoint.every-steps", "checkpoint.every-seconds", "checkpoint.at-epoch-end", "checkpoint.keep"];

    /// <summary>
    /// Runs the node. What it prints is picked as for `train` (<see cref="RunDisplay.Create"/>, never the live display):
    /// plain lines, --quiet's last line only, or --json's one object per epoch and one at the end; Akka's log goes to
    /// <c>&lt;out&gt;/distsgd.log</c> (<see cref="RunLog"/>), only its warnings and errors to the console (standard error with --json).
    /// </summary>
    public static int Execute(NodeSettings node, TrainSettings settings, TextWriter console, CancellationToken cancellation = default)
    {
        var display = RunDisplay.Create(settings, console, interactive: false);
        return display.Run(() => ExecuteAsync(node, settings, display, console, cancellation).GetAwaiter().GetResult());
    }

    /// <summary>Checks that the roles fit the mode; the message names the flag.</summary>
    public static void CheckRoles(RunMode mode, IReadOnlyList<NodeRole> roles)
    {
        if (mode == RunMode.Sequential)
            throw new UsageException("--mode: a node takes part in a centralized or decentralized run; sequential training runs in one process (distsgd train --mode sequential)");
        if (roles.Count == 0)
            throw new UsageException($"--roles: expected one or more of {string.Join(", ", NodeRoles.Names)}, found none");
        if (mode == RunMode.Decentralized && roles.Any(r => r != NodeRole.Peer))
            throw new UsageException($"--roles: a decentralized node holds the role peer only, found '{NodeRoles.Describe(roles)}'");
        if (mode == RunMode.Centralized && roles.Contains(NodeRole.Peer))
            throw new UsageException($"--roles: a centralized node holds master, worker or both, found '{NodeRoles.Describe(roles)}' (peer is for --mode decentralized)");
    }

    /// <summary>
    /// Turns a --seed-nodes entry, host:port or a full akka.tcp://distsgd@host:port address (akka.ssl.tcp:// when
    /// <paramref name="tls"/>: Akka names the TLS transport so), into an Akka address; the message names the entry and
    /// what is expected.
    /// </summary>
    public static Address ParseSeedNode(string text, bool tls = false)
    {
        string trimmed = text.Trim();
        string protocol = tls ? "akka.ssl.tcp" : "akka.tcp";
        string full = trimmed.Contains("://", StringComparison.Ordinal) ? trimmed : $"{protocol}://{NodeConfig.SystemName}@{trimmed}";
        if (!full.StartsWith(protocol + "://", StringComparison.Ordinal) && full.StartsWith("akka.", StringComparison.Ordinal))
            throw new UsageException(
                $"--seed-nodes: TLS is {(tls ? "on" : "off")}, so a seed node's address is {protocol}://{NodeConfig.SystemName}@host:port " +
                $"(or host:port), found '{text}'");
        Address address;
        try
        {
            address = Address.Parse(full);
        }
        catch (Exception e) when (e is UriFormatException or ArgumentException or FormatException)
        {
            throw new UsageException($"--seed-nodes: expected host:port or akka.tcp://{NodeConfig.SystemName}@host:port, found '{text}'");
        }
        if (address.Host is null || address.Port is null or <= 0 or > 65535)
            throw new UsageException($"--seed-nodes: expected host:port with a port from 1 to 65535, found '{text}'");
        if (address.System != NodeConfig.SystemName)
            throw new UsageException($"--seed-nodes: every DistSgd node's actor system is '{NodeConfig.SystemName}', found '{address.System}' in '{text}'");
        return address;
    }

    /// <summary>
    /// The node's whole configuration: addresses, roles, seed nodes or the bootstrap's keys from the flags (they win),
    /// then the --config file, then the node defaults sized for the model (<see cref="NodeConfig.Build"/>), then
    /// DistSgd's reference.conf, Akka.Cluster's and (when bootstrapping) Akka.Management's and Akka.Discovery's defaults.
    /// </summary>
    public static Config BuildConfig(NodeSettings node, IReadOnlyList<string> roleNames, IReadOnlyList<Address> seeds,
                                     long frameSize, Config? overrides, string logLevel)
    {
        string Quote(string s) => HoconFile.Quote(s);
        var flags = ConfigurationFactory.ParseString($$"""
            akka.remote.dot-netty.tcp.hostname = {{Quote(node.Host)}}
            akka.remote.dot-netty.tcp.public-hostname = {{Quote(node.PublicHost ?? "")}}
            akka.remote.dot-netty.tcp.port = {{node.Port}}
            akka.cluster.roles = [{{string.Join(", ", roleNames.Select(Quote))}}]
            """);
        if (seeds.Count > 0)
            flags = ConfigurationFactory.ParseString($"akka.cluster.seed-nodes = [{string.Join(", ", seeds.Select(s => Quote(s.ToString())))}]")
                                        .WithFallback(flags);
        flags = flags.WithFallback(NodeBootstrap.Build(node.Discovery, node.Host, node.PublicHost ?? node.Host, node.RunId));
        var nodeDefaults = NodeConfig.Build(node.Host, node.Port, roleNames, frameSize, node.PublicHost, logLevel, overrides, quietShutdown: true);
        return flags.WithFallback(nodeDefaults).WithFallback(AkkaClusterDefaults.Value).WithFallback(NodeBootstrap.Defaults(node.Discovery));
    }

    /// <summary>The effective configuration as "key = value" lines: every distsgd.* key and the remoting and cluster keys that matter.</summary>
    public static string DescribeConfig(Config config)
    {
        var lines = new List<string>();
        var keys = DistSgdKeys.Select(k => "distsgd." + k).Concat(PrintedKeys).ToList();
        var listKeys = new List<string> { "akka.cluster.roles", "akka.cluster.seed-nodes" };
        // A node that bootstraps also shows how: the management endpoint, the method and where it looks.
        string serviceKey = NodeBootstrap.PrintedKeys[4];
        if (config.HasPath(serviceKey))
        {
            keys.AddRange(NodeBootstrap.PrintedKeys);
            string method = config.GetString("akka.discovery.method");
            if (method == NodeBootstrap.KubernetesMethod)
                keys.AddRange(NodeBootstrap.KubernetesKeys);
            else
                listKeys.Add(NodeBootstrap.EndpointsKey(config.GetString(serviceKey)));
            keys.AddRange(listKeys.Skip(2));
        }
        foreach (string key in keys)
        {
            if (!config.HasPath(key))
            {
                lines.Add($"{key} = (unset)");
                continue;
            }
            string value = listKeys.Contains(key)
                ? "[" + string.Join(", ", config.GetStringList(key).Select(s => $"\"{s}\"")) + "]"
                : config.GetString(key);
            lines.Add($"{key} = {(value.Length == 0 ? "\"\"" : value)}");
        }
        return string.Join(Environment.NewLine, lines);
    }

    private static async Task<int> ExecuteAsync(NodeSettings node, TrainSettings settings, RunDisplay display, TextWriter console,
                                                CancellationToken cancellation)
    {
        var clock = Stopwatch.StartNew();
        var output = display.Output;
        CheckRoles(settings.Mode, node.Roles);
        InputChecks.CheckResultsFolder(settings.Out);
        InputChecks.CheckStragglerFlags(settings);
        // A bad --config file or distsgd.* value fails here, naming its key, before the data is read or a port is opened.
        var config = EffectiveConfig.Load(settings);
        // A bad certificate, password or TLS key fails here, before the data is read or a port is opened.
        var tls = config.TlsIdentity(settings, node.PrintConfig ? TextWriter.Null : output);
        var seeds = node.SeedNodes.Select(s => ParseSeedNode(s, tls is not null)).ToList();
        var distsgd = config.DistSgd;
        // A port another process holds is found here, before the data is read (nothing is opened by --print-config).
        if (!node.PrintConfig)
        {
            PortChecks.CheckNode(node, distsgd);
            NodeBootstrap.CheckEnvironment(node.Discovery, Environment.GetEnvironmentVariable(NodeBootstrap.KubernetesHostVariable));
        }
        // Served from here on (and so a port in use fails here, before the data is read): every node has its own.
        using var metrics = node.PrintConfig ? null : MetricsEndpoint.Start(settings.MetricsPort, node.Host);
        var roleNames = node.Roles.Select(r => r switch
        {
            NodeRole.Master => distsgd.MasterRole,
            NodeRole.Worker => distsgd.WorkerRole,
            _ => distsgd.PeerRole,
        }).Distinct().ToList();

        // Every node reads its own copy (or shard) of the data and builds θ₀ from the seed, exactly as `train` does.
        // --print-config shows the run this node would take part in as comment lines above the keys (data, model, run).
        var described = new StringWriter();
        var run = TrainRun.Prepare(settings, node.PrintConfig ? described : output, distsgd.Wire, distsgd.SyncEvery);
        long frame = run.Setup.FrameSize(settings.Mode);
        // Akka's log goes to the results folder's distsgd.log, as train's does; only its warnings and errors reach the console.
        RunTrace.Check(settings.TraceFile);
        var (logged, logLevel) = RunLog.Into(settings.Out, config.Overrides, config.AkkaLogLevel);
        logged = RunTrace.Into(logged, settings.TraceFile)!;
        var akka = BuildConfig(node, roleNames, seeds, frame, logged, logLevel);
        if (node.PrintConfig)
        {
            foreach (string line in described.ToString().Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
                console.WriteLine($"# {line}");
            console.WriteLine($"# node: {NodeRoles.Describe(node.Roles)}, joins through " +
                              (node.Discovery.Bootstraps ? NodeBootstrap.Describe(node.Discovery, node.RunId) : "--seed-nodes"));
            console.WriteLine(DescribeConfig(akka));
            return ExitCodes.Ok;
        }
        TimeSpan joinTimeout = node.JoinTimeout ?? distsgd.StartTimeout;
        // The numeric code compiles while this node joins its cluster, not in the first steps (README, "Warm-up");
        // awaited once the node is Up, before it takes part.
        var warmUp = ModelWarmUp.Start(run.Spec, run.Options.BatchSize, run.OptimizerOptions);
        // A centralized worker the cluster removed joins again, as a new incarnation on the same address (issue 20).
        for (int incarnation = 1; ; incarnation++)
        {
            if (await RunIncarnation(node, akka, tls, joinTimeout, settings, config, run, clock, display, metrics, warmUp, cancellation) is { } exit)
                return exit;
            if (incarnation > MaxRejoins)
                throw new TrainingFailedException($"this node was removed from the cluster (or, a peer, left out of the run) {incarnation} times; it does not join again (at most {MaxRejoins} times)");
        }
    }

    /// <summary>How many times a removed worker node, or a peer left out of the run, joins again before it gives up.</summary>
    public const int MaxRejoins = 3;

    /// <summary>One incarnation of the node: its ActorSystem joins the cluster and takes part; null when it is to join again.</summary>
    private static async Task<int?> RunIncarnation(NodeSettings node, Config akka, Actors.Security.NodeTls? tls, TimeSpan joinTimeout,
                                                   TrainSettings settings, EffectiveConfig config, PreparedRun run, Stopwatch clock,
                                                   RunDisplay display, MetricsEndpoint? metrics, Task warmUp,
                                                   CancellationToken cancellation)
    {
        var output = display.Output;
        ActorSystem system;
        try
        {
            system = NodeConfig.CreateActorSystem(akka, tls);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new UsageException(
                $"--host {node.Host} --port {node.Port}: cannot listen for Akka remoting there ({Innermost(e).Message}); " +
                "is another process using the port, or is the host not an address of this machine?");
        }

        try
        {
            metrics?.Watch(system);
            // Every node answers the clock probes of traced nodes; a traced node also probes (its track's timestamps follow).
            system.ActorOf(TraceClock.Props(probe: settings.TraceFile is not null), TraceClock.ActorName);
            if (metrics is not null)
                output.WriteLine($"metrics: {metrics.Url}");
            var cluster = Cluster.Get(system);
            var up = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            cluster.RegisterOnMemberUp(() => up.TrySetResult());
            var seedNodes = akka.GetStringList("akka.cluster.seed-nodes");
            if (node.Discovery.Bootstraps)
            {
                // Only how the node joins differs: Up, the run plan and the start barrier follow as with seed nodes.
                var management = await NodeBootstrap.StartAsync(system, node.Discovery, node.Host);
                output.WriteLine($"cluster: {cluster.SelfAddress} ({NodeRoles.Describe(node.Roles, ", ")}) bootstrapping through " +
                                 $"{NodeBootstrap.Describe(node.Discovery, node.RunId)}; management endpoint {management}");
            }
            else if (seedNodes.Count == 0)
            {
                output.WriteLine($"cluster: no seed nodes given: {cluster.SelfAddress} starts a new cluster");
                cluster.Join(cluster.SelfAddress);
            }
            else
            {
                output.WriteLine($"cluster: {cluster.SelfAddress} ({NodeRoles.Describe(node.Roles, ", ")}) joining through {string.Join(", ", seedNodes)}");
            }
            var joined = await Task.WhenAny(up.Task, Task.Delay(joinTimeout, cancellation).ContinueWith(_ => { }, TaskScheduler.Default));
            if (joined != up.Task)
            {
                if (cancellation.IsCancellationRequested)
                    throw new TrainingFailedException("interrupted before the node joined the cluster");
                if (node.Discovery.Bootstraps)
                    throw new UsageException(
                        $"--discovery {node.Discovery.Method.Name()}: could not join a cluster through {NodeBootstrap.Describe(node.Discovery, node.RunId)} " +
                        $"within {joinTimeout.TotalSeconds:0}s (--join-timeout, default distsgd.start-timeout). Check that the contact points are running, " +
                        "that each answers on its --management-port at the address listed (its --public-host or --host), and that no more contact points " +
                        "are required than run; Akka.Management's log is in distsgd.log");
                throw new UsageException(
                    $"--seed-nodes: could not join the cluster through {string.Join(", ", seedNodes)} " +
                    $"within {joinTimeout.TotalSeconds:0}s (--join-timeout, default distsgd.start-timeout): no seed node let this node in. " +
                    "Check that the first seed node is running, that each address matches its --public-host (or --host) and --port exactly, " +
                    "and that the port is open in the firewall");
            }
            output.WriteLine($"cluster: {cluster.SelfAddress} is Up");
            await warmUp;
            return await RunOnNode(system, node, settings, config, run, clock, display, cancellation);
        }
        finally
        {
            // Our own lines have said how the run ended; Akka's chatter about closing associations is noise now.
            NodeLogger.MuteForShutdown(system);
            var leaving = CoordinatedShutdown.Get(system).Run(CoordinatedShutdown.ClusterLeavingReason.Instance);
            await Task.WhenAny(leaving, Task.Delay(LeaveTimeout));
            await Task.WhenAny(system.Terminate(), Task.Delay(LeaveTimeout));
            RunTrace.Write(settings.TraceFile, output);
        }
    }

    /// <returns>The node's exit code, or null when it joins again as a new incarnation (<see cref="NodeEnding.Rejoins"/>).</returns>
    private static async Task<int?> RunOnNode(ActorSystem system, NodeSettings node, TrainSettings settings, EffectiveConfig config,
                                              PreparedRun run, Stopwatch clock, RunDisplay display, CancellationToken cancellation)
    {
        var output = display.Output;
        bool decentralized = settings.Mode == RunMode.Decentralized;
        bool hostsMaster = !decentralized && node.Roles.Contains(NodeRole.Master);
        var plan = run.Setup.ToRunPlan(node.RunId, settings, config.CollectiveFor(settings, run.Setup.Spec.ParameterCount));
        if (decentralized)
            output.WriteLine(config.DescribeCollective(settings, run.Setup.Spec.ParameterCount));
        // The state of a run lives with the master (centralized) or in every peer (decentralized): they resume it.
        var checkpoints = hostsMaster || decentralized ? RunCheckpoints.Setup(settings, config, run, output) : null;
        if (checkpoints is null && settings.Resume is not null)
            output.WriteLine("checkpoint: --resume is for the master's node; this worker computes at the θ and step the master sends");
        if (decentralized && checkpoints?.ResumeFrom is { } resumed)
            // Every peer must resume from the same step: a difference fails the start barrier, naming both steps.
            plan = plan with { Hyperparameters = $"{plan.Hyperparameters};resume-from-step={resumed.Step}" };
        var writeEpoch = TrainRun.MetricsWriter(settings, run, display, checkpoints?.ResumeFrom?.Epochs);

        bool resultsFolderMade = false;
        var peerFinished = new TaskCompletionSource<PeerFinished>(TaskCreationOptions.RunContinuationsAsynchronously);
        var lost = new TaskCompletionSource<NodeLost>(TaskCreationOptions.RunContinuationsAsynchronously);
        var removed = new TaskCompletionSource<NodeLost>(TaskCreationOptions.RunContinuationsAsynchronously);
        bool leftOut = false;   // this peer heard the others go on without it (PeerLeftOut), before its failure
        // A SIGSTOP or a starved process shows as a gap between ticks; the node's last line names it.
        var pauses = new PauseWatch();
        var ticking = Stopwatch.StartNew();
        using var ticks = new Timer(_ => pauses.Tick(ticking.Elapsed), null, TimeSpan.Zero, PauseWatch.Interval);
        var sink = new ProgressSink(output, metrics =>
        {
            if (!resultsFolderMade)
            {
                // Only the node that reports epochs (the master, or the lead peer) writes results.
                Directory.CreateDirectory(settings.Out);
                output.WriteLine($"results: {Path.GetFullPath(settings.Out)}");
                resultsFolderMade = true;
            }
            writeEpoch(metrics);
        })
        {
            OnPeerFinished = finished =>
            {
                output.WriteLine($"cluster: this peer (node {finished.NodeId}) finished, replica sha256 {ReplicaCheck.Short(finished.Hash)}…");
                peerFinished.TrySetResult(finished);
            },
            OnPeerLeftOut = _ => leftOut = true,
            // A node that also hosts the master hears its RunCompleted before its worker's RunEnded.
            AlsoEnds = message => message is RunEnded,
        };
        var coordinators = RunCoordinators.Start([system], settings, run.Setup, plan, checkpoints, sink);
        // A node the cluster downs (the minority side of a partition) ends its part here instead of waiting for ever;
        // a node leaving on SIGTERM or Ctrl+C (Akka's own handler may run first) is no news.
        Cluster.Get(system).RegisterOnMemberRemoved(() =>
        {
            var reason = CoordinatedShutdown.Get(system).ShutdownReason;
            if (!cancellation.IsCancellationRequested && (reason is null || reason is CoordinatedShutdown.ClusterDowningReason))
                removed.TrySetResult(NodeEnding.SelfRemoved);
        });
        if (!decentralized && !hostsMaster)
            WatchForTheMaster(system, config.DistSgd, nodeLost => lost.TrySetResult(nodeLost));
        var distsgd = config.DistSgd;
        output.WriteLine(decentralized
            ? $"cluster: peer waiting for {settings.ComputeNodes} peers (distsgd.start-timeout {distsgd.StartTimeout.TotalSeconds:0}s)"
            : hostsMaster
                ? $"cluster: master waiting for {settings.ComputeNodes} workers (distsgd.start-timeout {distsgd.StartTimeout.TotalSeconds:0}s)"
                : "cluster: worker waiting for the master");

        // A peer that is not the lead ends on its own PeerFinished; the lead's RunCompleted follows in the same handler.
        // A removal waits a moment for a finishing report on its way; what ends the part is NodeEnding's decision.
        async Task<object> NodeEnded()
        {
            await Task.WhenAny(sink.Ended, peerFinished.Task, lost.Task, removed.Task);
            if (!sink.Ended.IsCompleted && !peerFinished.Task.IsCompleted)
            {
                // The master's node seen leaving may be this node's own removal on its way (NodeEnding.Lost): wait for that too.
                var delay = Task.Delay(RemovalWait, CancellationToken.None);
                await Task.WhenAny(sink.Ended, peerFinished.Task, delay);
                if (!removed.Task.IsCompleted && lost.Task.IsCompleted)
                    await Task.WhenAny(removed.Task, delay);
            }
            if (!sink.Ended.IsCompleted && peerFinished.Task.IsCompleted)
                await Task.WhenAny(sink.Ended, Task.Delay(LeadReportWait, CancellationToken.None));
            return NodeEnding.Outcome(Heard(sink.Ended), Heard(peerFinished.Task), NodeEnding.Lost(Heard(removed.Task), Heard(lost.Task)))!;
        }

        object outcome;
        try
        {
            outcome = await coordinators.AwaitAsync(NodeEnded(), cancellation);
        }
        catch (OperationCanceledException)
        {
            display.Final("interrupted: leaving the cluster", settings.Out);
            return ExitCodes.TrainingFailed;
        }

        if (!cancellation.IsCancellationRequested && NodeEnding.Rejoins(outcome, centralized: !decentralized, hostsMaster, leftOut))
        {
            string paused = pauses.PauseBefore(ticking.Elapsed) is { } pause && pause >= NodeEnding.NotablePause ? $" after it did not run for {pause.TotalSeconds:0} s" : "";
            string why = outcome is NodeLost lostNode ? lostNode.Reason : ((RunProgress.RunFailed)outcome).Reason;
            string back = decentralized ? "the lead peer takes it back at the end of the epoch under way" : "the master takes it back from the next epoch";
            output.WriteLine($"cluster: {why}{paused}; joining again as a new incarnation ({back})");
            return null;
        }
        if (outcome is PeerFinished or RunEnded or NodeLost)
        {
            var exit = NodeEnding.Exit(outcome, plan.RunId, pauses.PauseBefore(ticking.Elapsed), removedAfterwards: (removed.Task.IsCompleted || lost.Task.IsCompleted) && outcome is not NodeLost);
            if (exit.ExitCode != ExitCodes.Ok)
                throw new TrainingFailedException(exit.Line);
            display.Final(exit.Line, settings.Out);
            return exit.ExitCode;
        }
        var (parameters, result) = RunCoordinators.Completed(outcome);
        sink.Locked(() =>
        {
            if (!resultsFolderMade)
                Directory.CreateDirectory(settings.Out);
            if (RunCheckpoints.Describe(checkpoints?.Writer) is { } written)
                output.WriteLine(written);
            display.Final(TrainRun.WriteResultFiles(settings, config, run, parameters, result, clock, command: "node"), settings.Out);
        });
        return result.StopReason == StopReason.Cancelled ? ExitCodes.TrainingFailed : ExitCodes.Ok;
    }

    /// <summary>
    /// On a worker-only node, ends the node's part when no master-role node is Up within distsgd.start-timeout, or when
    /// the last node that may host the master leaves before the run ended (its RunEnded arrives before it leaves); while
    /// another master-role node remains, the singleton moves there and this worker goes on with it.
    /// </summary>
    private static void WatchForTheMaster(ActorSystem system, DistSgdSettings distsgd, Action<NodeLost> lost)
    {
        var cluster = Cluster.Get(system);
        bool seen = false;
        var masters = new HashSet<Address>();
        var watcher = system.ActorOf(CallbackActor.Props(message =>
        {
            switch (message)
            {
                case ClusterEvent.MemberUp up when up.Member.HasRole(distsgd.MasterRole):
                    seen = true;
                    masters.Add(up.Member.Address);
                    break;
                case ClusterEvent.MemberRemoved removed when removed.Member.HasRole(distsgd.MasterRole):
                    masters.Remove(removed.Member.Address);
                    if (masters.Count == 0)
                        lost(NodeEnding.MasterLost(
                            $"the master's node {removed.Member.Address} left the cluster before the run ended, and no other node may host the master (--roles worker,master)",
                            selfDown: IsShuttingDown(system)));
                    break;
                case "start-timeout" when !seen:
                    lost(new NodeLost(
                        $"no node with the master role joined the cluster within {distsgd.StartTimeout.TotalSeconds:0}s (distsgd.start-timeout); " +
                        "start one with distsgd node --roles master"));
                    break;
            }
        }), "master-watch");
        cluster.Subscribe(watcher, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents, typeof(ClusterEvent.MemberUp), typeof(ClusterEvent.MemberRemoved));
        system.Scheduler.ScheduleTellOnce(distsgd.StartTimeout, watcher, "start-timeout", ActorRefs.NoSender);
    }

    /// <summary>True when the cluster downed or removed this node: then every other member looks gone from here.</summary>
    private static bool IsShuttingDown(ActorSystem system) =>
        Cluster.Get(system).SelfMember.Status is MemberStatus.Down or MemberStatus.Removed
        || CoordinatedShutdown.Get(system).ShutdownReason is CoordinatedShutdown.ClusterDowningReason;

    /// <summary>Akka.Cluster's own defaults (its embedded Cluster.conf), so that --print-config shows the downing and failure-detector values in force.</summary>
    private static readonly Lazy<Config> AkkaClusterDefaults = new(() =>
    {
        using var stream = typeof(Cluster).Assembly.GetManifestResourceStream("Akka.Cluster.Configuration.Cluster.conf");
        if (stream is null)
            return Config.Empty;
        using var reader = new StreamReader(stream);
        return ConfigurationFactory.ParseString(reader.ReadToEnd());
    });

    /// <summary>The task's result when it completed, else null.</summary>
    private static T? Heard<T>(Task<T> task) where T : class => task.IsCompletedSuccessfully ? task.Result : null;

    private static Exception Innermost(Exception e)
    {
        while (e.InnerException is not null)
            e = e.InnerException;
        return e;
    }
}
