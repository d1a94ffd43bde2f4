namespace TorchLoss;

/// <summary>What <see cref="TorchBackend.UsePassiveOpenMpWaits"/> did, for an application's log.</summary>
/// <param name="TookEffect">True when it set <c>OMP_WAIT_POLICY=PASSIVE</c> in time for OpenMP to read it.</param>
/// <param name="Policy">The policy OpenMP uses or will use (<c>PASSIVE</c>, or the user's), or null for OpenMP's spinning default.</param>
/// <param name="Reason">One sentence: what is in force and why (the user's choice, or libtorch already loaded).</param>
public sealed record OpenMpWaitChoice(bool TookEffect, string? Policy, string Reason)
{
    /// <summary>The <see cref="Reason"/>, which names the policy.</summary>
    public override string ToString() => Reason;
}
