using System.Globalization;
using System.Numerics.Tensors;
using DistSgd.Numerics.Compression;
using DistSgd.Numerics.Data;
using DistSgd.Numerics.Models;
using DistSgd.Numerics.Optim;
using DistSgd.Numerics.Tensors;
using DistSgd.Numerics.Training;

namespace DistSgd.Bench;

/// <summary>
/// `-- topk [--fraction F] [--steps S] [--rounds R] [--peers N] [--sample S] [--data DIR]`: where a `--compress topk:F` step's CPU
/// goes on one node, measured on the gradients of a real run (the default MLP on Fashion-MNIST, batch 64, the sender's
/// momentum 0.9 as `topk:F` applies it), against the step's own forward and backward pass in the same run.
/// </summary>
/// <remarks>
/// Each step: the gradient (fwd + bwd); the sender's parts one by one on a copy of the compressor's state (the finiteness
/// check, u ← m·u + g and a ← r + u, the NaN check, the exact radix selection and the sampled one on the same a, the
/// scatter into the sent share); the production <see cref="GradientCompressor.Compress(Span{float})"/> whole; then the receiver's
/// parts for N − 1 shares like it (decode into a dense share, the finiteness check on arrival) and the average of N
/// shares with the step (<see cref="SgdOptimizer.AverageAndStep"/>); and the same receiver by the shares' entries (decision
/// 0141): <see cref="ShareCodec.DecodeEntries"/> with the scatter into a clear share and the clearing when it is given
/// back, and <see cref="SgdOptimizer.AverageEntriesAndStep"/>, checked bit for bit against the dense step. Rounds of S steps; a cell is the median of all
/// steps (and the fastest), on this thread's CPU clock (<see cref="ThreadClock"/>), so a core taken by someone else's
/// build does not count, its cache damage does. Compare a row with the gradient's row of the same run.
/// </remarks>
public static class TopKCost
{
    public static int Run(string[] args)
    {
        double fraction = double.Parse(QuickBenchOptions.Text(args, "--fraction") ?? "0.01", CultureInfo.InvariantCulture);
        int steps = QuickBenchOptions.Int(args, "--steps", 200);
        int rounds = QuickBenchOptions.Int(args, "--rounds", 5);
        int peers = QuickBenchOptions.Int(args, "--peers", 4);
        string data = QuickBenchOptions.Text(args, "--data") ?? "/usr/share/datasets/fashion-mnist";
        int sample = QuickBenchOptions.Int(args, "--sample", TopKSelector.DefaultSampleSize);
        var probe = new Probe(data, fraction, peers, sample);
        for (int warm = 0; warm < 50; warm++)
            probe.Step(record: false);
        for (int r = 0; r < rounds; r++)
            for (int s = 0; s < steps; s++)
                probe.Step(record: true);

        Console.WriteLine($"top-k {fraction.ToString(CultureInfo.InvariantCulture)} of {probe.Length:N0} values (k = {probe.Kept:N0}), " +
                          $"momentum 0.9 at the sender, {peers} peers, sampled selection from {sample} values; {rounds} rounds of {steps} steps; {ThreadClock.Description}; " +
                          $"load average {File.ReadAllText("/proc/loadavg").Split(' ')[0]}");
        Console.WriteLine($"sampled selection: {probe.Fallbacks} of {rounds * steps} steps fell back to the exact pass; " +
                          $"candidates median {Median(probe.Candidates):F0}");
        Console.WriteLine("| part | median µs | fastest µs | × gradient |");
        Console.WriteLine("| --- | ---: | ---: | ---: |");
        double gradient = Median(probe.Rows[0].Micros);
        foreach (var (name, micros) in probe.Rows)
            Console.WriteLine($"| {name} | {Median(micros):F1} | {micros.Min():F1} | {Median(micros) / gradient:F3} |");
        return 0;
    }

