namespace TorchLoss;

/// <summary>Defaults shared by every loss, tracker and SFT helper, so that one value means one thing across the library.</summary>
public static class LossDefaults
{
    /// <summary>
    /// The label value that is not counted: PyTorch's <c>ignore_index</c> default, also what Hugging Face's collators
    /// write for padding and prompt tokens, so labels made there can be used here unchanged.
    /// </summary>
    public const long IgnoreIndex = -100;
}
