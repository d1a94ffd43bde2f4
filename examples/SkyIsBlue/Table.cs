using System.Text;

namespace TorchLoss.Examples.SkyIsBlue;

/// <summary>A plain-text table for the console: the first column left-aligned, the others right-aligned.</summary>
public sealed class Table(params string[] headers)
{
    private readonly List<string[]> _rows = [];

    /// <summary>Adds a row; numbers should already be formatted.</summary>
    public Table Row(params string[] cells)
    {
        if (cells.Length != headers.Length)
            throw new ArgumentException($"a row needs {headers.Length} cells, got {cells.Length}.", nameof(cells));
        _rows.Add(cells);
        return this;
    }

    /// <summary>The table with a header rule, ready to print.</summary>
    public override string ToString()
    {
        var all = _rows.Prepend(headers).ToList();
        int[] widths = Enumerable.Range(0, headers.Length).Select(c => all.Max(r => r[c].Length)).ToArray();
        var text = new StringBuilder();
        foreach (var row in all)
        {
            text.AppendJoin("  ", row.Select((cell, c) => c == 0 ? cell.PadRight(widths[c]) : cell.PadLeft(widths[c])));
            text.AppendLine();
            if (row == headers)
                text.AppendJoin("  ", widths.Select(w => new string('-', w))).AppendLine();
        }
        return text.ToString();
    }
}
