using TorchSharp;
namespace TorchLoss.Tests;
public class SmokeTests
{
    [Fact]
    public void TensorOperationRunsInTestProcess()
    {
        using var a = torch.tensor(new float[] { 1, 2, 3 });
        using var b = a * 2;
        Assert.Equal(12f, b.sum().item<float>());
    }
}
