using static TorchSharp.torch;

namespace TinyGpt;

/// <summary>
/// Weights read from a safetensors or PyTorch file (<see cref="GptWeights.Read"/>), with their shape and vocabulary:
/// the shape from <see cref="NanoGptConfig.FileName"/> beside the file, else a nanoGPT checkpoint's <c>model_args</c>, else
/// the tensors' shapes; the vocabulary from <see cref="CharVocabulary.FileName"/> beside the file, if there. Owns the tensors.
/// </summary>
public sealed class ImportedWeights : IDisposable
{
    private ImportedWeights(string path, Dictionary<string, Tensor> state, NanoGptConfig config, string configSource, CharVocabulary? vocabulary)
    {
        Path = path;
        State = state;
        Config = config;
        ConfigSource = configSource;
        Vocabulary = vocabulary;
    }

    /// <summary>The weights file.</summary>
    public string Path { get; }

    /// <summary>The tensors under their names in the file.</summary>
    public IReadOnlyDictionary<string, Tensor> State { get; }

    /// <summary>The model's shape.</summary>
    public NanoGptConfig Config { get; }

    /// <summary>Where <see cref="Config"/> came from: <see cref="NanoGptConfig.FileName"/>, "model_args", or "tensor shapes" (heads as given to <see cref="Open"/>).</summary>
    public string ConfigSource { get; }

    /// <summary>The character vocabulary beside the weights, or null.</summary>
    public CharVocabulary? Vocabulary { get; }

    /// <summary>Reads <paramref name="path"/> and what lies beside it.</summary>
    /// <param name="path">A safetensors or PyTorch state_dict file.</param>
    /// <param name="heads">Attention heads, used only when neither config.json nor model_args give them (they cannot be read from weights).</param>
    /// <exception cref="InvalidDataException">A file is unreadable or malformed.</exception>
    public static ImportedWeights Open(string path, int heads)
    {
        ArgumentNullException.ThrowIfNull(path);
        string directory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!;
        string configPath = System.IO.Path.Combine(directory, NanoGptConfig.FileName);
        string metaPath = System.IO.Path.Combine(directory, CharVocabulary.FileName);
        var vocabulary = File.Exists(metaPath) ? CharVocabulary.Read(metaPath) : null;
        var config = File.Exists(configPath) ? NanoGptConfig.Read(configPath) : null;
        var (state, modelArgs) = GptWeights.ReadWithModelArgs(path);
        try
        {
            return config is not null ? new ImportedWeights(path, state, config, NanoGptConfig.FileName, vocabulary)
                : modelArgs is not null ? new ImportedWeights(path, state, modelArgs, "model_args", vocabulary)
                : new ImportedWeights(path, state, GptWeights.InferConfig(state, heads), "tensor shapes", vocabulary);
        }
        catch
        {
            foreach (var tensor in state.Values)
                tensor.Dispose();
            throw;
        }
    }

    /// <summary>A new model of this shape holding these weights; <paramref name="dropout"/> replaces the stored dropout when given.</summary>
    /// <exception cref="InvalidDataException">The weights do not fit the shape (see <see cref="GptWeights.Load(Gpt, IReadOnlyDictionary{string, Tensor})"/>).</exception>
    public Gpt CreateModel(double? dropout = null)
    {
        GptConfig config;
        try
        {
            config = Config.ToGptConfig(dropout);
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"The shape given for '{Path}' is not a valid model: {e.Message}", e);
        }
        var model = new Gpt(config);
        try
        {
            GptWeights.Load(model, State);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>Frees the tensors.</summary>
    public void Dispose()
    {
        foreach (var tensor in State.Values)
            tensor.Dispose();
    }
}
