using BenchmarkDotNet.Running;
using DistSgd.Bench;

// `dotnet run -c Release --project bench/DistSgd.Bench -- quick` prints a median-of-5 table in
// seconds; anything else goes to BenchmarkDotNet (e.g. `-- --filter '*Gemm*'`).
if (args.Length > 0 && args[0] == "socket")
    return SocketRoundTrip.Run(args[1..]);
if (args.Length > 0 && args[0] == "aead")
    return AeadThroughput.Run(args[1..]);
if (args.Length > 0 && args[0] == "checkpoint")
    return CheckpointCost.Run(args[1..]);
if (args.Length > 0 && args[0] == "parts")
    return StepParts.Run(args[1..]);
if (args.Length > 0 && args[0] == "topk")
    return TopKCost.Run(args[1..]);
if (args.Length > 0 && args[0] == "quick")
    return QuickBench.Run(args[1..]);
BenchmarkSwitcher.FromAssembly(typeof(GemmShape).Assembly).Run(args, BenchConfig.Create());
return 0;
