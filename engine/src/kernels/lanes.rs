//! Vectorisable reductions over one row.
//!
//! Every reduction keeps [`LANES`] independent accumulators and walks the row
//! with [`slice::as_chunks`], so the hot loop has no bounds checks and no
//! loop-carried dependency longer than one lane; LLVM turns the fixed-size
//! lane loop into SIMD code (two 4 x f64 vectors with AVX2, four 2 x f64
//! vectors with baseline SSE2). The lanes are combined as a balanced tree;
//! the remainder (`len % LANES` elements) is folded sequentially and added
//! last. A row of 3 elements only runs the remainder loop. These functions
//! take any length; `rows::each_row` calls them with a constant length for
//! a few common widths, and they unroll completely there.
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
///
/// The remainder goes through one sequential accumulator rather than into
/// the lanes: a loop over `acc[..rem.len()]` invites LLVM to vectorise it
/// with masked loads and stores through the stack (AVX2), which costs more
/// than the whole row for narrow rows. Rows shorter than `LANES` never touch
/// the lanes.
#[inline(always)]
fn fold<T: Copy, A: Copy>(
    x: &[T],
    init: A,
    step: impl Fn(A, T) -> A,
    combine: impl Fn(A, A) -> A,
) -> A {
    let (chunks, rem) = x.as_chunks::<LANES>();
    let mut tail = init;
    for &v in rem {
        tail = step(tail, v);
    }
    if chunks.is_empty() {
        return tail;
    }
    let mut acc = [init; LANES];
    for chunk in chunks {
        for (a, &v) in acc.iter_mut().zip(chunk) {
            *a = step(*a, v);
        }
    }
    combine(tree(acc, &combine), tail)
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
    let mut tail = init;
    for (&u, &v) in xr.iter().zip(yr) {
        tail = step(tail, u, v);
    }
    if xc.is_empty() {
        return tail;
    }
    let mut acc = [init; LANES];
    for (cx, cy) in xc.iter().zip(yc) {
        for ((a, &u), &v) in acc.iter_mut().zip(cx).zip(cy) {
            *a = step(*a, u, v);
        }
    }
    combine(tree(acc, &combine), tail)
}

/// Balanced combination of the lanes.
#[inline(always)]
fn tree<A: Copy>(acc: [A; LANES], f: &impl Fn(A, A) -> A) -> A {
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

/// Sum of `w(v)`.
#[inline(always)]
pub(super) fn sum<T: Float, A: Float>(x: &[T], w: impl Fn(T) -> A) -> A {
    fold(x, A::ZERO, |a, v| a + w(v), |a, b| a + b)
}

/// Sum of `|w(v)|` (L1 norm).
#[inline(always)]
pub(super) fn sum_abs<T: Float, A: Float>(x: &[T], w: impl Fn(T) -> A) -> A {
    fold(x, A::ZERO, |a, v| a + w(v).abs(), |a, b| a + b)
}

/// Sum of `w(v)^2` (squared L2 norm).
#[inline(always)]
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

/// Sum of squared deviations from the mean, `sum((w(v) - mean)^2)`, in two
/// passes (the mean first); 0 for an empty row.
#[inline(always)]
pub(super) fn sq_dev<T: Float, A: Float>(x: &[T], w: impl Fn(T) -> A + Copy) -> A {
    if x.is_empty() {
        return A::ZERO;
    }
    let m = sum(x, w) / A::from_usize(x.len());
    fold(
        x,
        A::ZERO,
        |a, v| {
            let d = w(v) - m;
            a + d * d
        },
        |a, b| a + b,
    )
}

/// NaN-propagating minimum; NaN for an empty row. Exact, so no accumulator.
#[inline(always)]
pub(super) fn min<T: Float>(x: &[T]) -> T {
    if x.is_empty() {
        return T::NAN;
    }
    fold(x, T::INFINITY, min_nan, min_nan)
}

/// NaN-propagating maximum; NaN for an empty row.
#[inline(always)]
pub(super) fn max<T: Float>(x: &[T]) -> T {
    if x.is_empty() {
        return T::NAN;
    }
    fold(x, T::NEG_INFINITY, max_nan, max_nan)
}

/// NaN-propagating maximum of `|v|` (L-infinity norm); 0 for an empty row.
#[inline(always)]
pub(super) fn max_abs<T: Float>(x: &[T]) -> T {
    fold(x, T::ZERO, |a, v| max_nan(a, v.abs()), max_nan)
}

/// Dot product of `x` and `q` (equal lengths).
#[inline(always)]
pub(super) fn dot<T: Float, A: Float>(x: &[T], q: &[T], w: impl Fn(T) -> A) -> A {
    fold2(x, q, A::ZERO, |a, u, v| a + w(u) * w(v), |a, b| a + b)
}

/// Elements per block in [`dot_sq`]: a block of `x` is still in L1 when
/// it is read the second time.
const DOT_SQ_BLOCK: usize = 64 * LANES;

/// `(sum(w(x) * w(q)), sum(w(x)^2))`, the two sums of a cosine similarity.
///
/// The row is walked in L1-sized blocks, each reduced twice (dot product,
/// then squared norm) by separate loops. One fused loop would read `x` once
/// but gets vectorised as (dot, square) pairs with a shuffle per element,
/// which is slower than the second read from L1.
#[inline(always)]
pub(super) fn dot_sq<T: Float, A: Float>(x: &[T], q: &[T], w: impl Fn(T) -> A + Copy) -> (A, A) {
    debug_assert_eq!(x.len(), q.len());
    let (mut xq, mut xx) = (A::ZERO, A::ZERO);
    for (xb, qb) in x.chunks(DOT_SQ_BLOCK).zip(q.chunks(DOT_SQ_BLOCK)) {
        xq = xq + dot(xb, qb, w);
        xx = xx + sum_sq(xb, w);
    }
    (xq, xx)
}
