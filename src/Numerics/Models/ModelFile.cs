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
    private const int ChecksumLength = 32;

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
        var checksum = SHA256.HashData(buffer.GetBuffer().AsSpan(0, (int)buffer.Length));
        buffer.Write(checksum);
        return buffer.ToArray();
    }

    /// <summary>Reads a model file; throws <see cref="DataFormatException"/> naming the file and the problem.</summary>
    public static SavedModel Load(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DataFormatException(path, $"cannot read the model file: {e.Message}", inner: e);
        }
        return Deserialize(bytes, path);
    }

    public static SavedModel Deserialize(byte[] bytes, string path)
    {
        if (bytes.Length < Magic.Length + 4 + ChecksumLength || !bytes.AsSpan(0, Magic.Length).SequenceEqual(Magic))
            throw new DataFormatException(path, "not a DistSgd model file (it does not start with \"DSGDMODL\")");
        var body = bytes.AsSpan(0, bytes.Length - ChecksumLength);
        if (!SHA256.HashData(body).AsSpan().SequenceEqual(bytes.AsSpan(bytes.Length - ChecksumLength)))
            throw new DataFormatException(path, "the checksum does not match: the model file is corrupted or truncated");

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
            int hiddenCount = ReadCount(reader, path, "hidden-layer count", 1_000);
            var hidden = new int[hiddenCount];
            for (int i = 0; i < hidden.Length; i++)
                hidden[i] = reader.ReadInt32();
            var spec = new ModelSpec(kind, inputs, classes, hidden, activation);

            float pixelMax = reader.ReadSingle();
            Standardizer? standardizer = null;
            if (reader.ReadBoolean())
            {
                int n = ReadCount(reader, path, "statistics length", body.Length / 8);
                standardizer = new Standardizer(ReadFloats(reader, n), ReadFloats(reader, n));
            }
            int count = ReadCount(reader, path, "parameter count", body.Length / 4);
            if (count != spec.ParameterCount)
                throw new DataFormatException(path, $"{spec} has {spec.ParameterCount} parameters, the file holds {count}");
            var parameters = ReadFloats(reader, count);
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

    private static int ReadCount(BinaryReader reader, string path, string what, int limit)
    {
        int value = reader.ReadInt32();
        if (value < 0 || value > limit)
            throw new DataFormatException(path, $"the {what} is {value}; expected 0 to {limit}");
        return value;
    }

    private static float[] ReadFloats(BinaryReader reader, int count)
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
