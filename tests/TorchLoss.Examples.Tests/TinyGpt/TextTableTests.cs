using TinyGpt;

namespace TorchLoss.Examples.Tests.TinyGpt;

/// <summary>The examples' one table printer.</summary>
public sealed class TextTableTests
{
    private static TextTable Sample() => new TextTable("word", "p").Row("red", "0.0900").Row("blue", "0.6652");

    [Fact]
    public void Plain_text_aligns_the_first_column_left_and_the_others_right()
    {
        Assert.Equal(
            "word       p\n" +
            "----  ------\n" +
            "red   0.0900\n" +
            "blue  0.6652\n", Sample().ToPlainText().ReplaceLineEndings("\n"));
    }

    [Fact]
    public void Markdown_is_padded_and_right_aligns_the_number_columns()
    {
        Assert.Equal(
            "| word |      p |\n" +
            "|------|-------:|\n" +
            "| red  | 0.0900 |\n" +
            "| blue | 0.6652 |\n", Sample().ToMarkdown().ReplaceLineEndings("\n"));
    }

    [Fact]
    public void A_row_with_the_wrong_number_of_cells_is_refused()
    {
        var error = Assert.Throws<ArgumentException>(() => new TextTable("a", "b").Row("only one"));
        Assert.Contains("needs 2 cells, got 1", error.Message);
    }
}
