using System.Globalization;
using TinyGpt;
using TorchLoss.Examples.SkyIsBlue;

// Prints the lesson's numbers; SkyIsBlueLesson computes them (and the example tests check them).
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
var lesson = SkyIsBlueLesson.Run();
var words = SkyIsBlueLesson.Words;
string N(double v) => (v + 0.0).ToString("0.0000"); // + 0.0 turns −0 into 0
string Row(IEnumerable<double> values) => "(" + string.Join(", ", values.Select(N)) + ")";

Console.WriteLine($"\"{SkyIsBlueLesson.Prompt}\": the model scores {words.Count} words; the right one is \"{words[SkyIsBlueLesson.Blue]}\".");
Console.WriteLine();
var softmax = new TextTable("word", "logit", "exp(logit)", "p = softmax", "log p", "target y");
for (int i = 0; i < words.Count; i++)
{
    softmax.Row(words[i], SkyIsBlueLesson.Logits[i].ToString("0.0"), N(Math.Exp(SkyIsBlueLesson.Logits[i])),
        N(lesson.Probabilities[i]), N(lesson.LogProbabilities[i]), i == SkyIsBlueLesson.Blue ? "1" : "0");
}
Console.WriteLine(softmax);

Console.WriteLine("Cross-entropy = −log p(blue), three ways:");
Console.WriteLine(new TextTable("computed by", "loss")
    .Row("hand: −log(softmax(logits)[blue])", N(lesson.NllByHand))
    .Row("TorchSharp functional.cross_entropy", N(lesson.TorchSharpCrossEntropy))
    .Row("TorchLoss TokenCrossEntropy", N(lesson.TokenCrossEntropy))
    .Row("perplexity exp(CE)", lesson.Perplexity.ToString("0.000")));

Console.WriteLine($"Label smoothing moves ε = {SkyIsBlueLesson.Epsilon} of the target away from \"blue\"; the loss is CE = H(target) + KL(target‖model):");
var smoothing = new TextTable("target", "q(red, blue, green)", "loss", "H(q)", "KL(q‖p)", "H + KL");
foreach (var t in lesson.Targets)
    smoothing.Row(t.Name, Row(t.Distribution), N(t.Loss), N(t.Entropy), N(t.KlDivergence), N(t.Entropy + t.KlDivergence));
Console.WriteLine(smoothing);
Console.WriteLine("H(q) is the floor: a smoothed loss never reaches 0, and the two conventions differ by how much mass leaves \"blue\".");
Console.WriteLine();

Console.WriteLine("Why not mean squared error on the probabilities? Compare the gradients with respect to the logits:");
foreach (var g in lesson.Gradients)
{
    var gradients = new TextTable("word", "logit", "p", "CE gradient p − y", "MSE gradient");
    for (int i = 0; i < words.Count; i++)
        gradients.Row(words[i], g.Logits[i].ToString("0.0"), N(g.Probabilities[i]), N(g.CrossEntropyGradient[i]), N(g.MseGradient[i]));
    Console.WriteLine($"{g.Name}: CE {N(g.CrossEntropy)}, MSE {N(g.Mse)}");
    Console.WriteLine(gradients);
}
Console.WriteLine("When the model is confidently wrong, softmax saturates and MSE's gradient all but vanishes;");
Console.WriteLine("cross-entropy's gradient p − y stays large exactly when the prediction is most wrong.");
