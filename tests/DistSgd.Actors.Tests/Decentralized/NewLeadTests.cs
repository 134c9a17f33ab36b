using DistSgd.Actors.Decentralized;
using DistSgd.Numerics.Training;

namespace DistSgd.Actors.Tests.Decentralized;

/// <summary>What a peer that becomes the lead says about the epochs the lost lead scored.</summary>
public class NewLeadTests
{
    private static EpochMetrics Epoch(int epoch, double testLoss) => new(epoch, epoch * 10L, 0.5, testLoss, testLoss / 2, 1, 100, 0.01);

    [Fact]
    public void A_new_lead_names_the_epochs_whose_test_scores_it_does_not_know()
    {
        Assert.Equal("the test loss and accuracy of epochs 1, 2 are not known: the lost lead scored them, θ of then is gone " +
                     "(shown as \"not known\", blank in metrics.csv, null in --json and summary.json)",
                     PeerLossRound.UnscoredEpochs([Epoch(1, double.NaN), Epoch(2, double.NaN), Epoch(3, 0.4)]));
        Assert.StartsWith("the test loss and accuracy of epoch 1 are not known", PeerLossRound.UnscoredEpochs([Epoch(1, double.NaN)]));
    }

    [Fact]
    public void A_new_lead_that_knows_every_score_says_nothing()
    {
        Assert.Null(PeerLossRound.UnscoredEpochs([Epoch(1, 0.5), Epoch(2, 0.4)]));
        Assert.Null(PeerLossRound.UnscoredEpochs([]));
    }
}
