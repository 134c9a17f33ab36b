using System.Collections.Concurrent;
using Akka.Actor;
using Akka.Event;

namespace DistSgd.Actors.Deployment;

/// <summary>
/// Akka's console logger for DistSgd nodes, with two differences. With <c>distsgd.log-file</c> set, every event goes
/// to that file and only warnings and errors to the console, so Akka's own lines never tear a live progress display.
/// And once a node's run is over and it is being shut down (<see cref="MuteForShutdown"/>), it prints nothing more
/// to the console: nodes of one run stop together, and Akka.Remote and DotNetty then log every closed association
/// as a warning or an error with a stack trace — expected, and noise after the run's last line (the file keeps them).
/// </summary>
public sealed class NodeLogger : DefaultLogger
{
    private static readonly ConcurrentDictionary<ActorSystem, bool> Muted = new();
    private LogFile? _file;
    private bool _fileOpened;

    /// <summary>Silences this node's log from now on (call when the run has ended and the node is stopping).</summary>
    public static void MuteForShutdown(ActorSystem node)
    {
        Muted[node] = true;
        // Akka's fallback console logger, which takes over once the loggers stop, would print the shutdown's INFO lines.
        node.EventStream.SetLogLevel(LogLevel.WarningLevel);
        node.WhenTerminated.ContinueWith(_ => Muted.TryRemove(node, out bool _), TaskScheduler.Default);
    }

    protected override void Print(LogEvent logEvent)
    {
        if (!_fileOpened)
        {
            _fileOpened = true;
            string path = Context.System.Settings.Config.GetString("distsgd.log-file", "");
            _file = path.Length > 0 ? LogFile.Open(path) : null;
        }
        _file?.WriteLine($"{((ExtendedActorSystem)Context.System).Provider.DefaultAddress} {logEvent}");
        if (Muted.ContainsKey(Context.System) || (_file is not null && logEvent.LogLevel() < LogLevel.WarningLevel))
            return;
        base.Print(logEvent);
    }

    protected override void PostStop()
    {
        _file?.Release();
        base.PostStop();
    }

    /// <summary>One log file shared by the nodes of a process (a simulated cluster), closed when the last lets go.</summary>
    private sealed class LogFile
    {
        private static readonly Dictionary<string, LogFile> Files = new();
        private readonly string _path;
        private readonly StreamWriter _writer;
        private int _users;

        private LogFile(string path)
        {
            _path = path;
            Directory.CreateDirectory(Path.GetDirectoryName(path) is { Length: > 0 } folder ? folder : ".");
            _writer = new StreamWriter(new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite)) { AutoFlush = true };
        }

        public static LogFile Open(string path)
        {
            string full = Path.GetFullPath(path);
            lock (Files)
            {
                if (!Files.TryGetValue(full, out var file))
                    Files[full] = file = new LogFile(full);
                file._users++;
                return file;
            }
        }

        public void WriteLine(string line)
        {
            lock (Files)
                _writer.WriteLine(line);
        }

        public void Release()
        {
            lock (Files)
            {
                if (--_users > 0)
                    return;
                Files.Remove(_path);
                _writer.Dispose();
            }
        }
    }
}
