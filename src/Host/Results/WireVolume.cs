using DistSgd.Actors.Transport;
using DistSgd.Host.Settings;

namespace DistSgd.Host.Results;

/// <summary>
/// What a step would move with float32 gradients, the reference of the compression ratio that metrics.csv and
/// summary.json report beside the bytes actually sent and received (issue 16).
/// </summary>
public static class WireVolume
{
    /// <summary>
    /// Bytes a fault-free step moves as dense float32 frames (header and payload) where a run counts its bytes: at the
    /// master, θ to each of the <paramref name="computeNodes"/> workers and a gradient back from each; at the lead peer, its
    /// share to each of the other peers and theirs back (the all-gather's: a ring or pairwise all-reduce of float32 moves
    /// about 2/N of it, so its ratio is below 1 uncompressed). 0 for a sequential run.
    /// </summary>
    public static double Fp32BytesPerStep(RunMode mode, int computeNodes, int parameterCount)
    {
        long frame = FrameHeader.Size + 4L * parameterCount;
        return mode switch
        {
            RunMode.Centralized => 2.0 * computeNodes * frame,
            RunMode.Decentralized => 2.0 * (computeNodes - 1) * frame,
            _ => 0,
        };
    }

    /// <summary>Bytes per step (sent + received) over the float32 reference; NaN when there is no reference or no step.</summary>
    public static double CompressionRatio(double bytesPerStep, double fp32BytesPerStep) =>
        fp32BytesPerStep > 0 && bytesPerStep > 0 ? bytesPerStep / fp32BytesPerStep : double.NaN;
}
