namespace TinyGpt;

/// <summary>
/// Writes a <see cref="Gpt"/> to a folder that PyTorch and nanoGPT read: the weights as <see cref="SafetensorsFile"/>
/// and <see cref="PyTorchFile"/> (a state_dict), <see cref="NanoGptConfig.FileName"/>, and for a character model
/// <see cref="CharVocabulary.FileName"/>. <see cref="ImportedWeights.Open"/> reads any of the weight files back.
/// </summary>
public static class GptExport
{
    /// <summary>The safetensors copy of the weights.</summary>
    public const string SafetensorsFile = "model.safetensors";

    /// <summary>The PyTorch state_dict copy of the weights (<c>torch.load</c>).</summary>
    public const string PyTorchFile = "model.pt";

    /// <summary>Writes the export into <paramref name="directory"/> (created if needed); every file is written atomically.</summary>
    public static void Write(Gpt model, string directory, CharVocabulary? vocabulary = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(directory);
        if (vocabulary is not null && vocabulary.VocabSize != model.Config.VocabSize)
            throw new ArgumentException($"The vocabulary has {vocabulary.VocabSize} tokens but the model {model.Config.VocabSize}.", nameof(vocabulary));
        Directory.CreateDirectory(directory);
        GptWeights.Save(model, Path.Combine(directory, SafetensorsFile));
        GptWeights.Save(model, Path.Combine(directory, PyTorchFile));
        NanoGptConfig.From(model.Config).Write(Path.Combine(directory, NanoGptConfig.FileName));
        string meta = Path.Combine(directory, CharVocabulary.FileName);
        if (vocabulary is not null)
            vocabulary.Write(meta);
        else
            File.Delete(meta); // a stale vocabulary from an earlier export would describe other ids
    }
}