    /// <summary>One node's run: its model, its compressor, and copies of the state to time the parts on.</summary>
    private sealed class Probe
    {
        private readonly Model _model;
        private readonly SgdOptimizer _receiver, _entryReceiver;
        private readonly float[] _entryParameters, _clearShare;
        private readonly SparseVector[] _entries;
        private readonly SparseVector?[] _entryList;
        private readonly Dataset _train;
        private readonly float[] _parameters, _gradient, _features, _targets;
        private readonly float[] _accumulated, _velocity, _residual, _sent, _decoded;
        private readonly float[][] _shares;
        private readonly ReadOnlyMemory<float>[] _shareMemories;
        private readonly int[] _weights;
        private readonly int[] _indices, _candidates;
        private readonly uint[] _magnitudes;
        private uint _threshold = 0x7F80_0000;
        private readonly byte[] _payload;
        private readonly GradientCompressor _compressor;
        private readonly TopKSelector _exact = new(), _sampled;
        private readonly ShareEncoding _encoding;
        private int _next;

        public Probe(string data, double fraction, int peers, int sample)
        {
            _sampled = new TopKSelector(sample);
            _train = IdxReader.LoadDirectory(data, "train");
            PixelScaling.ApplyInPlace(_train);
            var spec = new ModelSpec(ModelKind.Mlp, 784, 10, [256, 128]);
            _model = new Model(spec, MatrixKernels.Create(1));
            Length = _model.ParameterCount;
            _parameters = new float[Length];
            _model.Initialize(_parameters, 1);
            _gradient = new float[Length];
            _features = new float[64 * spec.InputCount];
            _targets = new float[64];
            _encoding = new ShareEncoding(WirePrecision.Fp32, fraction);
            Kept = _encoding.KeptCount(Length);
            _compressor = new GradientCompressor(_encoding, Length, momentum: 0.9);
            _receiver = new SgdOptimizer(new SgdOptions(0.05), Length);
            _entryReceiver = new SgdOptimizer(new SgdOptions(0.05), Length);
            (_entryParameters, _clearShare) = (new float[Length], new float[Length]);
            _entries = Enumerable.Range(0, peers).Select(_ => new SparseVector(Length, Kept)).ToArray();
            _entryList = [.. _entries];
            (_accumulated, _velocity, _residual, _sent, _decoded) = (new float[Length], new float[Length], new float[Length], new float[Length], new float[Length]);
            _shares = Enumerable.Range(0, peers).Select(_ => new float[Length]).ToArray();
            _shareMemories = [.. _shares.Select(share => (ReadOnlyMemory<float>)share)];
            _weights = Enumerable.Repeat(64, peers).ToArray();
            _indices = new int[Kept];
            (_candidates, _magnitudes) = (new int[Length], new uint[Length]);
            _payload = new byte[(int)_encoding.MaxPayloadBytes(Length)];
            Rows = [.. new[]
            {
                "gradient (fwd + bwd, batch 64, 1 thread)", "sender: finiteness before 0134, float.IsFinite(Σg)", "sender: u ← m·u + g, a ← r + u",
                "sender: NaN check (HalfFloats.ThrowIfNaN)", "sender: selection, exact radix (3 passes)", "sender: selection, sampled threshold",
                "sender: the candidate pass alone (SIMD compare)",
                "sender: scatter (clear, k values, r, u masked)", "sender: GradientCompressor.Compress whole", "sender: ShareCodec.Encode",
                "receiver: ShareCodec.Decode, one share", "receiver: FiniteValues.All, one share", $"receiver: average of {peers} shares + step",
                "receiver 0141: DecodeEntries + scatter + clear, one share", $"receiver 0141: average of {peers} shares by entries + step",
            }.Select(name => (name, new List<double>()))];
        }

        public int Length { get; }

        public int Kept { get; }

        public List<(string Name, List<double> Micros)> Rows { get; }

        public int Fallbacks { get; private set; }

        public List<double> Candidates { get; } = [];

