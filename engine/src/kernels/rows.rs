//! Entry points over a row-major chunk: [`apply_rows`], [`normalize_rows`].

use super::error::KernelError;
use super::float::Float;
use super::kernel::{Accumulate, RowKernel};
use super::lanes;

/// Applies a scalar-per-row `kernel` to the row-major matrix `data`
/// (`rows * cols` elements) and writes one result per row into `out`.
///
/// `rows` is `data.len() / cols`; when `cols == 0`, `data` must be empty and
/// `rows` is taken to be `out.len()` (each row then is empty). `query` must
/// have `cols` elements for kernels where [`RowKernel::needs_query`] holds
/// and is ignored otherwise. `acc` only matters for `f32` input.
///
/// # Errors
///
/// [`KernelError::MatrixOutput`] for [`RowKernel::NormalizeL2`] (use
/// [`normalize_rows`]); [`KernelError::RaggedData`],
/// [`KernelError::OutputLength`], [`KernelError::MissingQuery`] or
/// [`KernelError::QueryLength`] for shape mismatches. Nothing is written on
/// error.
///
/// # Example
///
/// ```
/// use shmframe::kernels::{apply_rows, Accumulate, RowKernel};
///
/// let data = [3.0_f32, 4.0, 1.0, 0.0];
/// let mut out = [0.0_f32; 2];
/// apply_rows(&RowKernel::L2, Accumulate::F64, &data, 2, None, &mut out)?;
/// assert_eq!(out, [5.0, 1.0]);
/// # Ok::<(), shmframe::kernels::KernelError>(())
/// ```
pub fn apply_rows<T: Float>(
    kernel: &RowKernel,
    acc: Accumulate,
    data: &[T],
    cols: usize,
    query: Option<&[T]>,
    out: &mut [T],
) -> Result<(), KernelError> {
    if kernel.output_is_matrix() {
        return Err(KernelError::MatrixOutput {
            kernel: kernel.name(),
            operation: "apply_rows",
        });
    }
    let rows = rows_of(data.len(), cols, out.len())?;
    check_len(rows, out.len())?;
    let query = check_query(kernel, cols, query)?;
    match acc {
        Accumulate::F64 => {
            let query = with_norm(query, T::to_f64);
            run_rows(kernel, data, cols, query, out, T::to_f64);
        }
        Accumulate::Native => {
            let query = with_norm(query, |v: T| v);
            run_rows(kernel, data, cols, query, out, |v: T| v);
        }
    }
    Ok(())
}

/// Writes each row of `data` divided by its L2 norm into `out`
/// (`out.len() == data.len()`); rows whose norm is zero are written as
/// zeros. The norm and the division are computed in `f64` and each element
/// is rounded once to `T`.
///
/// # Errors
///
/// [`KernelError::RaggedData`] or [`KernelError::OutputLength`]. Nothing is
/// written on error.
pub fn normalize_rows<T: Float>(data: &[T], cols: usize, out: &mut [T]) -> Result<(), KernelError> {
    rows_of(data.len(), cols, 0)?;
    check_len(data.len(), out.len())?;
    if cols == 0 {
        return Ok(());
    }
    for (row, dst) in data.chunks_exact(cols).zip(out.chunks_exact_mut(cols)) {
        let norm = lanes::sum_sq(row, T::to_f64).sqrt();
        if norm == 0.0 {
            dst.fill(T::ZERO);
        } else {
            for (o, &v) in dst.iter_mut().zip(row) {
                *o = T::from_f64(v.to_f64() / norm);
            }
        }
    }
    Ok(())
}

