using System.Security.Cryptography;
using TorchLoss.Metrics;
using static TorchSharp.torch;

namespace TinyGpt;

/// <summary>
/// Everything a run needs to continue exactly where it stopped: model weights, optimiser moments, step,
/// the metric totals and history, torch's random generator (dropout) and the data order.
/// </summary>
/// <remarks>
/// Written through <see cref="AtomicFile"/>, so a crash mid-write never leaves a broken checkpoint, and sealed by a
/// SHA-256 of its contents, so a truncated or damaged file is refused before anything is restored from it.
/// </remarks>
public static class Checkpoint
{
    private const string Magic = "TinyGpt checkpoint v4";   // v4: training and evaluation seconds kept apart
    private const int HashLength = SHA256.HashSizeInBytes;

    /// <summary>Atomically writes the state of <paramref name="trainer"/> and <paramref name="source"/> to <paramref name="path"/>.</summary>
    public static void Save(string path, GptTrainer trainer, IBatchSource source, string metadata = "")
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(trainer);
        ArgumentNullException.ThrowIfNull(source);
        using var payload = new MemoryStream();
        using (var writer = new BinaryWriter(payload, System.Text.Encoding.UTF8, leaveOpen: true))
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
            WriteState(writer, trainer, source);
        }
        byte[] hash = SHA256.HashData(payload.GetBuffer().AsSpan(0, (int)payload.Length));
        AtomicFile.Write(path, stream =>
        {
            stream.Write(payload.GetBuffer(), 0, (int)payload.Length);
            stream.Write(hash);
        });
    }

    /// <summary>The model configuration and metadata stored in a checkpoint, to build the model before <see cref="Load"/>.</summary>
    /// <exception cref="InvalidDataException">The file is not a TinyGpt checkpoint, or it is truncated or damaged.</exception>
    public static (GptConfig Config, string Metadata) ReadHeader(string path)
    {
        using var reader = new BinaryReader(new MemoryStream(ReadVerified(path)), System.Text.Encoding.UTF8);
        return ReadHeader(reader, path);
    }

    /// <summary>
    /// Restores <paramref name="trainer"/> (model, optimiser, counters), torch's generator and <paramref name="source"/> from
    /// <paramref name="path"/>. On any failure the trainer, the source and the generator are left exactly as they were.
    /// </summary>
    /// <exception cref="InvalidDataException">The file is not a TinyGpt checkpoint, is truncated or damaged, or was written for another model shape.</exception>
    public static void Load(string path, GptTrainer trainer, IBatchSource source)
    {
        ArgumentNullException.ThrowIfNull(trainer);
        ArgumentNullException.ThrowIfNull(source);
        using var reader = new BinaryReader(new MemoryStream(ReadVerified(path)), System.Text.Encoding.UTF8);
        var (config, _) = ReadHeader(reader, path);
        if (config != trainer.Model.Config)
            throw new InvalidDataException($"Checkpoint {path} holds a model {config}, but the trainer's model is {trainer.Model.Config}.");
        var rngBytes = reader.ReadBytes(reader.ReadInt32());

        // The hash rules out damage, but a checkpoint from another program version can still fail half-way through:
        // keep the current state so such a failure changes nothing.
        using var before = new MemoryStream();
        using (var writer = new BinaryWriter(before, System.Text.Encoding.UTF8, leaveOpen: true))
            WriteState(writer, trainer, source);
        try
        {
            ReadState(reader, trainer, source);
        }
        catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException or FormatException)
        {
            before.Position = 0;
            using (var restore = new BinaryReader(before, System.Text.Encoding.UTF8, leaveOpen: true))
                ReadState(restore, trainer, source);
            throw new InvalidDataException($"Checkpoint {path} cannot be restored: {e.Message}", e);
        }
        using var rng = tensor(rngBytes);
        set_rng_state(rng);
    }

    private static void WriteState(BinaryWriter writer, GptTrainer trainer, IBatchSource source)
    {
        using (var sourceState = new MemoryStream())
        {
            using (var sourceWriter = new BinaryWriter(sourceState, System.Text.Encoding.UTF8, leaveOpen: true))
                source.SaveState(sourceWriter);
            writer.Write((int)sourceState.Length);
            writer.Write(sourceState.GetBuffer(), 0, (int)sourceState.Length);
        }
        WriteTrainer(writer, trainer);
        trainer.Model.save(writer);
    }

    private static void ReadState(BinaryReader reader, GptTrainer trainer, IBatchSource source)
    {
        var sourceBytes = reader.ReadBytes(reader.ReadInt32());
        using (var sourceReader = new BinaryReader(new MemoryStream(sourceBytes)))
            source.LoadState(sourceReader);
        ReadTrainer(reader, trainer);
        trainer.Model.load(reader);
    }

    /// <summary>The trainer's counters, its <see cref="TrainingHistory"/> and the optimiser's moments.</summary>
    private static void WriteTrainer(BinaryWriter writer, GptTrainer trainer)
    {
        writer.Write(trainer.Step);
        writer.Write(trainer.TrainingSeconds);
        writer.Write(trainer.EvaluationSeconds);
        var totals = trainer.TrainTotals;
        writer.Write(totals.Updates);
        writer.Write(totals.Tokens);
        writer.Write(totals.NllSum);
        writer.Write(totals.SkippedBatches);
        trainer.History.Write(writer);
        trainer.SaveOptimizer(writer);
    }

    /// <summary>Reads what <see cref="WriteTrainer"/> wrote into <paramref name="trainer"/>.</summary>
    private static void ReadTrainer(BinaryReader reader, GptTrainer trainer)
    {
        int step = reader.ReadInt32();
        double trainingSeconds = reader.ReadDouble();
        double evaluationSeconds = reader.ReadDouble();
        var totals = new PerplexitySnapshot(Updates: reader.ReadInt64(), Tokens: reader.ReadInt64(), NllSum: reader.ReadDouble(), SkippedBatches: reader.ReadInt64());
        var rows = TrainingHistory.Read(reader);
        trainer.Restore(step, trainingSeconds, evaluationSeconds, totals, rows);
        trainer.LoadOptimizer(reader);
    }

    /// <summary>The file's contents without the hash, once the hash says they are exactly what was written.</summary>
    private static byte[] ReadVerified(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidDataException($"Checkpoint {path} cannot be read: {e.Message}", e);
        }
        // The header first, so that a file of another kind is named as such rather than as damaged.
        using (var header = new BinaryReader(new MemoryStream(bytes), System.Text.Encoding.UTF8))
            ReadMagic(header, path);
        if (bytes.Length < HashLength + 1)
            throw new InvalidDataException($"Checkpoint {path} is truncated ({bytes.Length} bytes).");
        var payload = bytes.AsSpan(0, bytes.Length - HashLength);
        if (!SHA256.HashData(payload).AsSpan().SequenceEqual(bytes.AsSpan(bytes.Length - HashLength)))
            throw new InvalidDataException($"Checkpoint {path} is truncated or damaged: its contents do not match the SHA-256 written with them.");
        return payload.ToArray();
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
                ReadTrainer(reader, trainer);
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
        ReadMagic(reader, path);
        var config = new GptConfig(reader.ReadInt32(), reader.ReadInt32(), reader.ReadInt32(), reader.ReadInt32(), reader.ReadInt32(), reader.ReadDouble());
        return (config, reader.ReadString());
    }

    private static void ReadMagic(BinaryReader reader, string path)
    {
        string magic;
        try
        {
            magic = reader.ReadString();
        }
        catch (Exception e) when (e is EndOfStreamException or IOException or FormatException)
        {
            throw new InvalidDataException($"{path} is not a TinyGpt checkpoint.", e);
        }
        if (magic != Magic)
            throw new InvalidDataException($"{path} is not a TinyGpt checkpoint of this version (header '{magic}', expected '{Magic}').");
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
