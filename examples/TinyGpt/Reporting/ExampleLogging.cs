using Microsoft.Extensions.Logging;

namespace TinyGpt;

/// <summary>The examples' console logging: one timestamped line per message.</summary>
public static class ExampleLogging
{
    /// <summary>A logger factory writing to the console at <paramref name="minimumLevel"/> and above.</summary>
    public static ILoggerFactory CreateFactory(LogLevel minimumLevel = LogLevel.Information) =>
        LoggerFactory.Create(builder => builder
            .SetMinimumLevel(minimumLevel)
            .AddSimpleConsole(options =>
            {
                options.SingleLine = true;
                options.TimestampFormat = "HH:mm:ss ";
                options.IncludeScopes = false;
            }));
}
