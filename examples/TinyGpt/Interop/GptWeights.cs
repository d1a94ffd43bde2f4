using System.Collections;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace TinyGpt;

/// <summary>
/// A <see cref="Gpt"/>'s weights under nanoGPT's parameter names, saved and loaded as safetensors or as a PyTorch
/// <c>state_dict</c> file (<c>torch.save</c> / <c>torch.load</c>), both through TorchSharp.PyBridge.
/// </summary>
/// <remarks>
/// TinyGpt computes exactly nanoGPT's GPT (bias = True): pre-norm blocks, LayerNorm eps 1e-5, a fused q|k|v projection
/// split in that order, attention scaled by 1/√(head size), exact GELU, and a bias-free head tied to the token
/// embedding. Only the names differ, so the mapping is a renaming: <c>wte</c>, <c>wpe</c>, <c>blocks.N</c> and
/// <c>ln_f</c> live under <c>transformer.</c> (blocks as <c>h.N</c>), and the tied head is written a second time as
/// <c>lm_head.weight</c>, as nanoGPT's own <c>state_dict()</c> lists it.
/// </remarks>
public static class GptWeights
{
    /// <summary>nanoGPT's name of the output head, which TinyGpt ties to <see cref="TokenEmbedding"/>.</summary>
    public const string Head = "lm_head.weight";

    /// <summary>nanoGPT's name of the token embedding.</summary>
    public const string TokenEmbedding = "transformer.wte.weight";

    private const string PositionEmbedding = "transformer.wpe.weight";

    private const string BlockPrefix = "transformer.h.";

    private const string BlocksPrefix = "blocks.";

    // torch.compile wraps a model and prefixes its state_dict keys with this; nanoGPT's train.py saves them so.
    private const string CompiledPrefix = "_orig_mod.";

