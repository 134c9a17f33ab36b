namespace DistSgd.Host;

/// <summary>The program's exit codes: 0 ok, 1 training failed, 2 bad usage or input.</summary>
public static class ExitCodes
{
    public const int Ok = 0;
    public const int TrainingFailed = 1;
    public const int BadInput = 2;
}

/// <summary>A request that cannot be carried out as given; the message names the flag and what it accepts.</summary>
public sealed class UsageException(string message) : Exception(message);
