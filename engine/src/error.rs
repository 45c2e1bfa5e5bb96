//! The engine's typed errors.

use std::time::Duration;

use shmframe_ipc::{ArrowSegmentError, ForkError, NameError, SegmentError, SyncError};

/// Everything an engine call can fail with. Messages name the segment, file, column, kernel,
/// chunk or row concerned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// A segment operation failed.
    #[error(transparent)]
    Segment(#[from] SegmentError),
    /// Arrow data in a segment or file is invalid.
    #[error(transparent)]
    Arrow(#[from] ArrowSegmentError),
    /// A segment name is invalid.
    #[error(transparent)]
    Name(#[from] NameError),
    /// A worker could not be forked.
    #[error(transparent)]
    Fork(#[from] ForkError),
    /// A worker could not be spawned.
    #[error("cannot spawn worker {exe}: {source}")]
    Spawn {
        /// The worker executable.
        exe: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A synchronisation wait failed.
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// The pool did not become ready.
    #[error(
        "worker pool not ready after {waited:?}: {ready} of {workers} workers started ({reason})"
    )]
    PoolStart {
        /// Why.
        reason: String,
        /// Workers asked for.
        workers: usize,
        /// Workers ready.
        ready: usize,
        /// Time waited.
        waited: Duration,
    },
    /// No such column.
    #[error("no column named {column:?} (columns: {available})")]
    NoColumn {
        /// The name asked for.
        column: String,
        /// The columns present.
        available: String,
    },
    /// A column is not of the element type asked for.
    #[error("column {column} holds {found}, not {expected}")]
    ColumnType {
        /// The column.
        column: String,
        /// The type asked for.
        expected: String,
        /// The column's type.
        found: String,
    },
    /// Input that the job cannot use.
    #[error("{what}: {reason}")]
    Input {
        /// The file, column or parameter.
        what: String,
        /// Why.
        reason: String,
    },
    /// A kernel returned an error or panicked.
    #[error("kernel {kernel} failed in chunk {chunk} (first row {first_row}): {message}")]
    Kernel {
        /// The kernel's name.
        kernel: String,
        /// The chunk index.
        chunk: usize,
        /// The first row of the chunk.
        first_row: usize,
        /// The kernel's message.
        message: String,
    },
    /// The job's deadline passed; it was cancelled.
    #[error(
        "job {kernel} cancelled: deadline of {deadline:?} exceeded ({done} of {chunks} chunks done)"
    )]
    Deadline {
        /// The kernel's name.
        kernel: String,
        /// The deadline.
        deadline: Duration,
        /// Chunks completed.
        done: usize,
        /// Chunks in the job.
        chunks: usize,
    },
    /// [`crate::RunOptions::interrupt`] asked the job to stop; it was cancelled and the pool
    /// stays usable.
    #[error("job {kernel} interrupted ({done} of {chunks} chunks done)")]
    Interrupted {
        /// The kernel's name.
        kernel: String,
        /// Chunks completed.
        done: usize,
        /// Chunks in the job.
        chunks: usize,
    },
    /// A chunk killed every worker that tried it (twice): a crash or memory-limit hit in the
    /// kernel, not a passing failure. The job was abandoned; the pool goes on.
    #[error(
        "job {kernel}: chunk {chunk} (first row {first_row}) killed two workers in a row (last: {how}); job abandoned"
    )]
    ChunkKillsWorkers {
        /// The kernel's name.
        kernel: String,
        /// The chunk index.
        chunk: usize,
        /// The chunk's first row.
        first_row: usize,
        /// How the last worker died.
        how: String,
    },
    /// Workers kept dying: the job was abandoned.
    #[error("job {kernel} failed: {deaths} worker deaths (last: {last}); giving up")]
    WorkersDied {
        /// The kernel's name.
        kernel: String,
        /// Deaths during the job.
        deaths: usize,
        /// The last death.
        last: String,
    },
    /// The engine was shut down or its pool is broken.
    #[error("engine unusable: {0}")]
    Broken(String),
    /// An I/O error on a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}
