namespace TinyGpt;

/// <summary>The corpus cannot be used (missing, empty, too short); the message says which and why.</summary>
public sealed class CorpusException(string message) : Exception(message);
