namespace TinyGpt;

/// <summary>
/// Something the user gave cannot be used: an option value, a combination of options, a prompt, a file. The examples
/// print its message as one line and exit with <see cref="ExampleExit.UsageError"/>; anything else is a bug and keeps
/// its stack trace.
/// </summary>
public class UsageException(string message) : Exception(message);
