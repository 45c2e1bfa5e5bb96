//! [`KernelError`]: shape errors reported before any output is written.

/// Why a kernel call was rejected. Every check runs before the first write,
/// so on error the output slice is untouched.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KernelError {
    /// The data length is not a multiple of the row width (or the width is
    /// zero and the data is not empty).
    #[error("data length {len} is not a multiple of cols = {cols}")]
    RaggedData {
        /// Elements in the data slice.
        len: usize,
        /// The row width passed in.
        cols: usize,
    },
    /// The output slice has the wrong length.
    #[error("output length mismatch: expected {expected}, got {actual}")]
    OutputLength {
        /// Rows (scalar output) or elements (matrix output).
        expected: usize,
        /// Length of the output slice passed in.
        actual: usize,
    },
    /// A kernel that needs a query vector got none.
    #[error("kernel `{kernel}` needs a query vector of length {expected}, got none")]
    MissingQuery {
        /// The kernel's CLI name.
        kernel: &'static str,
        /// The required query length (the row width).
        expected: usize,
    },
    /// The query vector's length differs from the row width.
    #[error("query length mismatch for kernel `{kernel}`: expected {expected}, got {actual}")]
    QueryLength {
        /// The kernel's CLI name.
        kernel: &'static str,
        /// The row width.
        expected: usize,
        /// Length of the query passed in.
        actual: usize,
    },
    /// A column's length differs from the first column's.
    #[error("column {column} has {actual} rows, expected {expected} like column 0")]
    ColumnLength {
        /// Index of the offending column.
        column: usize,
        /// Length of column 0.
        expected: usize,
        /// Length of the offending column.
        actual: usize,
    },
    /// A matrix-output kernel was passed to a scalar-output entry point.
    #[error(
        "kernel `{kernel}` produces a matrix, which {operation} does not support (use normalize_rows)"
    )]
    MatrixOutput {
        /// The kernel's CLI name.
        kernel: &'static str,
        /// The entry point that rejected it.
        operation: &'static str,
    },
}
