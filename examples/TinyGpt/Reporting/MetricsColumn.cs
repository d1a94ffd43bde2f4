namespace TinyGpt;

/// <summary>An extra column of metrics.csv, e.g. a distillation divergence measured at evaluation steps.</summary>
/// <param name="Name">The header.</param>
/// <param name="ValueAtStep">The formatted value at each step that has one; other rows leave the cell empty.</param>
public sealed record MetricsColumn(string Name, IReadOnlyDictionary<int, string> ValueAtStep);
