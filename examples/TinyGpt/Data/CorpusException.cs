namespace TinyGpt;

/// <summary>
/// What the user gave cannot be used: the corpus (missing, empty, too short), the checkpoint to resume from (missing,
/// damaged, written with other options) or a combination of options. The examples print the message and exit with code 2.
/// </summary>
public sealed class CorpusException(string message) : Exception(message);
