using DistSgd.Host.Cli;

// The `distsgd` executable: only wiring. Ctrl+C cancels a run between epochs.
using var cancellation = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    cancellation.Cancel();
};
return DistSgdCommandLine.Run(args, Console.Out, Console.Error, cancellation.Token);
