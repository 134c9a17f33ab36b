using DistSgd.Numerics.Training;

namespace DistSgd.Numerics.Tests.Training;

/// <summary>Local SGD's rounds within an epoch, its model average, and its hyper-parameter.</summary>
public class LocalSgdTests
{
    [Fact]
    public void Rounds_of_H_steps_end_by_averaging_and_an_epochs_last_step_always_averages()
    {
        // 10 steps, H = 4: rounds 0–3, 4–7, 8–9 (cut short by the epoch's end).
        var averaging = Enumerable.Range(0, 10).Where(s => LocalSgd.IsAveragingStep(s, 10, 4)).ToArray();
        Assert.Equal([3, 7, 9], averaging);
        var starts = Enumerable.Range(0, 10).Where(s => LocalSgd.IsRoundStart(s, 4)).ToArray();
        Assert.Equal([0, 4, 8], starts);
    }

    [Fact]
    public void With_H_1_every_step_averages_and_starts_a_round()
    {
        Assert.All(Enumerable.Range(0, 7), s => Assert.True(LocalSgd.IsAveragingStep(s, 7, 1) && LocalSgd.IsRoundStart(s, 1)));
    }

    [Fact]
    public void The_model_average_is_the_round_start_plus_the_sample_weighted_mean_change()
    {
        float[] start = [1f, 2f];
        var changes = new ReadOnlyMemory<float>[] { new float[] { 0.5f, -1f }, new float[] { 1.5f, 1f }, Array.Empty<float>() };
        var theta = new float[2];
        long samples = LocalSgd.AverageModels(start, changes, [1, 3, 0], theta);   // a peer without samples is skipped
        Assert.Equal(4, samples);
        Assert.Equal([1f + (0.5f + 3 * 1.5f) / 4, 2f + (-1f + 3f) / 4], theta);
    }

    [Fact]
    public void Nothing_to_average_leaves_the_round_start()
    {
        var theta = new float[] { 9f, 9f };
        Assert.Equal(0, LocalSgd.AverageModels([1f, 2f], [Array.Empty<float>()], [0], theta));
        Assert.Equal([1f, 2f], theta);
    }

    [Theory]
    [InlineData(1, "")]
    [InlineData(8, "sync-every=8")]
    public void The_hyperparameter_is_written_only_when_H_is_not_1_and_read_back(int h, string key)
    {
        Assert.Equal(key, string.Join(';', LocalSgd.Keys(h)));
        Assert.Equal(h, LocalSgd.FromKeys("lr=0.1;" + key));
    }

    [Theory]
    [InlineData(1, 4)]
    [InlineData(4, 4)]
    [InlineData(8, 8)]
    [InlineData(16, 16)]
    public void A_peer_holds_shares_up_to_a_whole_round_ahead(int h, int window) =>
        Assert.Equal(window, LocalSgd.BufferWindow(4, h));   // found with H = 8: a share 5 steps ahead was dropped, the run stalled

    [Fact]
    public void A_bad_value_is_refused_naming_the_key() =>
        Assert.Contains("sync-every", Assert.Throws<FormatException>(() => LocalSgd.FromKeys("sync-every=0")).Message);
}