/// A row kernel over a whole row-major matrix in this process, as one call: what a job's
/// workers compute chunk by chunk (same code, so the same bits: every result depends on its
/// own row only), for inputs too small for a pool to win. One `T` per row, or the
/// normalised matrix for [`RowKernel::NormalizeL2`]; `f64` accumulation, as jobs default to.
/// The `query` is rounded to `T` as a job rounds it.
///
/// # Errors
///
/// As [`apply_rows`] and [`normalize_rows`].
///
/// ```
/// use shmframe::kernels::{row_results, RowKernel};
///
/// let norms = row_results::<f64>(&RowKernel::L2, &[3.0, 4.0, 0.0, 1.0], 2, None)?;
/// assert_eq!(norms, [5.0, 1.0]);
/// # Ok::<(), shmframe::kernels::KernelError>(())
/// ```
pub fn row_results<T: Float>(
    kernel: &RowKernel,
    data: &[T],
    cols: usize,
    query: Option<&[f64]>,
) -> Result<Vec<T>, KernelError> {
    let rows = rows_of(data.len(), cols, 0)?;
    let mut out = vec![
        T::ZERO;
        if kernel.output_is_matrix() {
            data.len()
        } else {
            rows
        }
    ];
    if kernel.output_is_matrix() {
        normalize_rows(data, cols, &mut out)?;
    } else {
        let q: Option<Vec<T>> = query.map(|q| q.iter().map(|&v| T::from_f64(v)).collect());
        apply_rows(kernel, Accumulate::F64, data, cols, q.as_deref(), &mut out)?;
    }
    Ok(out)
}

/// Number of rows of a `len`-element matrix with `cols` columns; for
/// `cols == 0` the caller's `rows_if_empty`.
pub(super) fn rows_of(len: usize, cols: usize, rows_if_empty: usize) -> Result<usize, KernelError> {
    match cols {
        0 if len == 0 => Ok(rows_if_empty),
        0 => Err(KernelError::RaggedData { len, cols }),
        _ if !len.is_multiple_of(cols) => Err(KernelError::RaggedData { len, cols }),
        _ => Ok(len / cols),
    }
}

/// Checks an output length.
pub(super) fn check_len(expected: usize, actual: usize) -> Result<(), KernelError> {
    if expected == actual {
        Ok(())
    } else {
        Err(KernelError::OutputLength { expected, actual })
    }
}

/// Checks the query against the kernel and width; `None` if not needed.
pub(super) fn check_query<'q, T>(
    kernel: &RowKernel,
    cols: usize,
    query: Option<&'q [T]>,
) -> Result<Option<&'q [T]>, KernelError> {
    if !kernel.needs_query() {
        return Ok(None);
    }
    match query {
        None => Err(KernelError::MissingQuery {
            kernel: kernel.name(),
            expected: cols,
        }),
        Some(q) if q.len() != cols => Err(KernelError::QueryLength {
            kernel: kernel.name(),
            expected: cols,
            actual: q.len(),
        }),
        Some(q) => Ok(Some(q)),
    }
}

/// Pairs a query with its L2 norm, computed once per call.
pub(super) fn with_norm<T: Float, A: Float>(
    query: Option<&[T]>,
    w: impl Fn(T) -> A,
) -> Option<(&[T], A)> {
    query.map(|q| (q, lanes::sum_sq(q, w).sqrt()))
}

/// Rounds an accumulator to the element type (identity when `A == T`).
#[inline(always)]
fn narrow<A: Float, T: Float>(a: A) -> T {
    T::from_f64(a.to_f64())
}

