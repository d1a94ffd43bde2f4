using System.Globalization;

namespace TinyGpt;

/// <summary>
/// The small command lines of the experiment examples: an optional <c>--quick</c> that picks the quick preset, then
/// <c>--name value</c> pairs that each override one setting. Every malformed input is a <see cref="UsageException"/>.
/// </summary>
public static class ExampleArguments
{
    /// <summary>
    /// Starts from <paramref name="quick"/> when <c>--quick</c> is among <paramref name="args"/> (anywhere), else from
    /// <paramref name="defaults"/>, and applies each <c>--name value</c> pair with <paramref name="set"/>, which returns
    /// null for a name it does not know.
    /// </summary>
    /// <exception cref="UsageException">An unknown option, or an option without its value.</exception>
    public static TOptions Parse<TOptions>(IReadOnlyList<string> args, TOptions defaults, TOptions quick, string usage, Func<TOptions, string, string, TOptions?> set)
        where TOptions : class
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(set);
        var options = args.Contains("--quick") ? quick : defaults;
        for (int i = 0; i < args.Count; i++)
        {
            if (args[i] == "--quick") continue;
            if (i + 1 >= args.Count)
                throw new UsageException($"Option \"{args[i]}\" needs a value. {usage}");
            string name = args[i], value = args[++i];
            options = set(options, name, value) ?? throw new UsageException($"Unknown option \"{name}\". {usage}");
        }
        return options;
    }

    /// <summary>The integer value of <paramref name="option"/>.</summary>
    /// <exception cref="UsageException"><paramref name="value"/> is not an integer.</exception>
    public static int Integer(string option, string value) =>
        int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out int parsed)
            ? parsed
            : throw new UsageException($"{option} needs an integer, got \"{value}\".");

    /// <summary>The floating-point value of <paramref name="option"/> (invariant culture: a dot as decimal separator).</summary>
    /// <exception cref="UsageException"><paramref name="value"/> is not a number.</exception>
    public static double Number(string option, string value) =>
        double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out double parsed)
            ? parsed
            : throw new UsageException($"{option} needs a number, got \"{value}\".");

    /// <summary>The value of <c>--seed</c>: a non-negative integer, the type of <see cref="TrainerOptions.Seed"/>.</summary>
    /// <exception cref="UsageException"><paramref name="value"/> is not a non-negative integer.</exception>
    public static ulong Seed(string value) =>
        ulong.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out ulong parsed)
            ? parsed
            : throw new UsageException($"--seed needs a non-negative integer, got \"{value}\".");

    /// <summary>Runs <paramref name="validate"/>, turning its <see cref="ArgumentException"/> into a <see cref="UsageException"/>.</summary>
    public static void Validate(Action validate)
    {
        ArgumentNullException.ThrowIfNull(validate);
        try
        {
            validate();
        }
        catch (ArgumentException e)
        {
            throw new UsageException(e.Message);
        }
    }
}
