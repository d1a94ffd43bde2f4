namespace TinyGpt;

/// <summary>The examples' exit codes, and the one place that turns a <see cref="UsageException"/> into one.</summary>
public static class ExampleExit
{
    /// <summary>The run finished.</summary>
    public const int Success = 0;

    /// <summary>The user's input cannot be used (every example, whatever the input: options, corpus, checkpoint, prompt).</summary>
    public const int UsageError = 2;

    /// <summary>Runs <paramref name="run"/>; a <see cref="UsageException"/> becomes "error: message" on <paramref name="error"/> and <see cref="UsageError"/>.</summary>
    public static int Run(Func<int> run, TextWriter error)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(error);
        try
        {
            return run();
        }
        catch (UsageException e)
        {
            error.WriteLine($"error: {e.Message}");
            return UsageError;
        }
    }
}
