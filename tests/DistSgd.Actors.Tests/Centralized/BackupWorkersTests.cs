using DistSgd.Actors.Centralized;

namespace DistSgd.Actors.Tests.Centralized;

public class BackupWorkersTests
{
    [Theory]
    [InlineData(4, 4, 1, 3)]   // the first N − B
    [InlineData(4, 3, 1, 3)]   // one still busy: the three asked
    [InlineData(4, 2, 1, 2)]   // two busy: no more than were asked
    [InlineData(2, 2, 5, 1)]   // at least one gradient
    [InlineData(4, 4, 0, 0)]   // off: all asked
    public void A_step_finishes_with_n_minus_b_gradients_but_no_more_than_were_asked(int participants, int asked, int backups, int finishWith) =>
        Assert.Equal(finishWith, BackupWorkers.FinishWith(participants, asked, backups));

    [Fact]
    public void A_worker_still_computing_is_not_asked_until_it_answers_and_its_answer_is_late()
    {
        var backups = new BackupWorkers(1, patienceTicks: 1000);
        backups.Asked(3, step: 5, now: 0);
        Assert.True(backups.IsBusy(3, now: 10));
        Assert.False(backups.IsBusy(2, now: 10));

        Assert.True(backups.Answered(3, step: 5, openStep: 7, open: true));   // step 5 finished without it
        Assert.False(backups.IsBusy(3, now: 20));
        Assert.False(backups.Answered(3, step: 5, openStep: 7, open: true));  // not asked again: judged by the gather
    }

    [Fact]
    public void An_answer_in_time_is_not_late_and_frees_the_worker()
    {
        var backups = new BackupWorkers(1, patienceTicks: 1000);
        backups.Asked(0, step: 7, now: 0);
        Assert.False(backups.Answered(0, step: 7, openStep: 7, open: true));
        Assert.False(backups.IsBusy(0, now: 1));

        backups.Asked(1, step: 7, now: 0);
        Assert.True(backups.Answered(1, step: 7, openStep: 7, open: false));   // the step closed without it
    }

    [Fact]
    public void A_worker_silent_past_the_step_timeout_is_asked_again_and_a_lost_one_is_forgotten()
    {
        var backups = new BackupWorkers(1, patienceTicks: 1000);
        backups.Asked(1, 5, now: 0);
        Assert.False(backups.IsBusy(1, now: 1000));   // its answer was lost: asked again
        backups.Asked(2, 5, now: 0);
        backups.Forget(2);
        Assert.False(backups.IsBusy(2, now: 1));
        backups.Asked(3, 5, now: 0);
        backups.Clear();
        Assert.False(backups.IsBusy(3, now: 1));
    }

    [Fact]
    public void Without_backup_workers_nothing_is_tracked()
    {
        var backups = new BackupWorkers(0, patienceTicks: 1000);
        backups.Asked(1, 5, now: 0);
        Assert.False(backups.IsBusy(1, now: 1));
        Assert.False(backups.Answered(1, 5, openStep: 9, open: true));
    }
}
