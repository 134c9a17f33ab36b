using System.Runtime.InteropServices;
using DistSgd.Host.Cli;

// The `distsgd` executable: only wiring. Ctrl+C or SIGTERM cancels a run between epochs; a `distsgd node`
// then leaves its cluster through Akka's CoordinatedShutdown before the process exits.
using var cancellation = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    cancellation.Cancel();
};
using var terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
{
    context.Cancel = true;
    cancellation.Cancel();
});
return DistSgdCommandLine.Run(args, Console.Out, Console.Error, cancellation.Token);
