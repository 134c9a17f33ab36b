using System.Net.Sockets;
using DistSgd.Actors.Transport;

namespace DistSgd.Actors.Tests.Transport;

/// <summary>The client side of the <see cref="DataPlaneHandshake"/> done by hand, for tests that then write raw frames.</summary>
internal static class HandshakeClient
{
    /// <summary>Reads exactly <paramref name="count"/> bytes (fails the test when the peer closes first).</summary>
    public static byte[] ReadExactly(Stream stream, int count)
    {
        var bytes = new byte[count];
        stream.ReadExactly(bytes);
        return bytes;
    }

    /// <summary>The server's hello on a fresh connection.</summary>
    public static byte[] Hello(Stream stream) => ReadExactly(stream, DataPlaneHandshake.HelloSize);

    /// <summary>An answer to <paramref name="hello"/> claiming <paramref name="node"/> under <paramref name="key"/>.</summary>
    public static byte[] Answer(byte[] hello, string runId, int node, byte[] key)
    {
        var answer = new byte[DataPlaneHandshake.AnswerSize];
        DataPlaneHandshake.WriteAnswer(answer, key, FrameHeader.HashRunId(runId), node, DataPlaneHandshake.NonceOf(hello),
                                       DataPlaneHandshake.NewRandom(DataPlaneHandshake.NonceSize));
        return answer;
    }

    /// <summary>
    /// Proves <paramref name="node"/> on <paramref name="stream"/> and checks the server's proof against <paramref name="serverKey"/>;
    /// returns the key of the connection's frame records (used when TLS is on).
    /// </summary>
    public static byte[] Prove(Stream stream, string runId, int node, byte[] key, byte[] serverKey)
    {
        var hello = Hello(stream);
        Assert.Null(DataPlaneHandshake.CheckHello(hello, FrameHeader.HashRunId(runId)));
        var answer = Answer(hello, runId, node, key);
        stream.Write(answer);
        var proof = ReadExactly(stream, DataPlaneHandshake.ProofSize);
        Assert.True(DataPlaneHandshake.CheckProof(proof, serverKey, FrameHeader.HashRunId(runId), answer, DataPlaneHandshake.NonceOf(hello)),
                    "the server's proof does not match its key");
        return DataPlaneRecords.DeriveKey(key, serverKey, FrameHeader.HashRunId(runId), node, DataPlaneHandshake.NonceOf(hello),
                                          answer.AsSpan(16, DataPlaneHandshake.NonceSize), RecordDirection.ClientToServer);
    }

    /// <summary><see cref="Prove(Stream, string, int, byte[], byte[])"/> on a plain socket.</summary>
    public static void Prove(Socket socket, string runId, int node, byte[] key, byte[] serverKey)
    {
        using var stream = new NetworkStream(socket, ownsSocket: false);
        Prove(stream, runId, node, key, serverKey);
    }
}
