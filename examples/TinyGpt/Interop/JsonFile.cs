using System.Text.Json;

namespace TinyGpt;

/// <summary>The small JSON files written beside exported weights: indented, atomic, and malformed input as <see cref="InvalidDataException"/>.</summary>
internal static class JsonFile
{
    private static readonly JsonSerializerOptions Options = new() { WriteIndented = true };

    /// <summary>Reads <paramref name="path"/> as a <typeparamref name="T"/>; <paramref name="what"/> names it in errors.</summary>
    public static T Read<T>(string path, string what) where T : class
    {
        ArgumentNullException.ThrowIfNull(path);
        try
        {
            return JsonSerializer.Deserialize<T>(File.ReadAllText(path), Options)
                ?? throw new InvalidDataException($"{path} holds null, not {what}.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path} is not {what}: {e.Message}", e);
        }
    }

    /// <summary>Writes <paramref name="value"/> to <paramref name="path"/> as indented JSON, atomically.</summary>
    public static void Write<T>(string path, T value) => AtomicFile.WriteAllText(path, JsonSerializer.Serialize(value, Options) + "\n");
}
