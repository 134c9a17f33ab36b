using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using DistSgd.Numerics.Data;

namespace DistSgd.Numerics.Models;

/// <summary>A trained model as saved on disk: its architecture, θ, and the input transform it was trained with.</summary>
public sealed record SavedModel(ModelSpec Spec, float[] Parameters, FeatureTransform Transform);

/// <summary>
/// The model file: a small binary format with a SHA-256 checksum, written atomically (temporary file,
/// fsync, rename) so a crash never leaves a half-written model where a good one was.
/// </summary>
/// <remarks>
/// Layout, little-endian: "DSGDMODL", int32 version, byte kind, byte activation, int32 inputs,
/// int32 classes, int32 hidden-layer count, int32[] hidden sizes, float32 pixel maximum, byte has-statistics,
/// [int32 n, float32[n] mean, float32[n] std], int32 parameter count, float32[] θ, then 32 bytes of
/// SHA-256 over everything before it. Nothing time-dependent is stored: the same θ gives the same bytes.
/// </remarks>
public static class ModelFile
{
    private static readonly byte[] Magic = "DSGDMODL"u8.ToArray();
    private const int Version = 1;

    public static void Save(string path, SavedModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (model.Parameters.Length != model.Spec.ParameterCount)
            throw new ArgumentException($"{model.Spec} has {model.Spec.ParameterCount} parameters, the buffer holds {model.Parameters.Length}");
        // A diverged θ never replaces a good model file.
        int nonFinite = Array.FindIndex(model.Parameters, v => !float.IsFinite(v));
        if (nonFinite >= 0)
            throw new ArgumentException($"θ[{nonFinite}] is {model.Parameters[nonFinite]}: a model with non-finite parameters is not saved to {path}");
        AtomicFile.Write(path, Serialize(model));
    }

    public static byte[] Serialize(SavedModel model)
    {
        using var buffer = new MemoryStream();
        using (var writer = new BinaryWriter(buffer, Encoding.UTF8, leaveOpen: true))
        {
            writer.Write(Magic);
            writer.Write(Version);
            var spec = model.Spec;
            writer.Write((byte)spec.Kind);
            writer.Write((byte)spec.Activation);
            writer.Write(spec.InputCount);
            writer.Write(spec.ClassCount);
            writer.Write(spec.HiddenSizes.Count);
            foreach (int size in spec.HiddenSizes)
                writer.Write(size);
            var transform = model.Transform;
            writer.Write(transform.PixelMax);
            writer.Write(transform.Standardizer is not null);
            if (transform.Standardizer is { } standardizer)
            {
                writer.Write(standardizer.FeatureCount);
                writer.Write(MemoryMarshal.AsBytes(standardizer.Mean.AsSpan()));
                writer.Write(MemoryMarshal.AsBytes(standardizer.Std.AsSpan()));
            }
            writer.Write(model.Parameters.Length);
            writer.Write(MemoryMarshal.AsBytes(model.Parameters.AsSpan()));
        }
        return ChecksummedFile.Seal(buffer);
    }

    /// <summary>Reads a model file; throws <see cref="DataFormatException"/> naming the file and the problem.</summary>
    public static SavedModel Load(string path) => Deserialize(ChecksummedFile.ReadAll(path, "model file"), path);

    public static SavedModel Deserialize(byte[] bytes, string path)
    {
        var body = ChecksummedFile.Verify(bytes, Magic, path, "model file");
        using var reader = new BinaryReader(new MemoryStream(bytes, 0, body.Length, writable: false));
        try
        {
            reader.ReadBytes(Magic.Length);
            int version = reader.ReadInt32();
            if (version != Version)
                throw new DataFormatException(path, $"model file version {version} is not supported (this build reads version {Version})");
            var kind = (ModelKind)reader.ReadByte();
            var activation = (Activation)reader.ReadByte();
            if (!Enum.IsDefined(kind) || !Enum.IsDefined(activation))
                throw new DataFormatException(path, $"unknown model kind {(int)kind} or activation {(int)activation}");
            int inputs = reader.ReadInt32();
            int classes = reader.ReadInt32();
            int hiddenCount = ChecksummedFile.ReadCount(reader, path, "hidden-layer count", 1_000);
            var hidden = new int[hiddenCount];
            for (int i = 0; i < hidden.Length; i++)
                hidden[i] = reader.ReadInt32();
            var spec = new ModelSpec(kind, inputs, classes, hidden, activation);

            float pixelMax = reader.ReadSingle();
            Standardizer? standardizer = null;
            if (reader.ReadBoolean())
            {
                int n = ChecksummedFile.ReadCount(reader, path, "statistics length", body.Length / 8);
                standardizer = new Standardizer(ChecksummedFile.ReadFloats(reader, n), ChecksummedFile.ReadFloats(reader, n));
            }
            int count = ChecksummedFile.ReadCount(reader, path, "parameter count", body.Length / 4);
            if (count != spec.ParameterCount)
                throw new DataFormatException(path, $"{spec} has {spec.ParameterCount} parameters, the file holds {count}");
            var parameters = ChecksummedFile.ReadFloats(reader, count);
            int nonFinite = Array.FindIndex(parameters, v => !float.IsFinite(v));
            if (nonFinite >= 0)
                throw new DataFormatException(path, $"θ[{nonFinite}] is {parameters[nonFinite]}; expected finite parameters (the run that wrote this file diverged)");
            if (reader.BaseStream.Position != body.Length)
                throw new DataFormatException(path, $"{body.Length - reader.BaseStream.Position} unexpected bytes after the parameters");
            return new SavedModel(spec, parameters, new FeatureTransform(pixelMax, standardizer));
        }
        catch (Exception e) when (e is EndOfStreamException or ArgumentException)
        {
            throw new DataFormatException(path, $"invalid model file: {e.Message}", inner: e);
        }
    }
}

