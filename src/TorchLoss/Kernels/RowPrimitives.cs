using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;

namespace TorchLoss.Kernels;

/// <summary>
/// The vector operations of the kernels for float and double. The reductions are written here with four
/// accumulators (short rows are common and TensorPrimitives' generic reductions are slower on them); the
/// exponential calls TensorPrimitives' non-generic overloads, which are faster than the generic ones.
/// </summary>
internal static class RowPrimitives
{
    /// <summary>The maximum of <paramref name="x"/> (NaN if any is NaN) and Σ x, in one read.</summary>
    /// <remarks>The sum is always computed: it costs one add per vector and is how a NaN is detected.</remarks>
    public static T MaxAndSum<T>(ReadOnlySpan<T> x, out T sum) where T : unmanaged, IFloatingPointIeee754<T>
    {
        T max = T.NegativeInfinity;
        sum = T.Zero;
        int i = 0;
        if (Vector.IsHardwareAccelerated && x.Length >= Vector<T>.Count)
        {
            var vectors = MemoryMarshal.Cast<T, Vector<T>>(x);
            var m0 = new Vector<T>(T.NegativeInfinity);
            var m1 = m0;
            Vector<T> s0 = Vector<T>.Zero, s1 = Vector<T>.Zero;
            int k = 0;
            for (; k + 2 <= vectors.Length; k += 2)
            {
                m0 = Vector.Max(m0, vectors[k]);
                m1 = Vector.Max(m1, vectors[k + 1]);
                s0 += vectors[k];
                s1 += vectors[k + 1];
            }
            for (; k < vectors.Length; k++)
            {
                m0 = Vector.Max(m0, vectors[k]);
                s0 += vectors[k];
            }
            var mv = Vector.Max(m0, m1);
            for (int lane = 0; lane < Vector<T>.Count; lane++) max = Max(max, mv[lane]);
            sum = Vector.Sum(s0 + s1);
            i = vectors.Length * Vector<T>.Count;
        }
        for (; i < x.Length; i++)
        {
            max = Max(max, x[i]);
            sum += x[i];
        }
        // Vector.Max does not propagate NaN; the sum does.
        if (T.IsNaN(sum)) max = T.NaN;
        return max;
    }

