using DistSgd.Numerics.Data;
using DistSgd.Numerics.Models;
using DistSgd.Numerics.Tensors;

namespace DistSgd.Numerics.Tests.Models;

public sealed class ModelFileTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("distsgd-modelfile-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static SavedModel Sample()
    {
        var spec = new ModelSpec(ModelKind.Mlp, 6, 3, [5, 4], Activation.Tanh);
        var theta = new float[spec.ParameterCount];
        new Model(spec, NaiveKernels.Instance).Initialize(theta, 9);
        var transform = new FeatureTransform(255f, new Standardizer([1, 2, 3, 4, 5, 6], [1, 1, 2, 2, 3, 3]));
        return new SavedModel(spec, theta, transform);
    }

    [Fact]
    public void Save_then_load_gives_identical_parameters_spec_and_transform()
    {
        var saved = Sample();
        string path = Path.Combine(_directory, "model.bin");
        ModelFile.Save(path, saved);
        var loaded = ModelFile.Load(path);
        Assert.Equal(saved.Spec, loaded.Spec);
        Assert.Equal(saved.Parameters, loaded.Parameters);
        Assert.Equal(saved.Transform.PixelMax, loaded.Transform.PixelMax);
        Assert.Equal(saved.Transform.Standardizer!.Mean, loaded.Transform.Standardizer!.Mean);
        Assert.Equal(saved.Transform.Standardizer.Std, loaded.Transform.Standardizer.Std);
        Assert.Empty(Directory.GetFiles(_directory, "*.tmp"));
    }

    [Fact]
    public void The_same_model_gives_the_same_bytes()
    {
        Assert.Equal(ModelFile.Serialize(Sample()), ModelFile.Serialize(Sample()));
    }

    [Fact]
    public void A_flipped_byte_is_detected_by_the_checksum()
    {
        var bytes = ModelFile.Serialize(Sample());
        bytes[bytes.Length / 2] ^= 0x40;
        var error = Assert.Throws<DataFormatException>(() => ModelFile.Deserialize(bytes, "m.bin"));
        Assert.Contains("m.bin", error.Message);
        Assert.Contains("checksum", error.Message);
    }

    [Fact]
    public void A_truncated_file_is_refused_and_named()
    {
        string path = Path.Combine(_directory, "short.bin");
        File.WriteAllBytes(path, ModelFile.Serialize(Sample())[..100]);
        var error = Assert.Throws<DataFormatException>(() => ModelFile.Load(path));
        Assert.Contains(path, error.Message);
    }

    [Fact]
    public void A_file_that_is_not_a_model_is_refused()
    {
        string path = Path.Combine(_directory, "other.bin");
        File.WriteAllText(path, "label,pixel1\n1,2\n" + new string('x', 100));
        var error = Assert.Throws<DataFormatException>(() => ModelFile.Load(path));
        Assert.Contains("not a DistSgd model file", error.Message);
    }

    [Fact]
    public void Saving_over_an_existing_model_replaces_it_whole()
    {
        string path = Path.Combine(_directory, "model.bin");
        File.WriteAllText(path, "old");
        var saved = Sample();
        ModelFile.Save(path, saved);
        Assert.Equal(ModelFile.Serialize(saved), File.ReadAllBytes(path));
    }
}
