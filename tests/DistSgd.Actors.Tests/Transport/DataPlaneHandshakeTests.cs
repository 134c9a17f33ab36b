using System.Buffers.Binary;
using DistSgd.Actors.Transport;

namespace DistSgd.Actors.Tests.Transport;

/// <summary>The handshake's pure parts: what proves a node, and what each forged, replayed or foreign answer is judged.</summary>
public sealed class DataPlaneHandshakeTests
{
    private static readonly ulong Run = FrameHeader.HashRunId("run");
    private static readonly byte[] Key0 = DataPlaneHandshake.NewRandom();
    private static readonly byte[] Key1 = DataPlaneHandshake.NewRandom();
    private static readonly byte[] ServerNonce = DataPlaneHandshake.NewRandom(DataPlaneHandshake.NonceSize);

    private static byte[] Answer(int node, byte[] key, ulong run = 0, byte[]? serverNonce = null)
    {
        var answer = new byte[DataPlaneHandshake.AnswerSize];
        DataPlaneHandshake.WriteAnswer(answer, key, run == 0 ? Run : run, node, serverNonce ?? ServerNonce, DataPlaneHandshake.NewRandom(DataPlaneHandshake.NonceSize));
        return answer;
    }

    private static ConnectionRefusal? Judge(byte[] answer, byte[]? key) => DataPlaneHandshake.JudgeAnswer(answer, Run, senderCount: 2, ServerNonce, key);

    [Fact]
    public void An_answer_under_the_key_advertised_for_its_node_proves_that_node()
    {
        var answer = Answer(1, Key1);
        Assert.Null(Judge(answer, Key1));
        Assert.Equal(1, DataPlaneHandshake.ClaimedNode(answer));
    }

    [Fact]
    public void An_answer_under_another_key_is_a_bad_proof()
    {
        Assert.Equal(ConnectionRefusal.BadProof, Judge(Answer(1, Key0), Key1));
        Assert.Equal(ConnectionRefusal.BadProof, Judge(Answer(1, DataPlaneHandshake.NewRandom()), Key1));
    }

    [Fact]
    public void An_answer_recorded_for_another_server_nonce_is_a_bad_proof()
    {
        var recorded = Answer(1, Key1, serverNonce: DataPlaneHandshake.NewRandom(DataPlaneHandshake.NonceSize));
        Assert.Equal(ConnectionRefusal.BadProof, Judge(recorded, Key1));
    }

    [Fact]
    public void A_genuine_answer_relabelled_with_another_node_index_is_a_bad_proof()
    {
        var answer = Answer(0, Key0);
        BinaryPrimitives.WriteInt32LittleEndian(answer.AsSpan(12), 1);   // the MAC covers the index
        Assert.Equal(ConnectionRefusal.BadProof, Judge(answer, Key1));
        Assert.Equal(ConnectionRefusal.BadProof, Judge(answer, Key0));
    }

    [Fact]
    public void An_index_out_of_range_or_without_a_known_key_is_an_unknown_node()
    {
        Assert.Equal(ConnectionRefusal.UnknownNode, Judge(Answer(2, Key0), Key0));
        Assert.Equal(ConnectionRefusal.UnknownNode, Judge(Answer(-1, Key0), Key0));
        Assert.Equal(ConnectionRefusal.UnknownNode, Judge(Answer(1, Key1), null));
    }

    [Fact]
    public void An_answer_of_another_run_is_refused_as_wrong_run()
    {
        Assert.Equal(ConnectionRefusal.WrongRun, Judge(Answer(1, Key1, run: FrameHeader.HashRunId("another run")), Key1));
    }

