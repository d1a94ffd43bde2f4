using static TorchSharp.torch;

namespace TinyGpt;

/// <summary>
/// Everything a run needs to continue exactly where it stopped: model weights, optimiser moments, step,
/// the metric totals and history, torch's random generator (dropout) and the data order. Written to a
/// temporary file and renamed over the old one, so a crash mid-write never leaves a broken checkpoint.
/// </summary>
public static class Checkpoint
{
    private const string Magic = "TinyGpt checkpoint v1";

    /// <summary>Atomically writes the state of <paramref name="trainer"/> and <paramref name="source"/> to <paramref name="path"/>.</summary>
    public static void Save(string path, GptTrainer trainer, IBatchSource source, string metadata = "")
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(trainer);
        ArgumentNullException.ThrowIfNull(source);
        string? directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (directory is not null)
            Directory.CreateDirectory(directory);
        string temp = path + ".tmp";
        try
        {
            using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true))
                {
                    writer.Write(Magic);
                    WriteConfig(writer, trainer.Model.Config);
                    writer.Write(metadata ?? "");
                    using (var rng = get_rng_state())
                    {
                        var bytes = rng.data<byte>().ToArray();
                        writer.Write(bytes.Length);
                        writer.Write(bytes);
                    }
                    using (var sourceState = new MemoryStream())
                    {
                        using (var sourceWriter = new BinaryWriter(sourceState, System.Text.Encoding.UTF8, leaveOpen: true))
                            source.SaveState(sourceWriter);
                        writer.Write((int)sourceState.Length);
                        writer.Write(sourceState.GetBuffer(), 0, (int)sourceState.Length);
                    }
                    trainer.SaveState(writer);
                    trainer.Model.save(writer);
                }
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
    }

    /// <summary>The model configuration and metadata stored in a checkpoint, to build the model before <see cref="Load"/>.</summary>
    /// <exception cref="InvalidDataException">The file is not a TinyGpt checkpoint.</exception>
    public static (GptConfig Config, string Metadata) ReadHeader(string path)
    {
        using var reader = new BinaryReader(File.OpenRead(path), System.Text.Encoding.UTF8);
        return ReadHeader(reader, path);
    }

    /// <summary>Restores <paramref name="trainer"/> (model, optimiser, counters), torch's generator and <paramref name="source"/> from <paramref name="path"/>.</summary>
    /// <exception cref="InvalidDataException">The file is not a TinyGpt checkpoint or was written for another model shape.</exception>
    public static void Load(string path, GptTrainer trainer, IBatchSource source)
    {
        ArgumentNullException.ThrowIfNull(trainer);
        ArgumentNullException.ThrowIfNull(source);
        using var reader = new BinaryReader(File.OpenRead(path), System.Text.Encoding.UTF8);
        var (config, _) = ReadHeader(reader, path);
        if (config != trainer.Model.Config)
            throw new InvalidDataException($"Checkpoint {path} holds a model {config}, but the trainer's model is {trainer.Model.Config}.");
        var rngBytes = reader.ReadBytes(reader.ReadInt32());
        var sourceBytes = reader.ReadBytes(reader.ReadInt32());
        using (var sourceReader = new BinaryReader(new MemoryStream(sourceBytes)))
            source.LoadState(sourceReader);
        trainer.LoadState(reader);
        trainer.Model.load(reader);
        using var rng = tensor(rngBytes);
        set_rng_state(rng);
    }

    /// <summary>
    /// The trained model alone from a checkpoint written by <see cref="Save"/> (e.g. a teacher for distillation); the
    /// optimiser state, counters and random generators stored beside it are read and discarded.
    /// </summary>
    /// <exception cref="InvalidDataException">The file is not a TinyGpt checkpoint.</exception>
    public static Gpt LoadModel(string path)
    {
        using var reader = new BinaryReader(File.OpenRead(path), System.Text.Encoding.UTF8);
        var (config, _) = ReadHeader(reader, path);
        reader.ReadBytes(reader.ReadInt32());
        reader.ReadBytes(reader.ReadInt32());
        var model = new Gpt(config);
        try
        {
            // The optimiser state can only be read by an optimiser over the same parameters; it is thrown away with it.
            using (var trainer = new GptTrainer(model, new TrainerOptions()))
                trainer.LoadState(reader);
            model.load(reader);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    private static (GptConfig, string) ReadHeader(BinaryReader reader, string path)
    {
        string magic;
        try
        {
            magic = reader.ReadString();
        }
        catch (Exception e) when (e is EndOfStreamException or IOException)
        {
            throw new InvalidDataException($"{path} is not a TinyGpt checkpoint.", e);
        }
        if (magic != Magic)
            throw new InvalidDataException($"{path} is not a TinyGpt checkpoint (header '{magic}').");
        var config = new GptConfig(reader.ReadInt32(), reader.ReadInt32(), reader.ReadInt32(), reader.ReadInt32(), reader.ReadInt32(), reader.ReadDouble());
        return (config, reader.ReadString());
    }

    private static void WriteConfig(BinaryWriter writer, GptConfig config)
    {
        writer.Write(config.VocabSize);
        writer.Write(config.ContextLength);
        writer.Write(config.Layers);
        writer.Write(config.Heads);
        writer.Write(config.Dim);
        writer.Write(config.Dropout);
    }
}
