using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace TorchLoss.Tests.Preference;

/// <summary>
/// The golden values of tools/golden/make_preference_golden.py: float64 PyTorch evaluations of the published
/// preference-loss definitions on one batch of 3 pairs (rows 0–2 chosen, 3–5 rejected), with left and right padding
/// and one-token answers.
/// </summary>
internal static class PreferenceGolden
{
    private static readonly Lazy<JsonElement> Root = new(() =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Preference", "Fixtures", "preference_golden.json"))).RootElement);

    public static long[] Shape => Root.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray();

    public static double[] Doubles(JsonElement e) => e.EnumerateArray().Select(v => v.GetDouble()).ToArray();

    public static JsonElement Sequence => Root.Value.GetProperty("sequence");

    public static IEnumerable<JsonElement> Cases => Root.Value.GetProperty("cases").EnumerateArray();

    public static JsonElement Case(int index) => Root.Value.GetProperty("cases")[index];

    public static int CaseCount => Root.Value.GetProperty("cases").GetArrayLength();

    /// <summary>The policy's logits [2B, T, V] in <paramref name="dtype"/>, a leaf that requires grad.</summary>
    public static Tensor PolicyLogits(ScalarType dtype = ScalarType.Float64) =>
        tensor(Doubles(Root.Value.GetProperty("policy_logits")), Shape).to(dtype).requires_grad_(true);

    public static Tensor ReferenceLogits(ScalarType dtype = ScalarType.Float64) =>
        tensor(Doubles(Root.Value.GetProperty("reference_logits")), Shape).to(dtype);

    public static Tensor Labels() =>
        tensor(Root.Value.GetProperty("labels").EnumerateArray().Select(e => e.GetInt64()).ToArray(), Shape[..2]);

    public static Tensor CompletionMask() =>
        tensor(Root.Value.GetProperty("completion_mask").EnumerateArray().Select(e => e.GetBoolean()).ToArray(), Shape[..2]);

    /// <summary>The options a golden case describes.</summary>
    public static PreferenceOptions Options(JsonElement c, CrossEntropyBackend backend = CrossEntropyBackend.Auto)
    {
        var kind = Enum.Parse<PreferenceLossKind>(c.GetProperty("loss").GetString()!);
        double? Optional(string name) => c.TryGetProperty(name, out var v) ? v.GetDouble() : null;
        var score = Enum.Parse<SequenceScore>(c.GetProperty("score").GetString()!);
        return new PreferenceOptions
        {
            Loss = kind,
            Beta = c.GetProperty("beta").GetDouble(),
            LabelSmoothing = Optional("eps") ?? 0,
            Gamma = Optional("gamma"),
            Alpha = Optional("alpha"),
            Lambda = Optional("lambda"),
            Score = score,
            Backend = backend,
        };
    }

    public static string Describe(JsonElement c) => c.ToString().Split("\"pair_losses\"")[0];
}
