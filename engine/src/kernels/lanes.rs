//! Vectorisable reductions over one row.
//!
//! Every reduction keeps [`LANES`] independent accumulators and walks the row
//! with [`slice::as_chunks`], so the hot loop has no bounds checks and no
//! loop-carried dependency longer than one lane; LLVM turns the fixed-size
//! lane loop into SIMD code (two 4 x f64 vectors with AVX2, four 2 x f64
//! vectors with baseline SSE2). The remainder (`len % LANES` elements) is
//! folded into the first lanes, then the lanes are combined as a balanced
//! tree. No shape is special-cased: a row of 3 elements only runs the
//! remainder loop.
//!
//! `T` is the element type, `A` the accumulator type and `w` the widening
//! conversion `T -> A` (`f64::from` for [`Accumulate::F64`], the identity
//! for [`Accumulate::Native`]); the conversion is inlined into the loop.
//!
//! [`Accumulate::F64`]: super::Accumulate::F64
//! [`Accumulate::Native`]: super::Accumulate::Native

use super::float::Float;

/// Independent accumulators per reduction.
pub(super) const LANES: usize = 8;

/// Folds `x` into `LANES` accumulators with `step`, then combines them.
#[inline(always)]
fn fold<T: Copy, A: Copy>(
    x: &[T],
    init: A,
    step: impl Fn(A, T) -> A,
    combine: impl Fn(A, A) -> A,
) -> A {
    let (chunks, rem) = x.as_chunks::<LANES>();
    let mut acc = [init; LANES];
    for chunk in chunks {
        for (a, &v) in acc.iter_mut().zip(chunk) {
            *a = step(*a, v);
        }
    }
    for (a, &v) in acc.iter_mut().zip(rem) {
        *a = step(*a, v);
    }
    tree(acc, combine)
}

/// Like [`fold`] over two rows of equal length, element by element.
#[inline(always)]
fn fold2<T: Copy, A: Copy>(
    x: &[T],
    y: &[T],
    init: A,
    step: impl Fn(A, T, T) -> A,
    combine: impl Fn(A, A) -> A,
) -> A {
    debug_assert_eq!(x.len(), y.len());
    let (xc, xr) = x.as_chunks::<LANES>();
    let (yc, yr) = y.as_chunks::<LANES>();
    let mut acc = [init; LANES];
    for (cx, cy) in xc.iter().zip(yc) {
        for ((a, &u), &v) in acc.iter_mut().zip(cx).zip(cy) {
            *a = step(*a, u, v);
        }
    }
    for ((a, &u), &v) in acc.iter_mut().zip(xr).zip(yr) {
        *a = step(*a, u, v);
    }
    tree(acc, combine)
}

/// Balanced combination of the lanes.
#[inline(always)]
fn tree<A: Copy>(acc: [A; LANES], f: impl Fn(A, A) -> A) -> A {
    let [a0, a1, a2, a3, a4, a5, a6, a7] = acc;
    f(f(f(a0, a4), f(a2, a6)), f(f(a1, a5), f(a3, a7)))
}

/// NaN-propagating minimum: NaN wins, whichever operand it is.
#[inline(always)]
fn min_nan<T: Float>(acc: T, v: T) -> T {
    if v < acc || v.is_nan() { v } else { acc }
}

/// NaN-propagating maximum: NaN wins, whichever operand it is.
#[inline(always)]
fn max_nan<T: Float>(acc: T, v: T) -> T {
    if v > acc || v.is_nan() { v } else { acc }
}

/// `A` from a row length.
#[inline(always)]
fn count<A: Float>(n: usize) -> A {
    A::from_usize(n)
}

/// Sum of `w(v)`.
#[inline]
pub(super) fn sum<T: Float, A: Float>(x: &[T], w: impl Fn(T) -> A) -> A {
    fold(x, A::ZERO, |a, v| a + w(v), |a, b| a + b)
}

/// Sum of `|w(v)|` (L1 norm).
#[inline]
pub(super) fn sum_abs<T: Float, A: Float>(x: &[T], w: impl Fn(T) -> A) -> A {
    fold(x, A::ZERO, |a, v| a + w(v).abs(), |a, b| a + b)
}

/// Sum of `w(v)^2` (squared L2 norm).
#[inline]
pub(super) fn sum_sq<T: Float, A: Float>(x: &[T], w: impl Fn(T) -> A) -> A {
    fold(
        x,
        A::ZERO,
        |a, v| {
            let v = w(v);
            a + v * v
        },
        |a, b| a + b,
    )
}

/// Arithmetic mean; NaN for an empty row.
#[inline]
pub(super) fn mean<T: Float, A: Float>(x: &[T], w: impl Fn(T) -> A) -> A {
    if x.is_empty() {
        return A::NAN;
    }
    sum(x, w) / count(x.len())
}

/// Two-pass variance with `ddof`; NaN when `len <= ddof`.
#[inline]
pub(super) fn var<T: Float, A: Float>(x: &[T], ddof: u32, w: impl Fn(T) -> A + Copy) -> A {
    let n = x.len();
    let ddof = ddof as usize;
    if n <= ddof {
        return A::NAN;
    }
    let m = sum(x, w) / count(n);
    let ss = fold(
        x,
        A::ZERO,
        |a, v| {
            let d = w(v) - m;
            a + d * d
        },
        |a, b| a + b,
    );
    ss / count(n - ddof)
}

/// NaN-propagating minimum; NaN for an empty row. Exact, so no accumulator.
#[inline]
pub(super) fn min<T: Float>(x: &[T]) -> T {
    if x.is_empty() {
        return T::NAN;
    }
    fold(x, T::INFINITY, min_nan, min_nan)
}

/// NaN-propagating maximum; NaN for an empty row.
#[inline]
pub(super) fn max<T: Float>(x: &[T]) -> T {
    if x.is_empty() {
        return T::NAN;
    }
    fold(x, T::NEG_INFINITY, max_nan, max_nan)
}

/// NaN-propagating maximum of `|v|` (L-infinity norm); 0 for an empty row.
#[inline]
pub(super) fn max_abs<T: Float>(x: &[T]) -> T {
    fold(x, T::ZERO, |a, v| max_nan(a, v.abs()), max_nan)
}

/// Dot product of `x` and `q` (equal lengths).
#[inline]
pub(super) fn dot<T: Float, A: Float>(x: &[T], q: &[T], w: impl Fn(T) -> A) -> A {
    fold2(x, q, A::ZERO, |a, u, v| a + w(u) * w(v), |a, b| a + b)
}

/// Cosine similarity of `x` and `q` given `qq = sum(q^2)`, in one pass over
/// `x`. NaN when either norm is zero.
#[inline]
pub(super) fn cosine<T: Float, A: Float>(x: &[T], q: &[T], qq: A, w: impl Fn(T) -> A) -> A {
    let (xq, xx) = fold2(
        x,
        q,
        (A::ZERO, A::ZERO),
        |(d, s), u, v| {
            let u = w(u);
            (d + u * w(v), s + u * u)
        },
        |(d0, s0), (d1, s1)| (d0 + d1, s0 + s1),
    );
    if xx == A::ZERO || qq == A::ZERO {
        return A::NAN;
    }
    xq / (xx.sqrt() * qq.sqrt())
}