/// <summary>
/// The frame of DistSgd's binary files (model, checkpoint): an 8-byte magic, the body, then 32 bytes of SHA-256
/// over everything before them; and the bounded reads every reader of such a body uses.
/// </summary>
internal static class ChecksummedFile
{
    public const int ChecksumLength = 32;

    /// <summary>The whole file; a file that cannot be read is a <see cref="DataFormatException"/> naming it.</summary>
    public static byte[] ReadAll(string path, string what)
    {
        if (Directory.Exists(path))
            throw new DataFormatException(path, $"expected a {what}, found a directory");
        try
        {
            return File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DataFormatException(path, $"cannot read the {what}: {e.Message}", inner: e);
        }
    }

    /// <summary>Appends the SHA-256 of the buffer's contents and returns the whole file.</summary>
    public static byte[] Seal(MemoryStream buffer) => SealInPlace(buffer).ToArray();

    /// <summary>Appends the SHA-256 of the buffer's contents and returns the whole file as a view of the buffer (no copy).</summary>
    public static ReadOnlySpan<byte> SealInPlace(MemoryStream buffer)
    {
        Span<byte> checksum = stackalloc byte[ChecksumLength];
        SHA256.HashData(buffer.GetBuffer().AsSpan(0, (int)buffer.Length), checksum);
        buffer.Write(checksum);
        return buffer.GetBuffer().AsSpan(0, (int)buffer.Length);
    }

    /// <summary>Checks the magic and the checksum; returns the body (everything before the checksum).</summary>
    public static ReadOnlySpan<byte> Verify(byte[] bytes, ReadOnlySpan<byte> magic, string path, string what)
    {
        if (bytes.Length < magic.Length || !bytes.AsSpan(0, magic.Length).SequenceEqual(magic))
            throw new DataFormatException(path, $"not a DistSgd {what} (it does not start with \"{Encoding.ASCII.GetString(magic)}\")");
        if (bytes.Length < magic.Length + 4 + ChecksumLength)
            throw new DataFormatException(path, $"the {what} is {bytes.Length} bytes long, too short to hold a header and a checksum: it is truncated");
        var body = bytes.AsSpan(0, bytes.Length - ChecksumLength);
        if (!SHA256.HashData(body).AsSpan().SequenceEqual(bytes.AsSpan(bytes.Length - ChecksumLength)))
            throw new DataFormatException(path, $"the checksum does not match: the {what} is corrupted or truncated");
        return body;
    }

    /// <summary>Reads an int32 count and checks it against <paramref name="limit"/> before anything is allocated.</summary>
    public static int ReadCount(BinaryReader reader, string path, string what, long limit)
    {
        int value = reader.ReadInt32();
        if (value < 0 || value > limit)
            throw new DataFormatException(path, $"the {what} is {value}; expected 0 to {limit}");
        return value;
    }

    public static float[] ReadFloats(BinaryReader reader, int count)
    {
        var values = new float[count];
        reader.BaseStream.ReadExactly(MemoryMarshal.AsBytes(values.AsSpan()));
        return values;
    }
}

/// <summary>Writes files so that readers see the old contents or the new, never a mix.</summary>
public static class AtomicFile
{
    /// <summary>Writes to a temporary file beside <paramref name="path"/>, fsyncs it, then renames it over the target.</summary>
    public static void Write(string path, ReadOnlySpan<byte> contents)
    {
        string full = Path.GetFullPath(path);
        string directory = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(directory);
        string temporary = Path.Combine(directory, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                stream.Write(contents);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temporary, full, overwrite: true);
        }
        catch
        {
            File.Delete(temporary);
            throw;
        }
    }
}
