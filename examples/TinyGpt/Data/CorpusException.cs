namespace TinyGpt;

/// <summary>
/// The data the user gave cannot be used: the corpus (missing, empty, too short) or the checkpoint to resume from
/// (missing, damaged, written with other options). A <see cref="UsageException"/>: the examples exit with code 2.
/// </summary>
public sealed class CorpusException(string message) : UsageException(message);