        public void Step(bool record)
        {
            if (_next + 64 > _train.Count)
                _next = 0;
            int[] order = Enumerable.Range(_next, 64).ToArray();
            _next += 64;
            BatchSampler.GatherBatch(_train, order, _features, _targets);
            var times = new List<double>();
            double t = ThreadClock.Now();
            void Lap()
            {
                double now = ThreadClock.Now();
                times.Add((now - t) * 1e6);
                t = now;
            }
            _model.LossAndGradient(_parameters, _features, _targets, 64, _gradient);
            Lap();

            // The sender's parts, on copies of the compressor's state (the production call below changes the state once).
            _compressor.Residual.CopyTo(_residual);
            _compressor.Velocity.CopyTo(_velocity);
            t = ThreadClock.Now();
            bool finite = float.IsFinite(TensorPrimitives.Sum(_gradient));
            Lap();
            TensorPrimitives.MultiplyAdd(_velocity, 0.9f, _gradient, _velocity);
            TensorPrimitives.Add(_residual, _velocity, _accumulated);
            Lap();
            HalfFloats.ThrowIfNaN(_accumulated);
            Lap();
            _exact.SelectExact(_accumulated, Kept, _indices);
            Lap();
            _sampled.Select(_accumulated, Kept, _indices);
            Lap();
            TopKSelector.CollectCandidates(_accumulated, _threshold, _candidates, _magnitudes, TopKSelector.Vectorized);
            Lap();
            _sent.AsSpan().Clear();
            foreach (int i in _indices)
            {
                _sent[i] = _accumulated[i];
                _residual[i] = 0;
                _velocity[i] = 0;
            }
            Lap();
            if (!finite || !_compressor.Compress(_gradient))
                throw new InvalidOperationException("the gradient is not finite: the run diverged");
            Lap();

            int bytes = ShareCodec.Encode(_encoding, _gradient, _payload, out int count);
            Lap();
            if (ShareCodec.Decode(_encoding, _payload.AsSpan(0, bytes), count, _decoded) is { } invalid)
                throw new InvalidOperationException(invalid);
            Lap();
            if (!FiniteValues.All(_decoded))
                throw new InvalidOperationException("a decoded share is not finite");
            Lap();
            foreach (var share in _shares)
                _gradient.CopyTo(share, 0);
            _parameters.CopyTo(_entryParameters, 0);
            t = ThreadClock.Now();
            _receiver.AverageAndStep(_parameters, _shareMemories, _weights);
            Lap();

            // Decision 0141: the receiver's work by entries, on the same shares and θ.
            if (ShareCodec.DecodeEntries(_encoding, _payload.AsSpan(0, bytes), count, _entries[0], out _) is { } refused)
                throw new InvalidOperationException(refused);
            _entries[0].ScatterInto(_clearShare);
            _entries[0].ClearIn(_clearShare);
            Lap();
            foreach (var entries in _entries[1..])
                ShareCodec.DecodeEntries(_encoding, _payload.AsSpan(0, bytes), count, entries, out _);
            t = ThreadClock.Now();
            _entryReceiver.AverageEntriesAndStep(_entryParameters, _entryList, _weights);
            Lap();
            if (!System.Runtime.InteropServices.MemoryMarshal.AsBytes(_parameters.AsSpan()).SequenceEqual(System.Runtime.InteropServices.MemoryMarshal.AsBytes(_entryParameters.AsSpan())))
                throw new InvalidOperationException("the average by entries differs from the dense average");

            if (_sampled.LastFellBack)
                Fallbacks += record ? 1 : 0;
            if (!record)
                return;
            Candidates.Add(_sampled.LastCandidates);
            // The next step's candidate pass alone compares with this step's k-th magnitude: about the sampled pass's work.
            _threshold = _indices.Min(i => BitConverter.SingleToUInt32Bits(MathF.Abs(_accumulated[i])));
            for (int i = 0; i < times.Count; i++)
                Rows[i].Micros.Add(times[i]);
        }
    }

    private static double Median(IReadOnlyList<double> values)
    {
        var sorted = values.ToArray();
        Array.Sort(sorted);
        return sorted.Length == 0 ? 0 : sorted[sorted.Length / 2];
    }
}