    /// <summary>e = exp(x − shift); returns Σ e. <paramref name="e"/> may be <paramref name="x"/>'s memory.</summary>
    public static T ShiftedExpSum<T>(ReadOnlySpan<T> x, T shift, Span<T> e) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (typeof(T) == typeof(float))
        {
            var ef = MemoryMarshal.Cast<T, float>(e);
            TensorPrimitives.Subtract(MemoryMarshal.Cast<T, float>(x), float.CreateTruncating(shift), ef);
            TensorPrimitives.Exp(ef, ef);
        }
        else if (typeof(T) == typeof(double))
        {
            var ed = MemoryMarshal.Cast<T, double>(e);
            TensorPrimitives.Subtract(MemoryMarshal.Cast<T, double>(x), double.CreateTruncating(shift), ed);
            TensorPrimitives.Exp(ed, ed);
        }
        else
        {
            TensorPrimitives.Subtract(x, shift, e);
            TensorPrimitives.Exp<T>(e, e);
        }
        return Sum<T>(e);
    }

    /// <summary>Σ x.</summary>
    public static T Sum<T>(ReadOnlySpan<T> x) where T : unmanaged, IFloatingPointIeee754<T>
    {
        T sum = T.Zero;
        int i = 0;
        if (Vector.IsHardwareAccelerated && x.Length >= Vector<T>.Count)
        {
            var vectors = MemoryMarshal.Cast<T, Vector<T>>(x);
            Vector<T> a0 = Vector<T>.Zero, a1 = Vector<T>.Zero, a2 = Vector<T>.Zero, a3 = Vector<T>.Zero;
            int k = 0;
            for (; k + 4 <= vectors.Length; k += 4)
            {
                a0 += vectors[k];
                a1 += vectors[k + 1];
                a2 += vectors[k + 2];
                a3 += vectors[k + 3];
            }
            for (; k < vectors.Length; k++) a0 += vectors[k];
            sum = Vector.Sum((a0 + a1) + (a2 + a3));
            i = vectors.Length * Vector<T>.Count;
        }
        for (; i < x.Length; i++) sum += x[i];
        return sum;
    }

    /// <summary>values[i] = values[i]·scale + shift.</summary>
    public static void ScaleAndShift<T>(Span<T> values, T scale, T shift) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated && values.Length >= Vector<T>.Count)
        {
            var vectors = MemoryMarshal.Cast<T, Vector<T>>(values);
            var s = new Vector<T>(scale);
            var h = new Vector<T>(shift);
            for (int k = 0; k < vectors.Length; k++) vectors[k] = vectors[k] * s + h;
            i = vectors.Length * Vector<T>.Count;
        }
        for (; i < values.Length; i++) values[i] = values[i] * scale + shift;
    }

    /// <summary>e = exp((x − shift)·scale); returns Σ e. <paramref name="e"/> may be <paramref name="x"/>'s memory.</summary>
    public static T ShiftedExpSum<T>(ReadOnlySpan<T> x, T shift, T scale, Span<T> e) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (scale == T.One) return ShiftedExpSum(x, shift, e);
        TensorPrimitives.Subtract(x, shift, e);
        TensorPrimitives.Multiply(e, scale, e);
        if (typeof(T) == typeof(float))
            TensorPrimitives.Exp(MemoryMarshal.Cast<T, float>(e), MemoryMarshal.Cast<T, float>(e));
        else if (typeof(T) == typeof(double))
            TensorPrimitives.Exp(MemoryMarshal.Cast<T, double>(e), MemoryMarshal.Cast<T, double>(e));
        else
            TensorPrimitives.Exp<T>(e, e);
        return Sum<T>(e);
    }

    /// <summary>
    /// Σ w·(x − shift) over the entries where w ≠ 0: a weight of 0 contributes nothing even where x is −∞
    /// (0·log 0 = 0), while a positive weight on x = −∞ gives −∞.
    /// </summary>
    public static T WeightedShiftedSum<T>(ReadOnlySpan<T> weights, ReadOnlySpan<T> x, T shift) where T : unmanaged, IFloatingPointIeee754<T>
    {
        T sum = T.Zero;
        int i = 0;
        if (Vector.IsHardwareAccelerated && weights.Length >= Vector<T>.Count)
        {
            var w = MemoryMarshal.Cast<T, Vector<T>>(weights);
            var v = MemoryMarshal.Cast<T, Vector<T>>(x[..weights.Length]);
            var h = new Vector<T>(shift);
            Vector<T> a0 = Vector<T>.Zero, a1 = Vector<T>.Zero;
            int k = 0;
            for (; k + 2 <= w.Length; k += 2)
            {
                a0 += Vector.ConditionalSelect(Vector.Equals(w[k], Vector<T>.Zero), Vector<T>.Zero, w[k] * (v[k] - h));
                a1 += Vector.ConditionalSelect(Vector.Equals(w[k + 1], Vector<T>.Zero), Vector<T>.Zero, w[k + 1] * (v[k + 1] - h));
            }
            for (; k < w.Length; k++)
                a0 += Vector.ConditionalSelect(Vector.Equals(w[k], Vector<T>.Zero), Vector<T>.Zero, w[k] * (v[k] - h));
            sum = Vector.Sum(a0 + a1);
            i = w.Length * Vector<T>.Count;
        }
        for (; i < weights.Length; i++)
        {
            if (weights[i] != T.Zero) sum += weights[i] * (x[i] - shift);
        }
        return sum;
    }

    /// <summary>values[i] = values[i]·a − other[i]·b.</summary>
    public static void ScaledDifference<T>(Span<T> values, T a, ReadOnlySpan<T> other, T b) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated && values.Length >= Vector<T>.Count)
        {
            var v = MemoryMarshal.Cast<T, Vector<T>>(values);
            var o = MemoryMarshal.Cast<T, Vector<T>>(other[..values.Length]);
            var va = new Vector<T>(a);
            var vb = new Vector<T>(b);
            for (int k = 0; k < v.Length; k++) v[k] = v[k] * va - o[k] * vb;
            i = v.Length * Vector<T>.Count;
        }
        for (; i < values.Length; i++) values[i] = values[i] * a - other[i] * b;
    }

    private static T Max<T>(T a, T b) where T : IFloatingPointIeee754<T> => b > a ? b : a;
}
