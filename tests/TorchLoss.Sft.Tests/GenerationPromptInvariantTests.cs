using Microsoft.ML.Tokenizers;
using TorchLoss.Sft;
using static TorchLoss.Sft.Tests.SftTestKit;

namespace TorchLoss.Sft.Tests;

/// <summary>
/// What the model is trained on is what it sees at inference: for every trained assistant turn, the ids of
/// its generation prompt (<see cref="SftExampleBuilder.BuildGenerationPrompt(IReadOnlyList{ChatMessage})"/>)
/// are a prefix of the example's ids and the turn's trained labels start right after them; the same for
/// prompt/completion pairs. Checked against an oracle built from the generation prompts and from each
/// content and end-of-turn marker encoded alone, for GPT-2 and characters, three templates, every truncation
/// policy, and random conversations.
/// </summary>
public class GenerationPromptInvariantTests
{
    /// <summary>Headers that end in a space, a marker that starts with one, and a separator.</summary>
    private static readonly ChatTemplate SpacedHeaders = new()
    {
        SystemHeader = "Sys: ",
        UserHeader = "Q: ",
        AssistantHeader = "A: ",
        EndOfTurn = " <end>",
        TurnSeparator = "\n",
    };

    private static readonly ChatMessage[] MultiTurn = [S("Be brief."), U("capital of France?"), A("Paris"), U("and Italy?"), A("Rome, I think"), U("ok"), A(" 's fine ")];

    private static ChatTemplate TemplateNamed(string name) => name switch
    {
        "plain" => ChatTemplate.Plain,
        "chatml" => ChatTemplate.ChatML,
        _ => SpacedHeaders,
    };

    public static TheoryData<string, string> Cases() => TokenizerTemplatePairs("plain", "chatml", "spaced");

    [Fact]
    public void PlainGpt2TrainsTheAnswerRightAfterTheLoneSpaceTheGenerationPromptEndsWith()
    {
        ChatMessage[] chat = [U("capital of France?"), A("Paris")];
        var builder = Builder(Gpt2, ChatTemplate.Plain);
        // In one piece GPT-2 writes the answer as " Paris", a token the generation prompt can never be followed by.
        Assert.Contains(Gpt2.EncodeToIds(" Paris")[0], Gpt2.EncodeToIds(ChatTemplate.Plain.Render(chat).Text));
        var prompt = builder.BuildGenerationPrompt(chat[..1]);
        Assert.Equal(" ", Gpt2.Decode([prompt[^1]]));
        var example = builder.Build(chat);
        Assert.Equal(prompt, example.InputIds[..prompt.Length]);
        Assert.Equal(prompt.Length, example.TrainedRuns()[0].Start.Value);
        Assert.Equal("Paris", Gpt2.Decode([example.InputIds[prompt.Length]]));
        Assert.Equal(["Paris\n"], TrainedTexts(Gpt2, example));
    }

    [Fact]
    public void APromptCompletionPairNeverTrainsATokenHoldingPromptText()
    {
        var builder = Builder(Gpt2, ChatTemplate.Plain);
        var example = builder.Build("Translate to French: cat", "chat");
        // In one piece GPT-2 merges the prompt's " cat" with the completion into " catch".
        Assert.Contains(Gpt2.EncodeToIds(" catch")[0], Gpt2.EncodeToIds("Translate to French: catchat\n"));
        Assert.DoesNotContain(Gpt2.EncodeToIds(" catch")[0], example.InputIds);
        var prompt = builder.BuildGenerationPrompt("Translate to French: cat");
        Assert.Equal(Gpt2.EncodeToIds("Translate to French: cat"), prompt);
        Assert.Equal(prompt, example.InputIds[..prompt.Length]);
        Assert.Equal(prompt.Length, example.TrainedRuns()[0].Start.Value);
        Assert.Equal(["chat\n"], TrainedTexts(Gpt2, example));
    }