    /// <summary>The nanoGPT name of one of <see cref="Gpt"/>'s parameters.</summary>
    public static string ToNanoGptName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return "transformer." + (name.StartsWith(BlocksPrefix, StringComparison.Ordinal) ? "h." + name[BlocksPrefix.Length..] : name);
    }

    /// <summary>
    /// The model's weights under nanoGPT's names, in nanoGPT's order, the tied head included: detached views of the
    /// parameters (no copy), to dispose after use.
    /// </summary>
    public static Dictionary<string, Tensor> StateDict(Gpt model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var state = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, p) in model.named_parameters())
            state.Add(ToNanoGptName(name), p.detach());
        state.Add(Head, model.HeadWeight.detach());
        return state;
    }

    /// <summary>Saves the model's weights to <paramref name="path"/>, atomically: safetensors for a .safetensors name, a PyTorch state_dict for .pt, .pth or .bin.</summary>
    /// <exception cref="ArgumentException">The file name has another extension.</exception>
    public static void Save(Gpt model, string path)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(path);
        bool safetensors = IsSafetensorsName(path);
        if (!safetensors && !IsPyTorchName(path))
            throw new ArgumentException($"Cannot tell the format of '{path}': name it .safetensors, or .pt, .pth or .bin for a PyTorch state_dict.", nameof(path));
        using var scope = NewDisposeScope();
        var state = StateDict(model);
        AtomicFile.Write(path, stream =>
        {
            if (safetensors)
                Safetensors.SaveStateDict(stream, state, leaveOpen: true);
            else
                PyTorchPickler.PickleStateDict(stream, state, leaveOpen: true);
        });
    }

    /// <summary>
    /// Reads every tensor of a safetensors file or a PyTorch state_dict file (told apart by their contents), or the
    /// <c>model</c> entry of a nanoGPT training checkpoint. The caller owns (disposes) the tensors.
    /// </summary>
    /// <exception cref="InvalidDataException">The file is neither, or holds something other than a dictionary of tensors.</exception>
    public static Dictionary<string, Tensor> Read(string path) => ReadWithModelArgs(path).State;

    /// <summary><see cref="Read"/>, and the <c>model_args</c> a nanoGPT training checkpoint stores (null in other files).</summary>
    internal static (Dictionary<string, Tensor> State, NanoGptConfig? ModelArgs) ReadWithModelArgs(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path))
            throw new FileNotFoundException($"There is no weights file '{path}'.", path);
        var head = new byte[9];
        int read;
        using (var stream = File.OpenRead(path))
            read = stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        try
        {
            if (read >= 4 && head[0] == (byte)'P' && head[1] == (byte)'K' && head[2] == 3 && head[3] == 4)
                return FromPickle(PyTorchUnpickler.UnpickleStateDict(path), path);
            if (read == head.Length && head[8] == (byte)'{')
                return (Safetensors.LoadStateDict(path), null);
        }
        catch (Exception e) when (e is not InvalidDataException and not OutOfMemoryException)
        {
            // PyBridge signals content it cannot read with several exception types (NotImplementedException for unknown
            // pickle opcodes, InvalidCastException, …); all of them mean the file is not weights this loader understands.
            throw new InvalidDataException($"'{path}' could not be read as weights: {e.Message}", e);
        }
        throw new InvalidDataException($"'{path}' is neither safetensors nor a PyTorch (zip) state_dict file.");
    }

    /// <summary>
    /// Copies nanoGPT-named weights into <paramref name="model"/>, strictly: every parameter must be there with its exact
    /// shape, and nothing else may be. Accepted too: only one of the two tied names, a model without biases (nanoGPT's
    /// bias = False: TinyGpt's biases become zero), keys from a <c>torch.compile</c>d model, and the causal-mask buffers
    /// nanoGPT stores on PyTorch &lt; 2.0. The model is left untouched when anything is wrong.
    /// </summary>
    /// <exception cref="InvalidDataException">A weight is missing, unexpected, misshapen, not floating point, or the head is not tied to the embedding.</exception>
    public static void Load(Gpt model, IReadOnlyDictionary<string, Tensor> state)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(state);
        var byName = WithoutCompiledPrefix(state);
        var unused = new HashSet<string>(byName.Keys, StringComparer.Ordinal);
        var problems = new List<string>();
        var parameters = model.named_parameters().Select(p => (Name: ToNanoGptName(p.name), Parameter: p.parameter)).ToList();
        bool biasFree = !parameters.Any(p => IsBias(p.Name) && byName.ContainsKey(p.Name));

        var copies = new List<(Tensor Target, Tensor? Source)>();
        foreach (var (name, parameter) in parameters)
        {
            Tensor? source;
            if (name == TokenEmbedding)
                source = TiedHead(byName, unused, problems);
            else if (biasFree && IsBias(name))
                source = null;
            else if (byName.TryGetValue(name, out source))
                unused.Remove(name);
            else
            {
                problems.Add($"missing {name}");
                continue;
            }
            if (source is not null && !source.shape.SequenceEqual(parameter.shape))
                problems.Add($"{name} is [{string.Join(", ", source.shape)}] but the model's is [{string.Join(", ", parameter.shape)}]");
            else if (source is not null && !source.is_floating_point())
                problems.Add($"{name} is {source.dtype}, not floating point");
            else
                copies.Add((parameter, source));
        }
        unused.RemoveWhere(name => IsCausalMask(name, byName[name]));
        problems.AddRange(unused.Order(StringComparer.Ordinal).Select(name => $"unexpected {name}"));
        if (problems.Count > 0)
            throw new InvalidDataException($"The weights do not fit this model ({model.Config}): {string.Join("; ", problems.Take(8))}{(problems.Count > 8 ? $"; and {problems.Count - 8} more" : "")}.");

        using var noGrad = no_grad();
        foreach (var (target, source) in copies)
        {
            if (source is null)
                target.zero_();
            else
                target.copy_(source);
        }
    }

    /// <summary>Reads <paramref name="path"/> (<see cref="Read"/>) and loads it into <paramref name="model"/> (<see cref="Load(Gpt, IReadOnlyDictionary{string, Tensor})"/>).</summary>
    public static void Load(Gpt model, string path)
    {
        ArgumentNullException.ThrowIfNull(model);
        var state = Read(path);
        try
        {
            Load(model, state);
        }
        finally
        {
            foreach (var tensor in state.Values)
                tensor.Dispose();
        }
    }

    /// <summary>
    /// The shape that nanoGPT-named weights imply; attention heads cannot be read from weights, so they are given.
    /// </summary>
    /// <exception cref="InvalidDataException">The embeddings are missing, or the shape is not a valid model.</exception>
    public static NanoGptConfig InferConfig(IReadOnlyDictionary<string, Tensor> state, int heads)
    {
        ArgumentNullException.ThrowIfNull(state);
        var byName = WithoutCompiledPrefix(state);
        var embedding = byName.GetValueOrDefault(TokenEmbedding) ?? byName.GetValueOrDefault(Head)
            ?? throw new InvalidDataException($"The weights have no {TokenEmbedding} (nor {Head}), so their shape cannot be inferred.");
        var positions = byName.GetValueOrDefault(PositionEmbedding)
            ?? throw new InvalidDataException($"The weights have no {PositionEmbedding}, so their context length cannot be inferred.");
        var blockKeys = byName.Keys.Where(k => k.StartsWith(BlockPrefix, StringComparison.Ordinal)).ToList();
        return new NanoGptConfig
        {
            VocabSize = (int)embedding.shape[0], Dim = (int)embedding.shape[1], BlockSize = (int)positions.shape[0],
            Layers = blockKeys.Select(k => k.Split('.')[2]).Distinct(StringComparer.Ordinal).Count(), Heads = heads,
            Bias = blockKeys.Any(k => IsBias(k) && !IsCausalMaskName(k)),
        };
    }

    /// <summary>Whether <paramref name="path"/> names a safetensors file.</summary>
    public static bool IsSafetensorsName(string path) => Path.GetExtension(path).Equals(".safetensors", StringComparison.OrdinalIgnoreCase);

    private static bool IsPyTorchName(string path) => Path.GetExtension(path).ToLowerInvariant() is ".pt" or ".pth" or ".bin";

    private static bool IsBias(string name) => name.EndsWith(".bias", StringComparison.Ordinal);

    // nanoGPT ties by making wte's parameter the head's, so a state_dict lists the one tensor under both names.
    private static Tensor? TiedHead(Dictionary<string, Tensor> byName, HashSet<string> unused, List<string> problems)
    {
        byName.TryGetValue(TokenEmbedding, out var embedding);
        byName.TryGetValue(Head, out var head);
        unused.Remove(TokenEmbedding);
        unused.Remove(Head);
        if (embedding is null && head is null)
        {
            problems.Add($"missing {TokenEmbedding} (or its tied twin {Head})");
            return null;
        }
        if (embedding is not null && head is not null && !SameValues(embedding, head))
            problems.Add($"{Head} differs from {TokenEmbedding}: TinyGpt ties its head to the token embedding, as nanoGPT does");
        return embedding ?? head;
    }

    // nanoGPT on PyTorch < 2.0 registers attn.bias = tril(ones(block_size, block_size)) as a buffer: not a weight, and
    // TinyGpt's attention is causal anyway; anything else under that name is refused.
    private static bool IsCausalMask(string name, Tensor value)
    {
        if (!IsCausalMaskName(name))
            return false;
        if (value.dim() != 4 || value.shape[0] != 1 || value.shape[1] != 1 || value.shape[2] != value.shape[3])
            return false;
        using var scope = NewDisposeScope();
        return SameValues(value, ones(value.shape[2], value.shape[3], dtype: value.dtype).tril().view(value.shape));
    }

    private static bool SameValues(Tensor a, Tensor b)
    {
        if (!a.shape.SequenceEqual(b.shape))
            return false;
        using var scope = NewDisposeScope();
        return (a == b).all().item<bool>();
    }

    private static bool IsCausalMaskName(string name) =>
        name.StartsWith(BlockPrefix, StringComparison.Ordinal) && name.EndsWith(".attn.bias", StringComparison.Ordinal);

    private static Dictionary<string, Tensor> WithoutCompiledPrefix(IReadOnlyDictionary<string, Tensor> state) =>
        state.ToDictionary(p => p.Key.StartsWith(CompiledPrefix, StringComparison.Ordinal) ? p.Key[CompiledPrefix.Length..] : p.Key, p => p.Value, StringComparer.Ordinal);

    private static (Dictionary<string, Tensor>, NanoGptConfig?) FromPickle(Hashtable table, string path)
    {
        // nanoGPT's train.py saves {'model': state_dict, 'optimizer': ..., 'model_args': {n_layer, ...}, ...}.
        NanoGptConfig? modelArgs = null;
        if (table["model"] is Hashtable model)
        {
            if (table["model_args"] is Hashtable args)
                modelArgs = ModelArgs(args, path);
            table = model;
        }
        var state = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (DictionaryEntry entry in table)
        {
            if (entry.Key is not string name || entry.Value is not Tensor tensor)
                throw new InvalidDataException($"'{path}' is not a state_dict: its entry {entry.Key} is {entry.Value?.GetType().Name ?? "null"}, not a tensor.");
            state.Add(name, tensor);
        }
        return (state, modelArgs);
    }

    private static NanoGptConfig ModelArgs(Hashtable args, string path)
    {
        int Int(string key) => args[key] is { } value and not bool
            ? Convert.ToInt32(value, System.Globalization.CultureInfo.InvariantCulture)
            : throw new InvalidDataException($"The model_args of '{path}' have no {key}.");
        return new NanoGptConfig
        {
            BlockSize = Int("block_size"), VocabSize = Int("vocab_size"), Layers = Int("n_layer"), Heads = Int("n_head"), Dim = Int("n_embd"),
            Dropout = args["dropout"] is { } dropout ? Convert.ToDouble(dropout, System.Globalization.CultureInfo.InvariantCulture) : 0,
            Bias = args["bias"] as bool? ?? true,
        };
    }
}
