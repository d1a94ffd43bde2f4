using TinyGpt;
using static TorchSharp.torch;

namespace TorchLoss.Examples.Tests.Interop;

/// <summary>The files tools/golden/make_golden.py made with real PyTorch, copied beside the tests.</summary>
internal static class Fixtures
{
    /// <summary>nanoGPT's state_dict, written by torch.save.</summary>
    public const string PyTorch = "nanogpt.pt";

    /// <summary>The same tensors as safetensors.</summary>
    public const string Safetensors = "nanogpt.safetensors";

    /// <summary>The same weights in nanoGPT's train.py checkpoint: model (torch.compile's key prefix), optimizer, model_args.</summary>
    public const string TrainingCheckpoint = "nanogpt_ckpt.pt";

    public static string Folder { get; } = Path.Combine(AppContext.BaseDirectory, "Interop", "Fixtures");

    public static string File(string name) => Path.Combine(Folder, name);

    /// <summary>ids, targets, PyTorch's logits, loss and grad.&lt;name&gt; tensors; dispose the values.</summary>
    public static Dictionary<string, Tensor> Golden() => GptWeights.Read(File("golden.safetensors"));

    public static void DisposeAll(IEnumerable<Tensor> tensors)
    {
        foreach (var tensor in tensors)
            tensor.Dispose();
    }
}
