using System.Text;

namespace TinyGpt;

/// <summary>
/// The examples' one table printer: cells given as text, the first column left-aligned and the others right-aligned
/// (numbers), printed as plain text for the console or as a Markdown table.
/// </summary>
public sealed class TextTable
{
    private readonly string[] headers;
    private readonly List<string[]> rows = [];

    /// <summary>A table with these column headers.</summary>
    public TextTable(params string[] headers)
    {
        ArgumentNullException.ThrowIfNull(headers);
        if (headers.Length == 0)
            throw new ArgumentException("A table needs at least one column.", nameof(headers));
        this.headers = headers;
    }

    /// <summary>Adds a row; numbers should already be formatted.</summary>
    /// <exception cref="ArgumentException">The row has another number of cells than the table has columns.</exception>
    public TextTable Row(params string[] cells)
    {
        ArgumentNullException.ThrowIfNull(cells);
        if (cells.Length != headers.Length)
            throw new ArgumentException($"a row needs {headers.Length} cells, got {cells.Length}.", nameof(cells));
        rows.Add(cells);
        return this;
    }

    /// <summary>The table as plain text: columns two spaces apart, a rule of dashes under the headers.</summary>
    public string ToPlainText()
    {
        int[] widths = Widths();
        var text = new StringBuilder();
        text.AppendJoin("  ", Aligned(headers, widths)).AppendLine();
        text.AppendJoin("  ", widths.Select(w => new string('-', w))).AppendLine();
        foreach (var row in rows)
            text.AppendJoin("  ", Aligned(row, widths)).AppendLine();
        return text.ToString();
    }

    /// <summary>The table as Markdown, padded so that it also reads as a table in plain text.</summary>
    public string ToMarkdown()
    {
        int[] widths = Widths();
        var text = new StringBuilder();
        AppendMarkdownRow(text, Aligned(headers, widths));
        text.Append('|').Append(new string('-', widths[0] + 2));
        foreach (int width in widths.Skip(1))
            text.Append('|').Append(new string('-', width + 1)).Append(':');
        text.AppendLine("|");
        foreach (var row in rows)
            AppendMarkdownRow(text, Aligned(row, widths));
        return text.ToString();
    }

    /// <summary>The plain-text table.</summary>
    public override string ToString() => ToPlainText();

    private int[] Widths() =>
        Enumerable.Range(0, headers.Length).Select(c => rows.Select(r => r[c].Length).Prepend(headers[c].Length).Max()).ToArray();

    private static IEnumerable<string> Aligned(string[] cells, int[] widths) =>
        cells.Select((cell, c) => c == 0 ? cell.PadRight(widths[c]) : cell.PadLeft(widths[c]));

    private static void AppendMarkdownRow(StringBuilder text, IEnumerable<string> cells) =>
        text.Append("| ").AppendJoin(" | ", cells).AppendLine(" |");
}
