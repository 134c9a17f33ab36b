using System.Runtime.InteropServices;
using System.Security.Cryptography;
using DistSgd.Numerics.Optim;

namespace DistSgd.Actors.Decentralized;

/// <summary>
/// How peers prove their replicas are the same and agree whom to copy when they are not. Pure functions,
/// so every peer that sees the same hashes makes the same choice.
/// </summary>
public static class ReplicaCheck
{
    /// <summary>
    /// SHA-256 of a replica: θ's raw float32 bytes, then the optimizer's step and velocity. With local SGD
    /// (<paramref name="syncEvery"/> &gt; 1) each peer's momentum is its own by design, so the velocity is left out:
    /// θ and the step must still be the same everywhere at an epoch's end, which always averages.
    /// </summary>
    public static byte[] Hash(ReadOnlySpan<float> parameters, SgdState state, int syncEvery = 1)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(MemoryMarshal.AsBytes(parameters));
        Span<byte> step = stackalloc byte[sizeof(long)];
        System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(step, state.Step);
        hash.AppendData(step);
        if (syncEvery <= 1)
            hash.AppendData(MemoryMarshal.AsBytes(state.Velocity.AsSpan()));
        return hash.GetHashAndReset();
    }

    /// <summary>
    /// The peer every replica copies when hashes differ: the lowest node id among those holding the hash that
    /// most nodes hold (a tie goes to the group with the lowest node id). A single corrupted replica is thus
    /// repaired from the majority, and every peer that sees the same hashes picks the same source.
    /// </summary>
    public static int ChooseSource(IReadOnlyDictionary<int, byte[]> hashes)
    {
        if (hashes.Count == 0)
            throw new ArgumentException("no hashes to choose from", nameof(hashes));
        return hashes
            .GroupBy(h => Convert.ToHexString(h.Value))
            .Select(g => (Count: g.Count(), Lowest: g.Min(h => h.Key)))
            .OrderByDescending(g => g.Count).ThenBy(g => g.Lowest)
            .First().Lowest;
    }

    /// <summary>The first bytes of a hash in hex, for logs.</summary>
    public static string Short(byte[] hash) => Convert.ToHexString(hash, 0, Math.Min(6, hash.Length)).ToLowerInvariant();
}
