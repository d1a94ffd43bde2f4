namespace TinyLM;

/// <summary>
/// What the user gave cannot be used: the corpus (missing, empty, too short), the checkpoint to resume from (missing,
/// damaged, written with other options) or a combination of options. TinyLM prints the message and exits with code 2.
/// </summary>
public sealed class CorpusException(string message) : Exception(message);
