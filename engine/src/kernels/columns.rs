//! Kernels across several primitive columns: [`ColumnSlice`],
//! [`apply_columns`].
//!
//! A dataframe keeps each column contiguous, while a row kernel wants each
//! row contiguous. [`apply_columns`] bridges the two a block of rows at a
//! time: it gathers (and widens to `f64`) a block into a small row-major
//! scratch buffer that stays in cache, then runs the same per-row code as
//! [`apply_rows`](super::apply_rows) on it. Results are therefore
//! bit-identical to `apply_rows::<f64>` on the widened row-major matrix.

use super::error::KernelError;
use super::kernel::RowKernel;
use super::rows::{check_len, check_query, run_rows, with_norm};

/// Most rows per block.
const BLOCK_ROWS: usize = 256;
/// Most `f64` elements in the scratch buffer (64 KiB, well inside L2) unless
/// a single row is wider.
const SCRATCH_ELEMS: usize = 8 * 1024;

/// A borrowed primitive column, one element per row.
///
/// Integers are widened to `f64` exactly, except `i64`/`u64` magnitudes
/// above 2^53, which round to the nearest `f64`.
#[derive(Clone, Copy, Debug)]
pub enum ColumnSlice<'a> {
    /// `f32` values.
    F32(&'a [f32]),
    /// `f64` values.
    F64(&'a [f64]),
    /// `i8` values.
    I8(&'a [i8]),
    /// `i16` values.
    I16(&'a [i16]),
    /// `i32` values.
    I32(&'a [i32]),
    /// `i64` values.
    I64(&'a [i64]),
    /// `u8` values.
    U8(&'a [u8]),
    /// `u16` values.
    U16(&'a [u16]),
    /// `u32` values.
    U32(&'a [u32]),
    /// `u64` values.
    U64(&'a [u64]),
}

macro_rules! column_from {
    ($($t:ty => $v:ident),* $(,)?) => {$(
        impl<'a> From<&'a [$t]> for ColumnSlice<'a> {
            fn from(s: &'a [$t]) -> Self {
                Self::$v(s)
            }
        }
    )*};
}

column_from!(
    f32 => F32, f64 => F64, i8 => I8, i16 => I16, i32 => I32, i64 => I64,
    u8 => U8, u16 => U16, u32 => U32, u64 => U64,
);

impl ColumnSlice<'_> {
    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            Self::F32(s) => s.len(),
            Self::F64(s) => s.len(),
            Self::I8(s) => s.len(),
            Self::I16(s) => s.len(),
            Self::I32(s) => s.len(),
            Self::I64(s) => s.len(),
            Self::U8(s) => s.len(),
            Self::U16(s) => s.len(),
            Self::U32(s) => s.len(),
            Self::U64(s) => s.len(),
        }
    }

    /// `true` if the column has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The element type's name, e.g. `"i32"`.
    pub fn dtype(&self) -> &'static str {
        match self {
            Self::F32(_) => "f32",
            Self::F64(_) => "f64",
            Self::I8(_) => "i8",
            Self::I16(_) => "i16",
            Self::I32(_) => "i32",
            Self::I64(_) => "i64",
            Self::U8(_) => "u8",
            Self::U16(_) => "u16",
            Self::U32(_) => "u32",
            Self::U64(_) => "u64",
        }
    }

    /// Writes rows `start..start + n` of this column, widened to `f64`, into
    /// column `col` of the row-major block `dst` (`n` rows of `stride`).
    fn gather(&self, start: usize, n: usize, dst: &mut [f64], col: usize, stride: usize) {
        /// Strided copy with an inlined conversion.
        #[inline(always)]
        fn copy<S: Copy>(
            src: &[S],
            dst: &mut [f64],
            col: usize,
            stride: usize,
            f: impl Fn(S) -> f64,
        ) {
            for (d, &s) in dst.iter_mut().skip(col).step_by(stride).zip(src) {
                *d = f(s);
            }
        }
        let r = start..start + n;
        match self {
            Self::F32(s) => copy(&s[r], dst, col, stride, f64::from),
            Self::F64(s) => copy(&s[r], dst, col, stride, |v| v),
            Self::I8(s) => copy(&s[r], dst, col, stride, f64::from),
            Self::I16(s) => copy(&s[r], dst, col, stride, f64::from),
            Self::I32(s) => copy(&s[r], dst, col, stride, f64::from),
            // Rounds above 2^53, as documented on the type.
            #[allow(clippy::cast_precision_loss)]
            Self::I64(s) => copy(&s[r], dst, col, stride, |v| v as f64),
            Self::U8(s) => copy(&s[r], dst, col, stride, f64::from),
            Self::U16(s) => copy(&s[r], dst, col, stride, f64::from),
            Self::U32(s) => copy(&s[r], dst, col, stride, f64::from),
            #[allow(clippy::cast_precision_loss)]
            Self::U64(s) => copy(&s[r], dst, col, stride, |v| v as f64),
        }
    }
}

/// Applies a scalar-per-row `kernel` across `columns`: row `i` is
/// `[columns[0][i], columns[1][i], ...]` widened to `f64`, and its result
/// goes to `out[i]`.
///
/// All columns must have the same length, which is the number of rows; with
/// no columns, `rows` is `out.len()` and every row is empty. `query` must
/// have one element per column for kernels that need it (ignored otherwise).
///
/// # Errors
///
/// [`KernelError::MatrixOutput`] for [`RowKernel::NormalizeL2`];
/// [`KernelError::ColumnLength`], [`KernelError::OutputLength`],
/// [`KernelError::MissingQuery`] or [`KernelError::QueryLength`] for shape
/// mismatches. Nothing is written on error.
///
/// # Example
///
/// ```
/// use shmframe::kernels::{apply_columns, ColumnSlice, RowKernel};
///
/// let x = [3.0_f32, 1.0];
/// let y = [4_i32, 0];
/// let mut out = [0.0; 2];
/// let cols = [ColumnSlice::from(&x[..]), ColumnSlice::from(&y[..])];
/// apply_columns(&RowKernel::L2, &cols, None, &mut out)?;
/// assert_eq!(out, [5.0, 1.0]);
/// # Ok::<(), shmframe::kernels::KernelError>(())
/// ```
pub fn apply_columns(
    kernel: &RowKernel,
    columns: &[ColumnSlice<'_>],
    query: Option<&[f64]>,
    out: &mut [f64],
) -> Result<(), KernelError> {
    if kernel.output_is_matrix() {
        return Err(KernelError::MatrixOutput {
            kernel: kernel.name(),
            operation: "apply_columns",
        });
    }
    let ncols = columns.len();
    let rows = columns.first().map_or(out.len(), ColumnSlice::len);
    for (column, c) in columns.iter().enumerate() {
        if c.len() != rows {
            return Err(KernelError::ColumnLength {
                column,
                expected: rows,
                actual: c.len(),
            });
        }
    }
    check_len(rows, out.len())?;
    let query = with_norm(check_query(kernel, ncols, query)?, |v| v);
    if ncols == 0 {
        run_rows(kernel, &[], 0, query, out, |v| v);
        return Ok(());
    }
    let block = (SCRATCH_ELEMS / ncols).clamp(1, BLOCK_ROWS);
    let mut scratch = vec![0.0_f64; block.min(rows) * ncols];
    for (b, dst) in out.chunks_mut(block).enumerate() {
        let n = dst.len();
        let buf = &mut scratch[..n * ncols];
        for (c, column) in columns.iter().enumerate() {
            column.gather(b * block, n, buf, c, ncols);
        }
        run_rows(kernel, buf, ncols, query, dst, |v| v);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_errors() {
        let a = [1.0_f64, 2.0, 3.0];
        let b = [1_u8, 2];
        let mut out = [0.0; 3];
        let cols = [ColumnSlice::from(&a[..]), ColumnSlice::from(&b[..])];
        assert_eq!(
            apply_columns(&RowKernel::Sum, &cols, None, &mut out),
            Err(KernelError::ColumnLength {
                column: 1,
                expected: 3,
                actual: 2
            })
        );
        let cols = [ColumnSlice::from(&a[..]), ColumnSlice::from(&a[..])];
        assert_eq!(
            apply_columns(&RowKernel::Sum, &cols, None, &mut out[..2]),
            Err(KernelError::OutputLength {
                expected: 3,
                actual: 2
            })
        );
        assert_eq!(
            apply_columns(&RowKernel::Dot, &cols, Some(&[1.0]), &mut out),
            Err(KernelError::QueryLength {
                kernel: "dot",
                expected: 2,
                actual: 1
            })
        );
        assert_eq!(
            apply_columns(&RowKernel::Cosine, &cols, None, &mut out),
            Err(KernelError::MissingQuery {
                kernel: "cosine",
                expected: 2
            })
        );
        assert!(matches!(
            apply_columns(&RowKernel::NormalizeL2, &cols, None, &mut out),
            Err(KernelError::MatrixOutput {
                operation: "apply_columns",
                ..
            })
        ));
        assert_eq!(out, [0.0; 3]);
        apply_columns(&RowKernel::Sum, &cols, None, &mut out).unwrap();
        assert_eq!(out, [2.0, 4.0, 6.0]);
    }

    #[test]
    fn mixed_dtypes_widen_exactly() {
        let x = [-128_i8, 127];
        let y = [u64::MAX, 1];
        let z = [0.5_f32, -0.25];
        let cols = [
            ColumnSlice::from(&x[..]),
            ColumnSlice::from(&y[..]),
            ColumnSlice::from(&z[..]),
        ];
        assert_eq!(cols.map(|c| c.dtype()), ["i8", "u64", "f32"]);
        assert!(cols.iter().all(|c| c.len() == 2 && !c.is_empty()));
        let mut out = [0.0; 2];
        apply_columns(&RowKernel::Max, &cols, None, &mut out).unwrap();
        assert_eq!(out, [18_446_744_073_709_551_616.0, 127.0]);
        apply_columns(&RowKernel::Min, &cols, None, &mut out).unwrap();
        assert_eq!(out, [-128.0, -0.25]);
        // No columns: every row is empty.
        apply_columns(&RowKernel::Sum, &[], None, &mut out).unwrap();
        assert_eq!(out, [0.0, 0.0]);
    }
}
