//! Pure, single-threaded row-wise kernels over row-major matrix chunks.
//!
//! A worker hands a kernel a contiguous chunk of `rows * cols` elements
//! (`f32` or `f64`, see [`Float`]) and an output slice; [`apply_rows`]
//! writes one scalar per row, [`normalize_rows`] one row per row.
//! [`apply_columns`] computes the same kernels across several primitive
//! columns of a dataframe ("the norm across columns x, y, z").
//! The kernels allocate nothing (except `apply_columns`' small scratch
//! buffer), never panic on valid shapes, and validate every length before
//! writing, returning [`KernelError`] otherwise.
//!
//! # Semantics
//!
//! Results follow numpy where numpy is defined:
//!
//! | kernel (`name`)     | result for row `x` of length `n`              | `n == 0` |
//! |---------------------|-----------------------------------------------|----------|
//! | `l1-norm`           | `sum(abs(x))`                                 | 0        |
//! | `l2-norm`           | `sqrt(sum(x^2))`                              | 0        |
//! | `linf-norm`         | `max(abs(x))`, NaN if any NaN                 | 0        |
//! | `sum`               | `sum(x)`                                      | 0        |
//! | `mean`              | `sum(x) / n`                                  | NaN      |
//! | `min`, `max`        | NaN if any element is NaN (like `np.min`)     | NaN      |
//! | `var` (`ddof`)      | `sum((x - mean)^2) / (n - ddof)`, two passes; NaN if `n <= ddof` | NaN |
//! | `std` (`ddof`)      | `sqrt(var)`                                   | NaN      |
//! | `dot`               | `sum(x * q)`                                  | 0        |
//! | `cosine`            | `dot / (l2(x) * l2(q))`; NaN if either norm is 0 | NaN   |
//! | `normalize`         | `x / l2(x)`; a row with norm 0 stays all zeros | —       |
//!
//! * **Precision.** With [`Accumulate::F64`] (the default) `f32` input is
//!   widened to `f64` inside the loop, every intermediate is `f64` and the
//!   result is rounded once to `f32`. [`Accumulate::Native`] accumulates in
//!   `f32`. `f64` input always uses `f64`. Min, max and `linf-norm` are
//!   exact in the input type.
//! * **Summation order.** Sums use 8 interleaved partial sums combined as a
//!   tree, plus a sequential partial sum of the last `len % 8` elements, so
//!   results can differ from a sequential loop by a few ulps of
//!   `sum(abs(terms))`; they are deterministic for a given row.
//! * **Overflow.** `l2-norm`, `cosine` and `normalize` square elements
//!   without rescaling (for speed, as numpy's `norm` does): with `f64`
//!   accumulation, squares overflow to infinity once `|x|` exceeds about
//!   1.3e154. Cosine is not clamped to `[-1, 1]`.
//! * **Non-finite input** propagates by IEEE 754 rules: a NaN makes every
//!   result NaN (for `normalize`, the row), `inf - inf` gives NaN, and
//!   `inf / inf` in `cosine` gives NaN.
//!
//! # Performance
//!
//! Each reduction runs 8 independent accumulators over `as_chunks::<8>()`
//! with no bounds checks, so LLVM vectorises it (see `lanes.rs`); square
//! roots, divisions and the rounding to `f32` are applied to blocks of 64
//! row results at once, off the per-row dependency chain (see
//! `rows::each_row`). Narrow rows (`cols < 8`) take only the sequential
//! remainder loop. Rows of exactly 8, 16 or 32 elements run a copy of the
//! row loop in which the width is a constant, so the lane loops unroll
//! completely; measured in cache (`cargo bench --bench micro -- kernels`,
//! 8 MiB, median before/after in one session): `l2` over 16-wide `f64`
//! rows 1.53x faster, `std` 1.54x, `sum` 1.29x, `f32` with `f64`
//! accumulation 1.11x; 128-wide rows unchanged.
//!
//! Measured single-threaded on the 2 GHz development VM (baseline x86-64,
//! i.e. SSE2), reading 128-256 MB from memory (read bandwidth about
//! 10 GB/s): `l2-norm` runs at 85-100% of that bandwidth for `f64` with
//! `cols >= 16` and for `f32` with `cols >= 64`, and at about 70% for `f32`
//! with `cols = 16`, where the per-row work (widening 16 elements, the lane
//! tree) outweighs 64 bytes of memory traffic. `min`, `max`, `linf-norm` (NaN-propagating selects), `var`
//! (two passes) and `cosine` (two sums) are compute-bound: 30-65% of the
//! bandwidth at `cols = 16` and 55-90% at `cols = 1000`, lowest for `f32`.

mod columns;
mod error;
mod float;
mod kernel;
mod lanes;
mod rows;

#[cfg(test)]
mod reference;
#[cfg(test)]
mod tests;

pub use columns::{ColumnSlice, apply_columns};
pub use error::KernelError;
pub use float::Float;
pub use kernel::{Accumulate, ParseRowKernelError, RowKernel};
pub use rows::{apply_rows, normalize_rows, row_results};