    [Fact]
    public void A_data_frame_or_garbage_instead_of_an_answer_is_told_apart_by_its_first_four_bytes()
    {
        var frame = new byte[FrameHeader.Size];
        new FrameHeader(FrameKind.GradientReply, Run, 1, 0, 1, 0, 8, 1, 0, 0).Write(frame);
        Assert.Equal(ConnectionRefusal.FrameBeforeHandshake, DataPlaneHandshake.JudgeOpening(frame));
        Assert.Equal(ConnectionRefusal.Garbage, DataPlaneHandshake.JudgeOpening([0x47, 0x45, 0x54, 0x20]));   // "GET "
        Assert.Null(DataPlaneHandshake.JudgeOpening(Answer(0, Key0)));
        var garbage = DataPlaneHandshake.NewRandom(DataPlaneHandshake.AnswerSize);
        garbage[0] = 0;
        Assert.Equal(ConnectionRefusal.Garbage, Judge(garbage, Key0));
    }

    [Fact]
    public void The_server_proves_its_own_key_and_a_clients_mac_never_passes_for_a_servers()
    {
        var answer = Answer(1, Key1);
        var proof = DataPlaneHandshake.Proof(Key0, Run, answer, ServerNonce);
        Assert.True(DataPlaneHandshake.CheckProof(proof, Key0, Run, answer, ServerNonce));
        Assert.False(DataPlaneHandshake.CheckProof(proof, Key1, Run, answer, ServerNonce));
        // Reflection: the client's own MAC (same key, same nonces) is not the server's proof under that key.
        Assert.False(DataPlaneHandshake.CheckProof(answer.AsSpan(16 + DataPlaneHandshake.NonceSize), Key1, Run, answer, ServerNonce));
    }

    [Fact]
    public void A_client_answers_only_a_hello_of_its_own_run()
    {
        var hello = new byte[DataPlaneHandshake.HelloSize];
        DataPlaneHandshake.WriteHello(hello, Run, ServerNonce);
        Assert.Null(DataPlaneHandshake.CheckHello(hello, Run));
        Assert.Equal(ServerNonce, DataPlaneHandshake.NonceOf(hello).ToArray());
        Assert.Contains("serves another run", DataPlaneHandshake.CheckHello(hello, FrameHeader.HashRunId("other")));
        Assert.Contains("did not open a DistSgd data-plane handshake", DataPlaneHandshake.CheckHello(new byte[DataPlaneHandshake.HelloSize], Run));
    }

    [Fact]
    public void Every_refusal_has_its_own_name_and_every_key_its_size()
    {
        var names = Enum.GetValues<ConnectionRefusal>().Select(DataPlaneHandshake.Name).ToList();
        Assert.Equal(names.Count, names.Distinct().Count());
        Assert.All(names, n => Assert.StartsWith("refused_", n));
        Assert.True(DataPlaneHandshake.IsKey(Key0));
        Assert.False(DataPlaneHandshake.IsKey(null));
        Assert.False(DataPlaneHandshake.IsKey(new byte[16]));
        Assert.NotEqual(Key0, DataPlaneHandshake.NewRandom());
        Assert.Equal(12, DataPlaneHandshake.UnprovenCap(2));
        var reasons = Enum.GetValues<ConnectionRefusal>().Select(DataPlaneHandshake.Describe).ToList();
        Assert.Equal(reasons.Count, reasons.Distinct().Count());
        Assert.All(reasons, r => Assert.DoesNotContain('\n', r));
    }

    [Fact]
    public void Below_the_cap_a_new_connection_closes_none()
    {
        Assert.Equal(-1, DataPlaneHandshake.ToClose([], 2));
        Assert.Equal(-1, DataPlaneHandshake.ToClose(Enumerable.Repeat(false, 11).ToList(), 2));
    }

    [Fact]
    public void At_the_cap_a_new_connection_closes_the_oldest_silent_one_else_the_oldest()
    {
        var silent = Enumerable.Repeat(false, 12).ToList();
        Assert.Equal(0, DataPlaneHandshake.ToClose(silent, 2));

        var spoke = new List<bool>(silent) { [0] = true, [1] = true };   // the two oldest are answering: a real node, a slow one
        Assert.Equal(2, DataPlaneHandshake.ToClose(spoke, 2));

        Assert.Equal(0, DataPlaneHandshake.ToClose(Enumerable.Repeat(true, 12).ToList(), 2));
        Assert.Equal(0, DataPlaneHandshake.ToClose(Enumerable.Repeat(false, 15).ToList(), 2));   // never above, but still one
    }
}
