using System.Globalization;

namespace DistSgd.Numerics.Compression;

/// <summary>
/// How a gradient share travels: its values' <see cref="WirePrecision"/> and, when <see cref="KeptFraction"/> &lt; 1,
/// only its top-k values as (index, value) entries (distsgd.wire and distsgd.compress; <c>--wire</c>, <c>--compress</c>).
/// </summary>
/// <param name="Fp16Scale">The power of two an fp16 share is multiplied by before conversion and divided by after
/// (a static loss scale: gradients of a mean loss are small, and binary16 underflows below 6·10⁻⁸).</param>
/// <param name="MomentumCorrection">Sparse only: each sender applies the optimizer's momentum to its own gradients and
/// top-k's its accumulated velocity, and the receivers step without momentum (Deep Gradient Compression's momentum
/// correction and momentum factor masking, <see cref="GradientCompressor"/>): "topk:F". False ("topk-ef:F"): error
/// feedback on the gradients, the receivers' optimizer applies the momentum to the sparse average.</param>
public sealed record ShareEncoding(WirePrecision Precision, double KeptFraction = 1, float Fp16Scale = ShareEncoding.DefaultFp16Scale,
                                   bool MomentumCorrection = true)
{
    /// <summary>distsgd.compress's name of top-k with momentum correction (the default top-k).</summary>
    public const string TopK = "topk";

    /// <summary>distsgd.compress's name of top-k with error feedback alone, the momentum applied by the receivers.</summary>
    public const string TopKErrorFeedback = "topk-ef";

    /// <summary>2¹⁰: binary16 then spans 6·10⁻¹¹ … 64 for the gradient, where a mean loss's gradients live.</summary>
    public const float DefaultFp16Scale = 1024f;

    /// <summary>Today's wire: every value as float32.</summary>
    public static readonly ShareEncoding Fp32 = new(WirePrecision.Fp32);

    /// <summary>Only the top-k values travel (with error feedback at the sender).</summary>
    public bool IsSparse => KeptFraction < 1;

    /// <summary>The share travels exactly as computed (dense float32): nothing to encode.</summary>
    public bool IsIdentity => Precision == WirePrecision.Fp32 && !IsSparse;

    /// <summary>
    /// This precision, every value: how the centralized master's updates of θ travel (decision 0088: top-k of an update
    /// that momentum makes dense cost 6.6 points in 3 epochs) and an all-reduce's parts (decision 0090).
    /// </summary>
    public ShareEncoding Dense => IsSparse ? this with { KeptFraction = 1, MomentumCorrection = true } : this;

    /// <summary>
    /// values ← what this precision delivers, in place (bf16: round to nearest even; fp16: x·s rounded, saturated, then
    /// ÷s; float32: unchanged). Idempotent. Throws naming the index when a value is NaN (it has no encoding).
    /// </summary>
    public void Round(Span<float> values)
    {
        switch (Precision)
        {
            case WirePrecision.Bf16:
                HalfFloats.RoundToBf16(values);
                break;
            case WirePrecision.Fp16:
                HalfFloats.RoundToFp16(values, Fp16Scale);
                break;
        }
    }

    /// <summary>The encoding's number in a data-plane frame: precision + 3 when sparse (0: dense float32).</summary>
    public byte Id => (byte)((int)Precision + (IsSparse ? 3 : 0));

    /// <summary>The largest <see cref="Id"/>.</summary>
    public const byte LargestId = 5;

    /// <summary>Payload bytes of a frame of encoding <paramref name="id"/> (<see cref="Id"/>) with <paramref name="count"/> values or entries.</summary>
    public static long PayloadBytes(byte id, int count) => (long)count * ((id % 3 == 0 ? 4 : 2) + (id >= 3 ? 4 : 0));

    /// <summary>Bytes per value on the wire.</summary>
    public int ValueBytes => Precision == WirePrecision.Fp32 ? 4 : 2;

    /// <summary>Bytes per sparse entry: a 32-bit index and the value.</summary>
    public int EntryBytes => 4 + ValueBytes;

    /// <summary>How many values a share of <paramref name="length"/> values keeps (all when dense).</summary>
    public int KeptCount(int length) => IsSparse ? TopKSelector.KeptCount(length, KeptFraction) : length;

    /// <summary>Payload bytes of a frame with <paramref name="count"/> values (dense) or entries (sparse).</summary>
    public long PayloadBytes(int count) => (long)count * (IsSparse ? EntryBytes : ValueBytes);

    /// <summary>The largest payload of a share of <paramref name="length"/> values.</summary>
    public long MaxPayloadBytes(int length) => PayloadBytes(KeptCount(length));

    /// <summary>The name of a precision as users write it.</summary>
    public static string Name(WirePrecision precision) => precision.ToString().ToLowerInvariant();

    /// <summary>"fp32", "bf16, topk:0.01", …: as users write the two settings.</summary>
    public override string ToString() =>
        Name(Precision) + (IsSparse ? $", {CompressName}" : "") + (Precision == WirePrecision.Fp16 && Fp16Scale != DefaultFp16Scale
            ? $", fp16 scale {Fp16Scale.ToString(CultureInfo.InvariantCulture)}" : "");

    /// <summary>distsgd.compress as users write it: "none", "topk:F" or "topk-ef:F".</summary>
    public string CompressName =>
        IsSparse ? $"{(MomentumCorrection ? TopK : TopKErrorFeedback)}:{KeptFraction.ToString("R", CultureInfo.InvariantCulture)}" : "none";

    /// <summary>
    /// Whether the senders apply the momentum (<see cref="MomentumCorrection"/>) in a run that averages gradients every
    /// step: local SGD (<paramref name="syncEvery"/> &gt; 1) sends model changes, whose optimizer already stepped.
    /// </summary>
    public bool SendersApplyMomentum(int syncEvery) => IsSparse && MomentumCorrection && syncEvery <= 1;

    /// <summary>The momentum a sender's <see cref="GradientCompressor"/> applies: the run's when <see cref="SendersApplyMomentum"/>, else 0.</summary>
    public double SenderMomentum(double momentum, int syncEvery) => SendersApplyMomentum(syncEvery) ? momentum : 0;

    /// <summary>
    /// The options of the optimizer that applies the averaged shares (the master's, every peer's replica): the run's,
    /// without momentum when the senders apply it (<see cref="SendersApplyMomentum"/>).
    /// </summary>
    public Optim.SgdOptions ReceiverOptions(Optim.SgdOptions options, int syncEvery) =>
        SendersApplyMomentum(syncEvery) && options.Momentum > 0
            ? new Optim.SgdOptions(options.LearningRate, 0, options.WeightDecay, schedule: options.Schedule)
            : options;

    /// <summary>
    /// The run's hyper-parameters that say this encoding ("wire=bf16", "compress=topk:0.01", "fp16-scale=…"), only those
    /// that differ from the dense float32 default: a default run's description stays what it was.
    /// </summary>
    public IEnumerable<string> Keys()
    {
        if (Precision != WirePrecision.Fp32)
            yield return $"wire={Name(Precision)}";
        if (IsSparse)
            yield return $"compress={CompressName}";
        if (Precision == WirePrecision.Fp16)
            yield return $"fp16-scale={Fp16Scale.ToString("R", CultureInfo.InvariantCulture)}";
    }

    /// <summary>
    /// The encoding that "key=value;…" hyper-parameters (<see cref="Keys"/>) describe; dense float32 when they name none.
    /// Throws <see cref="FormatException"/> naming the key when a value is not one.
    /// </summary>
    public static ShareEncoding FromKeys(string hyperparameters)
    {
        var precision = WirePrecision.Fp32;
        (double Kept, bool Corrected) compress = (1, true);
        float scale = DefaultFp16Scale;
        foreach (string pair in hyperparameters.Split(';', StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = pair.IndexOf('=');
            if (eq < 0)
                continue;
            string key = pair[..eq], value = pair[(eq + 1)..];
            string? error = null;
            switch (key)
            {
                case "wire":
                    precision = ParsePrecision(value, out error) ?? precision;
                    break;
                case "compress":
                    compress = ParseCompress(value, out error) ?? compress;
                    break;
                case "fp16-scale":
                    if (!float.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out scale) || !HalfFloats.IsScale(scale))
                        error = $"'{value}' is not an fp16 scale: expected a power of two from 2^-24 to 2^24";
                    break;
            }
            if (error is not null)
                throw new FormatException($"{key}: {error}");
        }
        return new ShareEncoding(precision, compress.Kept, scale, compress.Corrected);
    }

    /// <summary>Parses distsgd.wire ("fp32", "bf16", "fp16"); null with <paramref name="error"/> saying what was expected.</summary>
    public static WirePrecision? ParsePrecision(string text, out string? error)
    {
        error = null;
        foreach (var precision in Enum.GetValues<WirePrecision>())
            if (string.Equals(text.Trim(), Name(precision), StringComparison.OrdinalIgnoreCase))
                return precision;
        error = $"'{text}' is not a wire format: expected fp32, bf16 or fp16";
        return null;
    }

    /// <summary>
    /// Parses distsgd.compress: "none" (1: dense), "topk:F" (<see cref="MomentumCorrection"/>) or "topk-ef:F" (error
    /// feedback alone) with 0 &lt; F ≤ 1 the fraction kept; null with <paramref name="error"/> saying what was expected.
    /// </summary>
    public static (double Kept, bool MomentumCorrection)? ParseCompress(string text, out string? error)
    {
        error = null;
        string t = text.Trim();
        if (t.Equals("none", StringComparison.OrdinalIgnoreCase))
            return (1, true);
        int colon = t.IndexOf(':');
        string name = colon < 0 ? "" : t[..colon];
        bool corrected = name.Equals(TopK, StringComparison.OrdinalIgnoreCase);
        if ((corrected || name.Equals(TopKErrorFeedback, StringComparison.OrdinalIgnoreCase))
            && double.TryParse(t[(colon + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out double fraction)
            && fraction > 0 && fraction <= 1)
            return (fraction, corrected);
        error = $"'{text}' is not a compression: expected none, topk:F or topk-ef:F with F the fraction of values kept, 0 < F <= 1 (e.g. topk:0.01)";
        return null;
    }
}
