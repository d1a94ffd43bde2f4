using TinyGpt;
using TorchLoss.Sft;

namespace ChatSft;

/// <summary>
/// A deterministic synthetic chat data set: users ask small questions with exactly one correct answer (the
/// opposite of a word, the sum of two digits, the letter after a letter, the first letter of a random word),
/// preceded by chatter the model cannot predict (random names and greetings). The assistant
/// answers with the result and nothing else.
/// </summary>
public static class SyntheticChats
{
    /// <summary>Every character a conversation can contain (plus the template's headers).</summary>
    public const string Alphabet = "abcdefghijklmnopqrstuvwxyz0123456789 .,?!+=:";

    /// <summary>The longest answer any task produces, in characters.</summary>
    public const int MaxAnswerLength = 5;

    private static readonly (string Word, string Opposite)[] Opposites =
    [
        ("hot", "cold"), ("cold", "hot"), ("up", "down"), ("down", "up"), ("big", "small"), ("small", "big"),
        ("fast", "slow"), ("slow", "fast"), ("old", "new"), ("new", "old"), ("day", "night"), ("night", "day"),
        ("yes", "no"), ("no", "yes"), ("left", "right"), ("right", "left"), ("wet", "dry"), ("dry", "wet"),
    ];

    private static readonly string[] Greetings = ["hi", "hey", "yo", "hello", "ok", "so", "hm"];

    /// <summary>Makes <paramref name="count"/> conversations of 1 to <paramref name="maxExchanges"/> exchanges from <paramref name="seed"/>.</summary>
    public static List<ChatMessage[]> Generate(int count, ulong seed, int maxExchanges)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxExchanges, 1);
        var random = new SplitMix64(seed);
        var chats = new List<ChatMessage[]>(count);
        for (int c = 0; c < count; c++)
        {
            int exchanges = 1 + (int)random.NextInt64(maxExchanges);
            var messages = new List<ChatMessage>(2 * exchanges);
            for (int e = 0; e < exchanges; e++)
            {
                var (request, answer) = Task(random);
                messages.Add(ChatMessage.User(Chatter(random, request)));
                messages.Add(ChatMessage.Assistant(answer));
            }
            chats.Add([.. messages]);
        }
        return chats;
    }

    /// <summary>One request and its single correct answer.</summary>
    private static (string Request, string Answer) Task(SplitMix64 random)
    {
        switch (random.NextInt64(4))
        {
            case 0:
            {
                var (word, opposite) = Opposites[random.NextInt64(Opposites.Length)];
                return (Pick(random, $"opposite of {word}", $"what is the opposite of {word}?", $"give me the opposite of {word}"), opposite);
            }
            case 1:
            {
                long a = random.NextInt64(10), b = random.NextInt64(10);
                return (Pick(random, $"add {a} and {b}", $"what is {a} plus {b}?", $"{a}+{b}=?"), (a + b).ToString());
            }
            case 2:
            {
                char letter = (char)('a' + random.NextInt64(25));
                return (Pick(random, $"letter after {letter}", $"what comes after {letter}?", $"which letter follows {letter}?"), ((char)(letter + 1)).ToString());
            }
            default:
            {
                var word = Word(random, 3, 6);
                return (Pick(random, $"first letter of {word}", $"what does {word} start with?", $"initial of {word}"), word[..1]);
            }
        }
    }

    /// <summary>
    /// Puts unpredictable chatter before the request, so most user characters are noise while the request
    /// itself stays right before the assistant's turn, where a tiny model can find it.
    /// </summary>
    private static string Chatter(SplitMix64 random, string request)
    {
        var greeting = Greetings[random.NextInt64(Greetings.Length)];
        var name = Word(random, 3, 5);
        return random.NextInt64(3) switch
        {
            0 => $"{greeting}, {name} here. {request}",
            1 => $"{greeting} {name}: {request}",
            _ => $"{name} {Word(random, 2, 4)}, {request}",
        };
    }

    private static string Word(SplitMix64 random, int minLength, int maxLength) => RandomWords.Next(random, minLength, maxLength);

    private static string Pick(SplitMix64 random, params string[] options) => options[random.NextInt64(options.Length)];
}
