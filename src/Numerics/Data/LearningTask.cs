namespace DistSgd.Numerics.Data;

/// <summary>What a text reader makes of the label column.</summary>
public enum LearningTask
{
    /// <summary>Labels are class indices (whole numbers ≥ 0); the data set gets a class count.</summary>
    Classification,

    /// <summary>Labels are real-valued responses; the data set has class count 0.</summary>
    Regression,
}