/// Runs a scalar kernel on validated input: `out.len()` rows, each `cols`
/// wide, `query` (with its norm, see [`with_norm`]) present with `cols`
/// elements if the kernel needs one.
///
/// The `match` happens once; each arm is a monomorphic loop over rows made
/// of a vectorised reduction per row and a cheap `finish` (square root,
/// division, rounding to `T`) applied a block of rows later, see
/// [`each_row`].
pub(super) fn run_rows<T: Float, A: Float>(
    kernel: &RowKernel,
    data: &[T],
    cols: usize,
    query: Option<(&[T], A)>,
    out: &mut [T],
    w: impl Fn(T) -> A + Copy,
) {
    let (q, nq) = query.unwrap_or((&[], A::ZERO));
    let n = A::from_usize(cols);
    let var_divisor = |ddof: u32| {
        cols.checked_sub(ddof as usize)
            .filter(|&d| d > 0)
            .map(A::from_usize)
    };
    let (z, id) = (A::ZERO, |v: T| v);
    match *kernel {
        RowKernel::L1 => each_row(data, cols, out, z, |r| lanes::sum_abs(r, w), narrow),
        RowKernel::L2 => each_row(
            data,
            cols,
            out,
            z,
            |r| lanes::sum_sq(r, w),
            |s| narrow(s.sqrt()),
        ),
        RowKernel::LInf => each_row(data, cols, out, T::ZERO, lanes::max_abs, id),
        RowKernel::Sum => each_row(data, cols, out, z, |r| lanes::sum(r, w), narrow),
        // 0 / 0 = NaN for empty rows.
        RowKernel::Mean => each_row(data, cols, out, z, |r| lanes::sum(r, w), |s| narrow(s / n)),
        RowKernel::Min => each_row(data, cols, out, T::ZERO, lanes::min, id),
        RowKernel::Max => each_row(data, cols, out, T::ZERO, lanes::max, id),
        RowKernel::Var { ddof } | RowKernel::Std { ddof } => {
            let Some(d) = var_divisor(ddof) else {
                out.fill(T::NAN);
                return;
            };
            if matches!(kernel, RowKernel::Var { .. }) {
                each_row(
                    data,
                    cols,
                    out,
                    z,
                    |r| lanes::sq_dev(r, w),
                    |ss| narrow(ss / d),
                );
            } else {
                each_row(
                    data,
                    cols,
                    out,
                    z,
                    |r| lanes::sq_dev(r, w),
                    |ss| narrow((ss / d).sqrt()),
                );
            }
        }
        RowKernel::Dot => each_row(data, cols, out, z, |r| lanes::dot(r, q, w), narrow),
        RowKernel::Cosine => each_row(
            data,
            cols,
            out,
            (z, z),
            |r| lanes::dot_sq(r, q, w),
            |(xq, xx)| {
                if xx == A::ZERO || nq == A::ZERO {
                    T::NAN
                } else {
                    narrow(xq / (xx.sqrt() * nq))
                }
            },
        ),
        RowKernel::NormalizeL2 => unreachable!("matrix kernels are rejected before run_rows"),
    }
}

/// Rows per block in [`each_row`].
const ROW_BLOCK: usize = 64;

/// `out[i] = finish(reduce(row i))`; with `cols == 0` every row is empty.
///
/// The reductions of a block of rows go to a small stack buffer first and
/// are finished in a second loop. This keeps the long-latency square roots
/// and divisions out of the per-row dependency chain (so the out-of-order
/// core overlaps more rows) and lets LLVM vectorise them across rows.
///
/// Common narrow widths get a copy of the loop in which the row length is a
/// constant: the lane loops of [`lanes`] then unroll completely, with no
/// per-row loop control or remainder test, which are much of a narrow row's
/// cost (`l2` over 16-wide `f64` rows: 1.5x, see the module notes).
#[inline(always)]
fn each_row<T: Float, R: Copy>(
    data: &[T],
    cols: usize,
    out: &mut [T],
    init: R,
    reduce: impl Fn(&[T]) -> R,
    finish: impl Fn(R) -> T,
) {
    match cols {
        0 => out.fill(finish(reduce(&[]))),
        8 => each_row_of::<T, R, 8>(data, out, init, reduce, finish),
        16 => each_row_of::<T, R, 16>(data, out, init, reduce, finish),
        32 => each_row_of::<T, R, 32>(data, out, init, reduce, finish),
        _ => {
            let mut buf = [init; ROW_BLOCK];
            let block = data.chunks(ROW_BLOCK.saturating_mul(cols));
            for (dst, src) in out.chunks_mut(ROW_BLOCK).zip(block) {
                for (b, row) in buf.iter_mut().zip(src.chunks_exact(cols)) {
                    *b = reduce(row);
                }
                for (o, &b) in dst.iter_mut().zip(&buf) {
                    *o = finish(b);
                }
            }
        }
    }
}

