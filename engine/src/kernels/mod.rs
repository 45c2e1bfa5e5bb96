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
//!   tree, so results can differ from a sequential loop by a few ulps of
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
//! Each reduction runs 8 independent accumulators over `as_chunks::<8>()`,
//! so LLVM vectorises it and `l2-norm` on `f32`/`f64` runs at memory
//! bandwidth for `cols >= 16`. Narrow rows (`cols < 8`) take only the
//! remainder loop. See `lanes.rs`.

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
pub use rows::{apply_rows, normalize_rows};
