//! The public types around a job: its options, its statistics, what it computes, and the
//! worker deaths an engine logs.

use std::sync::Arc;
use std::time::Duration;

use crate::kernels::RowKernel;

/// Statistics of one job.
#[derive(Debug, Clone, Default)]
pub struct JobStats {
    /// Time from posting the job to its completion.
    pub seconds: f64,
    /// Rows.
    pub rows: usize,
    /// Chunks the rows were cut into.
    pub chunks: usize,
    /// Input bytes the job read.
    pub input_bytes: usize,
    /// Workers that died during the job (and were replaced).
    pub worker_deaths: usize,
    /// Whether the output was written into a recycled segment (see
    /// [`crate::EngineBuilder::recycle_outputs`]).
    pub output_reused: bool,
}

/// Options of one job.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Rows per chunk (default: 8 (`CHUNKS_PER_WORKER` in `tuning.rs`) chunks per worker, a
    /// multiple of 64 rows; one image per chunk for image jobs of up to 65,536 images).
    pub chunk_rows: Option<usize>,
    /// Cancel the job after this long.
    pub deadline: Option<Duration>,
    /// Accumulate f32 input in f32 instead of f64.
    pub native_accumulation: bool,
    /// Name of the output column (default: derived from the kernel).
    pub output_name: Option<String>,
    /// Called from the coordinator's wait loop (about every 10 ms) with chunks done and
    /// chunks in all; for progress bars. It runs on the calling thread: start no thread in it.
    pub progress: Option<Progress>,
    /// Asked from the coordinator's wait loop on every slice (`WAIT_SLICE`, 10 ms) whether to
    /// stop: when it answers `true` the job is cancelled as a deadline cancels it (workers
    /// leave it, the pool stays usable) and the call returns [`crate::EngineError::Interrupted`].
    /// How a host turns Ctrl-C into a prompt stop (the Python package checks the
    /// interpreter's signals in it). It runs on the calling thread.
    pub interrupt: Option<Interrupt>,
    #[doc(hidden)]
    pub test_kill_worker_after_chunks: Option<(usize, u32)>,
    #[doc(hidden)]
    pub test_chunk_sleep: Option<Duration>,
}

/// A progress callback: `(chunks done, chunks in all)`.
#[derive(Clone)]
pub struct Progress(pub Arc<dyn Fn(usize, usize) + Send + Sync>);

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress(..)")
    }
}

/// An interrupt check: `true` stops the job ([`RunOptions::interrupt`]).
#[derive(Clone)]
pub struct Interrupt(pub Arc<dyn Fn() -> bool + Send + Sync>);

impl std::fmt::Debug for Interrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Interrupt(..)")
    }
}

/// What a job computes.
#[derive(Debug, Clone)]
pub enum Kernel {
    /// A built-in row kernel.
    Row(RowKernel),
    /// A registered user kernel, by name.
    User(String),
}

impl From<RowKernel> for Kernel {
    fn from(k: RowKernel) -> Self {
        Kernel::Row(k)
    }
}

/// A worker death, as logged.
#[derive(Debug, Clone)]
pub struct WorkerDeath {
    /// The worker's slot.
    pub slot: usize,
    /// Its pid.
    pub pid: u32,
    /// Signal or exit code.
    pub how: String,
    /// Chunks it had claimed and not finished, released to the others.
    pub chunks_redone: usize,
}
