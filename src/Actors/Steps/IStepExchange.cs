namespace DistSgd.Actors.Steps;

/// <summary>
/// What a mode does inside the <see cref="StepLoop"/>: how a step begins on the wire, what it does around the update,
/// and what happens at an epoch's end. The centralized master and the decentralized peer each implement it (their
/// actor, usually, through a small private class); everything else of a step is the loop's.
/// </summary>
public interface IStepExchange
{
    /// <summary>
    /// Opens the gather of the replica's next step among this step's participants and returns it, or null when no
    /// step may begin now (the master on the minority side of a partition). The master starts an epoch's shards here
    /// when one begins; a peer opens its <see cref="StepBuffer"/>, which hands over the shares that came early.
    /// Writing a due checkpoint (<see cref="Replica.CheckpointIfDue"/>) belongs here too.
    /// </summary>
    StepGather? Open();

    /// <summary>Begins the step on the wire: the master sends θ to the participants; a peer computes its share and sends it.</summary>
    void Broadcast();

    /// <summary>
    /// Called once the step is open and its timeout set: true when the loop may finish it at once if it is complete
    /// already (a peer's own share, early shares); false when the mode took over meanwhile (a peer that started an
    /// agreement on a peer lost while it compared hashes).
    /// </summary>
    bool AfterBegin();

    /// <summary>
    /// Nothing at all arrived within distsgd.step-timeout (retry <see cref="StepLoop.Retries"/> of
    /// <see cref="StepLoop.MaxStepRetries"/>): ask again. The master begins the step again (<see cref="StepLoop.Begin"/>);
    /// a peer sends its share again and restarts the timeout (<see cref="StepLoop.RestartTimeout"/>).
    /// </summary>
    void AskAgain(IReadOnlyCollection<int> missing);

    /// <summary>Why the run fails when a step was asked <see cref="StepLoop.MaxStepRetries"/> + 1 times and nothing arrived.</summary>
    string NothingArrived(IReadOnlyCollection<int> missing);

    /// <summary>
    /// Some participants did not answer within distsgd.step-timeout: true to finish the step with what arrived (the
    /// master); false when the mode handles them (a peer suspects them and agrees with the others on the survivors).
    /// </summary>
    bool GoOnWithout(IReadOnlyCollection<int> missing);

    /// <summary>
    /// The gather is complete and closed, before the update: false to leave it unapplied (the master on the minority
    /// side; it asks the step again once the majority is back). A peer keeps here what undoing the step needs.
    /// </summary>
    bool BeforeApply(StepGather gather);

    /// <summary>
    /// The update was applied (or the run <paramref name="diverged"/>; the loop then fails it): return the step's
    /// arrays to the data plane, measure the step's progress.
    /// </summary>
    void AfterApply(StepGather gather, double wallSeconds, bool diverged);

    /// <summary>The replica took the epoch's last step: true when the next step begins at once (the run goes on).</summary>
    bool EndEpoch();

    /// <summary>Ends the run as failed.</summary>
    void Fail(string reason);
}
