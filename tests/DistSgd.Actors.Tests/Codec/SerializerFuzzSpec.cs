using System.Runtime.Serialization;
using DistSgd.Actors.Codec;
using DistSgd.Actors.Protocol;
using DistSgd.Tests.Fuzz;

namespace DistSgd.Actors.Tests.Codec;

/// <summary>
/// Random and mutated bytes under every manifest of <see cref="DistSgdSerializer"/>, a third of a second each,
/// seeded: a payload deserializes or fails with a <see cref="SerializationException"/> (which Akka turns into a
/// dropped message on a kept connection), never anything else, never a hang, and never an allocation sized by a
/// hostile length field rather than by the bytes that arrived.
/// </summary>
public class SerializerFuzzSpec : Akka.TestKit.Xunit2.TestKit
{
    private static readonly TimeSpan Budget = TimeSpan.FromMilliseconds(300);

    public SerializerFuzzSpec() : base(TestConfig.Node(), "serializer-fuzz")
    {
    }

    public static TheoryData<string> MessageNames => DistSgdSerializerSpec.MessageNames;

    [Theory]
    [MemberData(nameof(MessageNames))]
    public void Mutated_payloads_deserialize_or_fail_with_a_serialization_exception(string name)
    {
        var message = DistSgdSerializerSpec.Messages(TestActor)[name];
        var serializer = (DistSgdSerializer)Sys.Serialization.FindSerializerFor(message);
        string manifest = serializer.Manifest(message);
        byte[] good = serializer.ToBinary(message);

        var report = Fuzzer.Run(seed: manifest[0] * 31 + manifest[1], Budget, [good],
                                bytes => serializer.FromBinary(bytes, manifest), typeof(SerializationException),
                                // Actor paths resolve through Akka (a few KB); vectors are copied once from the payload.
                                n => (256L << 10) + 16L * n);

        Assert.True(report.Accepted > 0, $"{name}: {report}");
        Assert.True(report.Refused > 0, $"{name}: {report}");
    }

    [Fact]
    public void Random_bytes_under_an_unknown_or_empty_manifest_fail_with_a_serialization_exception()
    {
        var serializer = (DistSgdSerializer)Sys.Serialization.FindSerializerFor(new DistSgd.Actors.Centralized.RunEnded("r"));
        var report = Fuzzer.Run(seed: 99, Budget, [[], [1, 2, 3]], bytes => serializer.FromBinary(bytes, "ZZ"),
                                typeof(SerializationException), n => (64L << 10) + 16L * n);
        Assert.Equal(0, report.Accepted);
    }

    /// <summary>Thrown by nothing: a target that must not throw at all is checked against it.</summary>
    private sealed class NothingIsDocumented : Exception;

    [Fact]
    public void Mutated_data_plane_headers_are_refused_without_an_exception()
    {
        var good = new byte[DistSgd.Actors.Transport.FrameHeader.Size];
        new DistSgd.Actors.Transport.FrameHeader(DistSgd.Actors.Transport.FrameKind.GradientReply, 42, 7, 1, 2, 3, 64, 1.5, 0.01, 9).Write(good);
        var report = Fuzzer.Run(seed: 64, Budget, [good], bytes =>
        {
            // The reader takes exactly one header's bytes off the socket; shorter or longer inputs are cut or padded.
            var header = new byte[DistSgd.Actors.Transport.FrameHeader.Size];
            bytes.AsSpan(0, Math.Min(bytes.Length, header.Length)).CopyTo(header);
            if (DistSgd.Actors.Transport.FrameHeader.Read(header) is null)
                throw new NothingIsDocumented();
        }, typeof(NothingIsDocumented), n => 64L << 10);
        Assert.True(report.Accepted > 0 && report.Refused > 0, $"{report}");
    }
}
