using TinyGpt;
using TorchLoss.Sft;

namespace Preference;

/// <summary>
/// The synthetic questions: "first W" or "final W" (which letter is at that end of W?) for random five-letter words W
/// over the letters a–h whose first and last letters differ. "first" and "final" have the same length, so every question puts both end letters at the same
/// positions and a tiny model learns to copy either end within a few hundred steps. In the SFT data every question is answered with the correct letter or with the letter
/// at the other end of the word, each with probability ½, so SFT can learn to answer with an end letter of the word but
/// cannot learn which end a question asks for: that is the rule only the preference pairs carry.
/// </summary>
public static class LetterQuestions
{
    /// <summary>Every character a question or answer can contain.</summary>
    public const string Alphabet = "abcdefghijklmnopqrstuvwxyz ";

    /// <summary>Words use the first this many letters of the alphabet.</summary>
    public const int Letters = 8;

    /// <summary>Letters per word.</summary>
    public const int WordLength = 5;

    /// <summary>The length of every request, in characters.</summary>
    public static int RequestLength => "first ".Length + WordLength;

    /// <summary>
    /// Makes <paramref name="count"/> questions from <paramref name="seed"/>, half about the first letter and half about
    /// the last in random order, none about a word in <paramref name="exclude"/> (so held-out questions are about new words).
    /// </summary>
    public static List<LetterQuestion> Generate(int count, ulong seed, IReadOnlySet<string>? exclude = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var random = new SplitMix64(seed);
        var questions = new List<LetterQuestion>(count);
        while (questions.Count < count)
        {
            string word = RandomWords.Next(random, WordLength, WordLength, Letters);
            if (word[0] == word[^1] || exclude?.Contains(word) == true) continue;
            bool first = random.NextInt64(2) == 0;
            string request = (first ? "first " : "final ") + word;
            var (start, end) = (word[..1], word[^1..]);
            questions.Add(first ? new LetterQuestion(request, word, start, end) : new LetterQuestion(request, word, end, start));
        }
        return questions;
    }

    /// <summary>SFT conversations: each question answered correctly or wrongly with probability ½ (drawn from <paramref name="seed"/>).</summary>
    public static List<ChatMessage[]> SftChats(IReadOnlyList<LetterQuestion> questions, ulong seed)
    {
        ArgumentNullException.ThrowIfNull(questions);
        var random = new SplitMix64(seed);
        return questions.Select(q => new[] { ChatMessage.User(q.Request), ChatMessage.Assistant(random.NextInt64(2) == 0 ? q.Correct : q.Wrong) }).ToList();
    }
}