    [Fact]
    public void HeadersEndingInASpaceKeepItOutOfTheTrainedTokens()
    {
        var example = Builder(Gpt2, SpacedHeaders).Build([S("x"), U("hi"), A("yo"), U("ok?"), A("'s ")]);
        Assert.Equal("Sys|:| x| <|end|>|⏎|Q|:| hi| <|end|>|⏎|A|:| |[yo| <|end|>]|⏎|Q|:| ok|?| <|end|>|⏎|A|:| |['s| | <|end|>]|⏎", Show(Gpt2, example, "|"));
        var chars = Builder(Chars, SpacedHeaders).Build([S("x"), U("hi"), A("yo"), U("ok?"), A("'s ")]);
        Assert.Equal("Sys: x <end>⏎Q: hi <end>⏎A: [yo <end>]⏎Q: ok? <end>⏎A: ['s  <end>]⏎", Show(Chars, chars));
    }

    [Fact]
    public void ConsecutiveAssistantMessagesEachStartAFreshSegmentAfterTheirHeader()
    {
        var example = Builder(Gpt2, ChatTemplate.Plain).Build([U("q"), A("a"), A("b")]);
        Assert.Equal("User|:| q|⏎|Assistant|:| |[a|⏎]|Assistant|:| |[b|⏎]", Show(Gpt2, example, "|"));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void EveryTrainedTurnStartsRightAfterItsGenerationPrompt(string tokenizerName, string templateName)
    {
        var tokenizer = TokenizerNamed(tokenizerName);
        var template = TemplateNamed(templateName);
        foreach (var trainOn in new[] { AssistantTurns.All, AssistantTurns.Last })
            foreach (bool trainEnd in new[] { true, false })
            {
                var builder = Builder(tokenizer, template, new SftOptions { MaxLength = 4096, TrainOn = trainOn, TrainEndOfTurn = trainEnd });
                var expected = Oracle.Of(builder, MultiTurn);
                var example = builder.Build(MultiTurn);
                Assert.Equal(expected.Ids, example.InputIds);
                Assert.Equal(expected.Labels, example.Labels);
                Assert.Equal(trainOn == AssistantTurns.All ? 3 : 1, example.TrainedRuns().Count);
            }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void EveryTruncationOfAMultiTurnChatKeepsTheInvariant(string tokenizerName, string templateName)
    {
        var tokenizer = TokenizerNamed(tokenizerName);
        var template = TemplateNamed(templateName);
        int fullLength = Oracle.Of(Builder(tokenizer, template), MultiTurn).Ids.Length;
        foreach (var policy in Enum.GetValues<TruncationPolicy>())
            for (int maxLength = 2; maxLength <= fullLength + 1; maxLength++)
            {
                var options = new SftOptions { MaxLength = maxLength, Truncation = policy };
                Oracle.AssertBuilds(Builder(tokenizer, template, options), MultiTurn);
            }
    }

    [Fact]
    public void RandomConversationsKeepTheInvariant()
    {
        var random = new Random(20261201);
        ChatTemplate[] templates = [ChatTemplate.Plain, ChatTemplate.ChatML, SpacedHeaders, ChatTemplate.ChatML with { BeginningOfSequence = "<|im_start|>" }];
        int built = 0;
        for (int c = 0; c < 600; c++)
        {
            bool gpt2 = random.Next(2) == 0;
            Tokenizer tokenizer = gpt2 ? Gpt2 : Chars;
            var template = templates[random.Next(templates.Length)];
            var chat = RandomChat(random, template, gpt2);
            int fullLength = Oracle.Of(Builder(tokenizer, template), chat).Ids.Length;
            var options = new SftOptions
            {
                MaxLength = random.Next(3) == 0 ? 4096 : random.Next(2, fullLength + 2),
                Truncation = (TruncationPolicy)random.Next(3),
                TrainOn = (AssistantTurns)random.Next(2),
                TrainEndOfTurn = random.Next(4) != 0,
            };
            if (Oracle.AssertBuilds(Builder(tokenizer, template, options), chat)) built++;

            var prompt = RandomContent(random, template, gpt2);
            var completion = RandomContent(random, template, gpt2);
            Oracle.AssertBuildsPair(Builder(tokenizer, template, options with { Truncation = random.Next(2) == 0 ? TruncationPolicy.KeepStart : TruncationPolicy.Error }), prompt, completion);
        }
        Assert.True(built > 200, $"only {built} of 600 random conversations built an example");
    }

    private static readonly string[] CharPieces = ["hi", "Paris", "cat", "chat", "Rome", "42", "7", "'s", "x+y=z", "ok?", "a:b", ",", "!", "<", "|", ">", "_", "end", "A", "Q"];

    private static readonly string[] Gpt2Pieces = [.. CharPieces, "😀", "é", "naïve", "\t", "<|im_end|>", "über"];

    private static ChatMessage[] RandomChat(Random random, ChatTemplate template, bool gpt2)
    {
        var chat = new List<ChatMessage>();
        if (random.Next(3) == 0) chat.Add(S(RandomContent(random, template, gpt2)));
        int exchanges = 1 + random.Next(3);
        for (int e = 0; e < exchanges; e++)
        {
            int users = 1 + (random.Next(4) == 0 ? 1 : 0);
            for (int u = 0; u < users; u++) chat.Add(U(RandomContent(random, template, gpt2)));
            chat.Add(A(RandomContent(random, template, gpt2)));
        }
        return [.. chat];
    }

    /// <summary>Zero to four pieces, with single or double spaces or nothing between them and at the edges.</summary>
    private static string RandomContent(Random random, ChatTemplate template, bool gpt2)
    {
        var pieces = gpt2 ? Gpt2Pieces : CharPieces;
        string[] gaps = ["", " ", " ", "  "];
        while (true)
        {
            int count = random.Next(5);
            var text = random.Next(4) == 0 ? gaps[random.Next(gaps.Length)] : "";
            for (int i = 0; i < count; i++)
                text += (i > 0 ? gaps[random.Next(gaps.Length)] : "") + pieces[random.Next(pieces.Length)];
            if (random.Next(4) == 0) text += gaps[random.Next(gaps.Length)];
            if (!text.Contains(template.EndOfTurn, StringComparison.Ordinal)) return text;
        }
    }

    /// <summary>The example the invariant dictates, assembled from generation prompts and separately encoded parts.</summary>
    private sealed record Oracle(int[] Ids, long[] Labels, List<Range> EndOfTurns)
    {
        /// <summary>
        /// The untruncated example of <paramref name="chat"/>: each assistant turn's generation prompt must extend
        /// what came before it, then its content and marker follow, each encoded alone; the last separator closes it.
        /// </summary>
        public static Oracle Of(SftExampleBuilder builder, IReadOnlyList<ChatMessage> chat)
        {
            var ids = new List<int>();
            var trained = new List<bool>();
            var endOfTurns = new List<Range>();
            int lastAssistant = chat.Count - 1;
            for (int k = 0; k < chat.Count; k++)
            {
                if (chat[k].Role != ChatRole.Assistant) continue;
                var prompt = builder.BuildGenerationPrompt(chat.Take(k).ToList());
                Assert.True(prompt.Length >= ids.Count && prompt.Take(ids.Count).SequenceEqual(ids),
                    $"the generation prompt of message {k} does not extend the tokens of the turns before it");
                Append(prompt[ids.Count..], false);
                bool trains = builder.Options.TrainOn == AssistantTurns.All || k == lastAssistant;
                Append(builder.Tokenizer.EncodeToIds(chat[k].Content), trains);
                int start = ids.Count;
                Append(builder.Tokenizer.EncodeToIds(builder.Template.EndOfTurn), trains && builder.Options.TrainEndOfTurn);
                endOfTurns.Add(start..ids.Count);
            }
            Append(builder.Tokenizer.EncodeToIds(builder.Template.TurnSeparator), false);
            return new Oracle([.. ids], ToLabels(ids, trained), endOfTurns);

            void Append(IEnumerable<int> part, bool train)
            {
                foreach (int id in part)
                {
                    ids.Add(id);
                    trained.Add(train);
                }
            }
        }

        /// <summary>The example of a prompt/completion pair: the prompt's generation ids, then the completion and the marker, each encoded alone.</summary>
        public static Oracle OfPair(SftExampleBuilder builder, string prompt, string completion)
        {
            var promptIds = builder.BuildGenerationPrompt(prompt);
            var completionIds = builder.Tokenizer.EncodeToIds(completion);
            var endIds = builder.Tokenizer.EncodeToIds(builder.Template.EndOfTurn);
            int[] ids = [.. promptIds, .. completionIds, .. endIds];
            var trained = ids.Select((_, i) => i >= promptIds.Length && (i < promptIds.Length + completionIds.Count || builder.Options.TrainEndOfTurn)).ToList();
            int end = promptIds.Length + completionIds.Count;
            return new Oracle(ids, ToLabels(ids, trained), [end..ids.Length]);
        }

        private static long[] ToLabels(IReadOnlyList<int> ids, List<bool> trained) =>
            ids.Select((id, i) => i > 0 && trained[i] ? id : SftExample.IgnoreIndex).ToArray();

        /// <summary>The first <paramref name="length"/> tokens, where a marker the cut did not keep whole is not trained.</summary>
        public Oracle Cut(int length)
        {
            var labels = Labels[..length];
            foreach (var range in EndOfTurns)
            {
                var (start, count) = range.GetOffsetAndLength(Ids.Length);
                if (start + count > length)
                    for (int i = start; i < Math.Min(length, start + count); i++) labels[i] = SftExample.IgnoreIndex;
            }
            return new Oracle(Ids[..length], labels, []);
        }

        public bool TrainsNothing => Labels.All(l => l == SftExample.IgnoreIndex);

        /// <summary>
        /// Builds <paramref name="chat"/> and checks the result against the oracle of what each policy keeps:
        /// the whole chat, its first MaxLength tokens, the system message with the last exchanges that fit, or a rejection.
        /// Returns whether an example was built.
        /// </summary>
        public static bool AssertBuilds(SftExampleBuilder builder, IReadOnlyList<ChatMessage> chat)
        {
            var options = builder.Options;
            var full = Of(builder, chat);
            Oracle? expected = full;
            SftRejection? rejection = null;
            if (full.Ids.Length > options.MaxLength)
            {
                switch (options.Truncation)
                {
                    case TruncationPolicy.Error:
                        rejection = SftRejection.TooLong;
                        break;
                    case TruncationPolicy.KeepStart:
                        expected = full.Cut(options.MaxLength);
                        break;
                    default:
                        expected = KeptExchanges(chat).Select(kept => Of(builder, kept)).FirstOrDefault(o => o.Ids.Length <= options.MaxLength);
                        if (expected is null) rejection = SftRejection.TooLong;
                        break;
                }
            }
            if (rejection is null && expected!.TrainsNothing) rejection = SftRejection.NoTrainedTokens;

            if (rejection is not null)
            {
                Assert.Equal(rejection, Assert.Throws<SftExampleException>(() => builder.Build(chat)).Reason);
                return false;
            }
            var example = builder.Build(chat);
            Assert.Equal(expected!.Ids, example.InputIds);
            Assert.Equal(expected.Labels, example.Labels);
            return true;
        }

        public static void AssertBuildsPair(SftExampleBuilder builder, string prompt, string completion)
        {
            var full = OfPair(builder, prompt, completion);
            Oracle? expected = full.Ids.Length <= builder.Options.MaxLength ? full
                : builder.Options.Truncation == TruncationPolicy.KeepStart ? full.Cut(builder.Options.MaxLength) : null;
            if (expected is null || expected.Ids.Length < 2 || expected.TrainsNothing)
            {
                var reason = expected is null ? SftRejection.TooLong : SftRejection.NoTrainedTokens;
                Assert.Equal(reason, Assert.Throws<SftExampleException>(() => builder.Build(prompt, completion)).Reason);
                return;
            }
            var example = builder.Build(prompt, completion);
            Assert.Equal(expected.Ids, example.InputIds);
            Assert.Equal(expected.Labels, example.Labels);
        }

        /// <summary>The chat without its first 1, 2, ... exchanges (a user message after an assistant one starts an exchange), keeping a system message.</summary>
        private static IEnumerable<List<ChatMessage>> KeptExchanges(IReadOnlyList<ChatMessage> chat)
        {
            int first = chat[0].Role == ChatRole.System ? 1 : 0;
            for (int i = first + 1; i < chat.Count; i++)
                if (chat[i].Role == ChatRole.User && chat[i - 1].Role == ChatRole.Assistant)
                    yield return [.. chat.Take(first), .. chat.Skip(i)];
        }
    }
}
