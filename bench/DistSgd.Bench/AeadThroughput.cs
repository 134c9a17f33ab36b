using System.Diagnostics;
using System.Security.Cryptography;
using NSec.Cryptography;

namespace DistSgd.Bench;

/// <summary>
/// `-- aead [--rounds N] [--megabytes N]`: the AEADs the encrypted data plane could seal its records with, in process,
/// one core: .NET's <see cref="AesGcm"/> (AES-256-GCM, OpenSSL, AES-NI) against libsodium's AEGIS-256 and AEGIS-128L
/// (through NSec). For each record size (64 KB … 1 MB) each contestant seals then opens about N MB of records, a
/// 16-byte header as associated data, as the data plane does; the contestants interleave round by round, and the table
/// shows the median GB/s of plaintext (seal and open separately) over the rounds.
/// </summary>
public static class AeadThroughput
{
    private static readonly int[] Sizes = [64 << 10, 128 << 10, 256 << 10, 1 << 20];

    public static int Run(string[] args)
    {
        int rounds = QuickBenchOptions.Int(args, "--rounds", 7);
        int megabytes = QuickBenchOptions.Int(args, "--megabytes", 64);
        var key = RandomNumberGenerator.GetBytes(32);
        Console.WriteLine($"AEAD throughput, one thread, ~{megabytes} MB per contestant, size and round; median of {rounds} interleaved rounds (GB/s of plaintext)");
        Console.WriteLine("| record | AEAD | seal GB/s | open GB/s | seal+open ms per 940 KB |");
        Console.WriteLine("| ---: | --- | ---: | ---: | ---: |");
        foreach (int size in Sizes)
        {
            var contestants = new Contestant[] { new Gcm(key, size), new Aegis(AeadAlgorithm.Aegis256, key, size), new Aegis(AeadAlgorithm.Aegis128L, key, size) };
            int records = Math.Max(8, (megabytes << 20) / size);
            foreach (var c in contestants)
                c.Measure(2);   // warm up
            var seal = contestants.ToDictionary(c => c, _ => new List<double>());
            var open = contestants.ToDictionary(c => c, _ => new List<double>());
            for (int round = 0; round < rounds; round++)
                foreach (var c in contestants)
                {
                    var (sealSeconds, openSeconds) = c.Measure(records);
                    seal[c].Add((double)size * records / sealSeconds / 1e9);
                    open[c].Add((double)size * records / openSeconds / 1e9);
                }
            foreach (var c in contestants)
            {
                double s = Median(seal[c]), o = Median(open[c]);
                Console.WriteLine($"| {size >> 10} KB | {c.Name} | {s:F2} | {o:F2} | {940_584 / s / 1e6 + 940_584 / o / 1e6:F3} |");
                c.Dispose();
            }
        }
        return 0;
    }

    private static double Median(List<double> values) => values.Order().ElementAt(values.Count / 2);

    /// <summary>One AEAD sealing a record of a fixed size into a buffer, and opening it back.</summary>
    private abstract class Contestant(string name, int size) : IDisposable
    {
        protected readonly byte[] Plaintext = RandomNumberGenerator.GetBytes(size);
        protected readonly byte[] Opened = new byte[size];
        protected readonly byte[] Header = new byte[16];

        public string Name { get; } = name;

        /// <summary>Seals <paramref name="records"/> records, then opens the last one as often; the seconds of each.</summary>
        public (double Seal, double Open) Measure(int records)
        {
            long started = Stopwatch.GetTimestamp();
            for (int i = 0; i < records; i++)
                Seal(i);
            double seal = Stopwatch.GetElapsedTime(started).TotalSeconds;
            started = Stopwatch.GetTimestamp();
            for (int i = 0; i < records; i++)
                if (!Open(records - 1))
                    throw new InvalidOperationException($"{Name}: a sealed record did not open");
            double open = Stopwatch.GetElapsedTime(started).TotalSeconds;
            if (!Opened.AsSpan().SequenceEqual(Plaintext))
                throw new InvalidOperationException($"{Name}: the record opened to other bytes");
            return (seal, open);
        }

        protected abstract void Seal(int counter);

        protected abstract bool Open(int counter);

        public abstract void Dispose();
    }

    private sealed class Gcm(byte[] key, int size) : Contestant("AES-256-GCM (.NET AesGcm)", size)
    {
        private readonly AesGcm _aes = new(key, 16);
        private readonly byte[] _ciphertext = new byte[size];
        private readonly byte[] _tag = new byte[16];
        private readonly byte[] _nonce = new byte[12];

        protected override void Seal(int counter)
        {
            BitConverter.TryWriteBytes(_nonce, counter);
            _aes.Encrypt(_nonce, Plaintext, _ciphertext, _tag, Header);
        }

        protected override bool Open(int counter)
        {
            BitConverter.TryWriteBytes(_nonce, counter);
            try
            {
                _aes.Decrypt(_nonce, _ciphertext, _tag, Opened, Header);
                return true;
            }
            catch (AuthenticationTagMismatchException)
            {
                return false;
            }
        }

        public override void Dispose() => _aes.Dispose();
    }

    private sealed class Aegis : Contestant
    {
        private readonly AeadAlgorithm _algorithm;
        private readonly Key _key;
        private readonly byte[] _sealed;
        private readonly byte[] _nonce;

        public Aegis(AeadAlgorithm algorithm, byte[] key, int size)
            : base($"{(algorithm == AeadAlgorithm.Aegis256 ? "AEGIS-256" : "AEGIS-128L")} (libsodium via NSec, {algorithm.TagSize * 8}-bit tag)", size)
        {
            _algorithm = algorithm;
            _key = Key.Import(algorithm, key.AsSpan(0, algorithm.KeySize), KeyBlobFormat.RawSymmetricKey);
            _sealed = new byte[size + algorithm.TagSize];
            _nonce = new byte[algorithm.NonceSize];
        }

        protected override void Seal(int counter)
        {
            BitConverter.TryWriteBytes(_nonce, counter);
            _algorithm.Encrypt(_key, _nonce, Header, Plaintext, _sealed);
        }

        protected override bool Open(int counter)
        {
            BitConverter.TryWriteBytes(_nonce, counter);
            return _algorithm.Decrypt(_key, _nonce, Header, _sealed, Opened);
        }

        public override void Dispose() => _key.Dispose();
    }
}
