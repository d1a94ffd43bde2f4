namespace TinyGpt;

/// <summary>
/// An endless, deterministic stream of training micro-batches whose position can be saved in a checkpoint,
/// so a resumed run sees exactly the batches the uninterrupted run would have seen.
/// </summary>
public interface IBatchSource
{
    /// <summary>The next micro-batch; the caller disposes it.</summary>
    TrainingBatch Next();

    /// <summary>Writes the source's position (e.g. its random generator state).</summary>
    void SaveState(BinaryWriter writer);

    /// <summary>Restores a position written by <see cref="SaveState"/>.</summary>
    void LoadState(BinaryReader reader);
}
