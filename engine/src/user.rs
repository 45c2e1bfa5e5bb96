//! User kernels: row-wise functions a library user writes, registered by name.
//!
//! A kernel is registered on the [`crate::EngineBuilder`]. In fork mode the workers inherit
//! the registry; in spawn mode the worker executable must register the same kernels before it
//! calls [`crate::spawned_worker_main`], which is why kernels are found by name.

use std::collections::BTreeMap;
use std::sync::Arc;

/// A block of consecutive rows handed to a user kernel: row-major, `cols` values per row.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum RowBlock<'a> {
    /// `f32` rows.
    F32 {
        /// `rows * cols` values.
        data: &'a [f32],
        /// Values per row.
        cols: usize,
    },
    /// `f64` rows.
    F64 {
        /// `rows * cols` values.
        data: &'a [f64],
        /// Values per row.
        cols: usize,
    },
}

impl<'a> From<(&'a [f32], usize)> for RowBlock<'a> {
    /// `f32` rows of `cols` values.
    fn from((data, cols): (&'a [f32], usize)) -> Self {
        RowBlock::F32 { data, cols }
    }
}

impl<'a> From<(&'a [f64], usize)> for RowBlock<'a> {
    /// `f64` rows of `cols` values.
    fn from((data, cols): (&'a [f64], usize)) -> Self {
        RowBlock::F64 { data, cols }
    }
}

impl RowBlock<'_> {
    /// Rows in the block.
    pub fn rows(&self) -> usize {
        match *self {
            RowBlock::F32 { data, cols } => data.len().checked_div(cols).unwrap_or(0),
            RowBlock::F64 { data, cols } => data.len().checked_div(cols).unwrap_or(0),
        }
    }

    /// Values per row.
    pub fn cols(&self) -> usize {
        match *self {
            RowBlock::F32 { cols, .. } | RowBlock::F64 { cols, .. } => cols,
        }
    }

    /// Row `i` widened to `f64` into `buf` (cleared first).
    pub fn row_f64(&self, i: usize, buf: &mut Vec<f64>) {
        buf.clear();
        match *self {
            RowBlock::F32 { data, cols } => {
                buf.extend(data[i * cols..(i + 1) * cols].iter().map(|v| f64::from(*v)))
            }
            RowBlock::F64 { data, cols } => buf.extend_from_slice(&data[i * cols..(i + 1) * cols]),
        }
    }
}

/// A row-wise kernel written by a library user.
///
/// It runs inside worker processes on blocks of rows and writes `output_cols` `f64` values
/// per row. Return `Err` with a message for bad input: the job fails with an error naming
/// the kernel, the chunk and its first row, and the pool stays usable. Panics are caught the
/// same way.
pub trait UserKernel: Send + Sync + 'static {
    /// The name the kernel is registered and invoked under.
    fn name(&self) -> &str;

    /// Output values per row for an input of `input_cols` values per row (default 1).
    fn output_cols(&self, input_cols: usize) -> usize {
        let _ = input_cols;
        1
    }

    /// Computes `rows.rows()` rows into `out` (`rows.rows() * output_cols` values).
    fn run(&self, rows: RowBlock<'_>, out: &mut [f64]) -> Result<(), String>;
}

/// User kernels by name.
#[derive(Clone, Default)]
pub struct KernelRegistry {
    kernels: BTreeMap<String, Arc<dyn UserKernel>>,
}

impl std::fmt::Debug for KernelRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.kernels.keys()).finish()
    }
}

impl KernelRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a kernel (replacing one of the same name).
    pub fn register<K: UserKernel>(&mut self, kernel: K) -> &mut Self {
        self.kernels
            .insert(kernel.name().to_string(), Arc::new(kernel));
        self
    }

    /// The kernel registered under `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn UserKernel>> {
        self.kernels.get(name)
    }

    /// Registered names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.kernels.keys().map(String::as_str)
    }
}