/// [`each_row`] for rows of exactly `N` elements (`N > 0`).
#[inline(always)]
fn each_row_of<T: Float, R: Copy, const N: usize>(
    data: &[T],
    out: &mut [T],
    init: R,
    reduce: impl Fn(&[T]) -> R,
    finish: impl Fn(R) -> T,
) {
    let mut buf = [init; ROW_BLOCK];
    let (rows, _) = data.as_chunks::<N>();
    for (dst, src) in out.chunks_mut(ROW_BLOCK).zip(rows.chunks(ROW_BLOCK)) {
        for (b, row) in buf.iter_mut().zip(src) {
            *b = reduce(row);
        }
        for (o, &b) in dst.iter_mut().zip(&buf) {
            *o = finish(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(
        kernel: &RowKernel,
        data: &[f64],
        cols: usize,
        query: Option<&[f64]>,
        out_len: usize,
    ) -> Result<(), KernelError> {
        let mut out = vec![-7.0; out_len];
        let r = apply_rows(kernel, Accumulate::F64, data, cols, query, &mut out);
        if r.is_err() {
            assert!(out.iter().all(|&v| v == -7.0), "output written on error");
        }
        r
    }

    #[test]
    fn shape_errors_name_expected_and_actual() {
        let d = [1.0; 6];
        assert_eq!(
            apply(&RowKernel::Sum, &d, 4, None, 1),
            Err(KernelError::RaggedData { len: 6, cols: 4 })
        );
        assert_eq!(
            apply(&RowKernel::Sum, &d, 0, None, 1),
            Err(KernelError::RaggedData { len: 6, cols: 0 })
        );
        assert_eq!(
            apply(&RowKernel::Sum, &d, 3, None, 3),
            Err(KernelError::OutputLength {
                expected: 2,
                actual: 3
            })
        );
        assert_eq!(
            apply(&RowKernel::Dot, &d, 3, None, 2),
            Err(KernelError::MissingQuery {
                kernel: "dot",
                expected: 3
            })
        );
        let err = apply(&RowKernel::Cosine, &d, 3, Some(&[1.0; 2]), 2).unwrap_err();
        assert_eq!(
            err,
            KernelError::QueryLength {
                kernel: "cosine",
                expected: 3,
                actual: 2
            }
        );
        assert_eq!(
            err.to_string(),
            "query length mismatch for kernel `cosine`: expected 3, got 2"
        );
        let err = apply(&RowKernel::NormalizeL2, &d, 3, None, 2).unwrap_err();
        assert!(matches!(
            err,
            KernelError::MatrixOutput {
                kernel: "normalize",
                ..
            }
        ));
        assert!(err.to_string().contains("normalize_rows"), "{err}");
        // A query is ignored by kernels that do not need one.
        assert_eq!(apply(&RowKernel::Sum, &d, 3, Some(&[1.0]), 2), Ok(()));
        // cols == 0 with empty data: rows come from the output.
        assert_eq!(apply(&RowKernel::Sum, &[], 0, None, 5), Ok(()));
    }

    #[test]
    fn normalize_shape_errors() {
        let d = [1.0_f32; 6];
        let mut out = [0.0_f32; 5];
        assert_eq!(
            normalize_rows(&d, 3, &mut out),
            Err(KernelError::OutputLength {
                expected: 6,
                actual: 5
            })
        );
        assert_eq!(out, [0.0; 5]);
        let mut out = [0.0_f32; 6];
        assert_eq!(
            normalize_rows(&d, 4, &mut out),
            Err(KernelError::RaggedData { len: 6, cols: 4 })
        );
        assert_eq!(normalize_rows(&d, 3, &mut out), Ok(()));
        let third = (1.0_f64 / 3.0).sqrt() as f32;
        assert_eq!(out, [third; 6]);
    }
}
