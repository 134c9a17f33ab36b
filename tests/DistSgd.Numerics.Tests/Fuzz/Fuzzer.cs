using System.Diagnostics;
using System.Text;

namespace DistSgd.Tests.Fuzz;

/// <summary>
/// A small seeded mutation fuzzer: from good inputs it makes random and mutated byte arrays (bit flips, cuts,
/// random runs, hostile 32-bit lengths, tokens spliced into text) for a bounded time, and checks that the code
/// under test throws only the exceptions it documents, returns within a time bound and allocates in proportion
/// to its input, not to a length field it was fed.
/// </summary>
/// <remarks>Shared by the Numerics and Actors test projects (linked, not copied).</remarks>
internal static class Fuzzer
{
    private static readonly int[] HostileInts = [-1, 0, 1, 0x7FFFFFFF, 0x7FFFFFF0, 0x40000000, 0x10000000, 1 << 24, 65_536, int.MinValue];

    private static readonly byte[][] HostileTokens =
        [.. new[] { "NaN", "Infinity", "-1", "1e999", "99999999999", "2147483647:1", ":", ",", "\n", "\r\n", "\"", "#", " ", "\t", "-", "0x", "1e-45", "\uFEFF", "\u00e9" }
            .Select(t => Encoding.UTF8.GetBytes(t))];

    /// <summary>What one fuzzing session did.</summary>
    public sealed record Report(int Cases, int Accepted, int Refused);

    /// <summary>
    /// Feeds mutations of <paramref name="seeds"/> to <paramref name="target"/> for <paramref name="budget"/>: an
    /// exception other than <paramref name="documented"/>, a call over <paramref name="callLimit"/> or an allocation
    /// over <paramref name="allocationLimit"/>(input length) fails the test, naming the input (as Base64) to replay it.
    /// </summary>
    public static Report Run(int seed, TimeSpan budget, IReadOnlyList<byte[]> seeds, Action<byte[]> target, Type documented,
                             Func<int, long> allocationLimit, TimeSpan? callLimit = null)
    {
        var random = new Random(seed);
        // A hang, not a slow call: wall time, so a generous bound (a call of a few ms took 2.7 s once at load 27, its thread
        // off the cores; CI machines are shared too). A loop that does not end still fails it.
        var limit = callLimit ?? TimeSpan.FromSeconds(15);
        var clock = Stopwatch.StartNew();
        int cases = 0, accepted = 0, refused = 0;
        while (clock.Elapsed < budget || cases < seeds.Count)
        {
            byte[] input = cases < seeds.Count ? seeds[cases] : Mutate(random, seeds[random.Next(seeds.Count)]);
            cases++;
            long allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
            var call = Stopwatch.StartNew();
            try
            {
                target(input);
                accepted++;
            }
            catch (Exception e) when (documented.IsInstanceOfType(e))
            {
                refused++;
            }
            catch (Exception e)
            {
                Assert.Fail($"case {cases} (seed {seed}) threw {e.GetType().Name}, not {documented.Name}: {e.Message}\ninput: {Convert.ToBase64String(input)}");
            }
            long allocated = GC.GetAllocatedBytesForCurrentThread() - allocatedBefore;
            Assert.True(call.Elapsed < limit, $"case {cases} (seed {seed}) took {call.Elapsed.TotalSeconds:F1} s\ninput: {Convert.ToBase64String(input)}");
            Assert.True(allocated <= allocationLimit(input.Length),
                        $"case {cases} (seed {seed}) allocated {allocated} bytes for a {input.Length}-byte input\ninput: {Convert.ToBase64String(input)}");
        }
        return new Report(cases, accepted, refused);
    }

    public static byte[] Mutate(Random random, byte[] good)
    {
        var bytes = new List<byte>(good);
        int edits = 1 + random.Next(4);
        for (int e = 0; e < edits; e++)
        {
            switch (random.Next(8))
            {
                case 0 when bytes.Count > 0:   // flip a bit
                    int at = random.Next(bytes.Count);
                    bytes[at] ^= (byte)(1 << random.Next(8));
                    break;
                case 1 when bytes.Count > 0:   // cut a range out
                    int start = random.Next(bytes.Count);
                    bytes.RemoveRange(start, random.Next(bytes.Count - start + 1));
                    break;
                case 2:                         // random run
                    var run = new byte[1 + random.Next(16)];
                    random.NextBytes(run);
                    bytes.InsertRange(random.Next(bytes.Count + 1), run);
                    break;
                case 3 when bytes.Count >= 4:   // a hostile 32-bit length, either byte order
                    int value = HostileInts[random.Next(HostileInts.Length)];
                    var word = BitConverter.GetBytes(random.Next(2) == 0 ? value : System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(value));
                    int offset = random.Next(bytes.Count - 3);
                    for (int i = 0; i < 4; i++)
                        bytes[offset + i] = word[i];
                    break;
                case 4:                         // a token spliced into text
                    bytes.InsertRange(random.Next(bytes.Count + 1), HostileTokens[random.Next(HostileTokens.Length)]);
                    break;
                case 5 when bytes.Count > 0:   // duplicate a slice
                    int from = random.Next(bytes.Count);
                    int length = Math.Min(1 + random.Next(64), bytes.Count - from);
                    bytes.InsertRange(random.Next(bytes.Count + 1), bytes.GetRange(from, length));
                    break;
                case 6:                         // all random
                    var noise = new byte[random.Next(64)];
                    random.NextBytes(noise);
                    return noise;
                default:                        // keep a prefix
                    int keep = random.Next(bytes.Count + 1);
                    bytes.RemoveRange(keep, bytes.Count - keep);
                    break;
            }
        }
        return bytes.ToArray();
    }
}
