using Microsoft.ML.Tokenizers;
using TorchLoss.Sft;
using static TorchLoss.Sft.Tests.SftTestKit;

namespace TorchLoss.Sft.Tests;

/// <summary>
/// The validation property, for both tokenizers and both templates over awkward texts: each trained run
/// decodes to exactly one assistant content followed by its end-of-turn marker when that is trained, and
/// nothing else: no token straddles the header, the content and the marker.
/// </summary>
public class TrainedRunInvariantTests
{
    private static readonly string[] Answers =
    [
        "hi", "Hello, world!", " leading space", "trailing space ", "42", "'quoted'", "a:b", "x+y=z", "",
        "User: I am not the user", "Assistant: nor the header", "<|im_start|>assistant", "ok?", "  two spaces",
    ];

    public static TheoryData<string, string> Cases() => TokenizerTemplatePairs("plain", "chatml", "plain-nospace");

    [Theory]
    [MemberData(nameof(Cases))]
    public void TrainedRunsDecodeToTheAnswersAndTheirEndOfTurnMarkers(string tokenizerName, string templateName)
    {
        var tokenizer = TokenizerNamed(tokenizerName);
        var template = templateName switch
        {
            "plain" => ChatTemplate.Plain,
            "chatml" => ChatTemplate.ChatML,
            _ => ChatTemplate.Plain with { AssistantHeader = "Assistant:", UserHeader = "User:" },
        };
        var answers = templateName == "chatml" ? Answers.Where(a => !a.Contains("<|im_end|>")).ToArray() : Answers;
        foreach (bool trainEnd in new[] { true, false })
        {
            var builder = Builder(tokenizer, template, new SftOptions { MaxLength = 4096, TrainEndOfTurn = trainEnd });
            for (int k = 0; k + 1 < answers.Length; k++)
            {
                string first = answers[k], second = answers[k + 1];
                if (!trainEnd && (first.Length == 0 || second.Length == 0)) continue;
                var chat = new[] { S("sys"), U("question " + k), A(first), U("more?"), A(second) };
                var example = builder.Build(chat);
                var runs = TrainedTexts(tokenizer, example);
                Assert.Equal(2, runs.Count);
                for (int r = 0; r < 2; r++)
                {
                    var answer = r == 0 ? first : second;
                    Assert.Equal(trainEnd ? answer + template.EndOfTurn : answer, runs[r]);
                }
            }
        }
    }
}
