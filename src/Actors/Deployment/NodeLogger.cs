using System.Collections.Concurrent;
using Akka.Actor;
using Akka.Event;

namespace DistSgd.Actors.Deployment;

/// <summary>
/// Akka's console logger for DistSgd nodes, with one difference: once a node's run is over and it is being
/// shut down (<see cref="MuteForShutdown"/>), it prints nothing more. Nodes of one run stop together, and
/// Akka.Remote and DotNetty then log every closed association as a warning or an error with a stack trace —
/// expected, and noise after the run's last line.
/// </summary>
public sealed class NodeLogger : DefaultLogger
{
    private static readonly ConcurrentDictionary<ActorSystem, bool> Muted = new();

    /// <summary>Silences this node's log from now on (call when the run has ended and the node is stopping).</summary>
    public static void MuteForShutdown(ActorSystem node)
    {
        Muted[node] = true;
        node.WhenTerminated.ContinueWith(_ => Muted.TryRemove(node, out bool _), TaskScheduler.Default);
    }

    protected override void Print(LogEvent logEvent)
    {
        if (!Muted.ContainsKey(Context.System))
            base.Print(logEvent);
    }
}
