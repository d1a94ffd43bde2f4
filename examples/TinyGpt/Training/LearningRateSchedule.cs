namespace TinyGpt;

/// <summary>Linear warm-up to the peak learning rate, then cosine decay to the minimum at the last step.</summary>
public static class LearningRateSchedule
{
    /// <summary>The learning rate for optimiser step <paramref name="step"/> (0-based) of a run.</summary>
    public static double At(int step, TrainerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        double max = options.LearningRate;
        double min = options.MinLearningRate ?? max / 10;
        if (step < options.WarmupSteps)
            return max * (step + 1) / options.WarmupSteps;
        int decaySteps = Math.Max(1, options.Steps - options.WarmupSteps);
        double progress = Math.Clamp((double)(step - options.WarmupSteps) / decaySteps, 0, 1);
        return min + 0.5 * (1 + Math.Cos(Math.PI * progress)) * (max - min);
    }
}
