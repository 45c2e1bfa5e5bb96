//! # shmframe
//!
//! A zero-copy shared-memory dataframe compute engine. A coordinator loads arrays into named
//! shared-memory segments laid out as Arrow IPC files; a persistent pool of forked worker
//! processes maps the same segments read-only, computes row-wise results, writes them into
//! output segments (disjoint rows, no copy back), and signals completion through futex
//! semaphores in shared memory. Nothing but a small job descriptor crosses between processes.
//!
//! ```no_run
//! use shmframe::{Engine, RowKernel};
//! let engine = Engine::builder().workers(2).build()?;       // forks the pool once
//! let frame = engine.frame_from_npy("x.npy")?;              // mapped in place when aligned
//! let norms = engine.run(RowKernel::L2, &frame, "x")?;      // a shared column, in shm
//! let unit = engine.run(RowKernel::NormalizeL2, &frame, "x")?; // a shared matrix
//! let cos = engine.run_with_query(RowKernel::Cosine, &unit, "x", &[1.0, 0.0, 0.0])?;
//! let values: &[f64] = norms.values("l2_norm")?;           // typed, zero-copy
//! # Ok::<(), shmframe::EngineError>(())
//! ```
//!
//! ## The operation model
//!
//! Every kind of job (a built-in row kernel, a user kernel, `count_nonzero`, an image batch)
//! is one module of `ops/` with two halves: the **plan** half runs in the coordinator (checks
//! the inputs, lays out the output segment, writes a descriptor) and the **execute** half runs
//! in a worker for each chunk of rows it claims. The shared job loop between them (posting,
//! claiming, a dead worker's chunks redone, deadlines, recycled outputs) knows nothing about
//! any operation. See `docs/ARCHITECTURE.md`.
//!
//! With the default `image` feature, image batches run on the same pool: [`image`] decodes,
//! resizes and encodes files into a shared `uint8 [H, W, C]` tensor frame
//! ([`Engine::resize_paths`], [`Engine::resize_frame`]).
#![forbid(unsafe_code)]

mod coordinator;
mod error;
mod frame;
#[cfg(feature = "image")]
pub mod image;
pub mod kernels;
mod load;
pub mod npy;
mod ops;
mod protocol;
mod recycle;
mod tuning;
mod user;
mod worker;

pub use coordinator::{
    Engine, EngineBuilder, Interrupt, JobStats, Kernel, Progress, RunOptions, StartMethod,
    WorkerDeath,
};
pub use error::EngineError;
pub use frame::{Element, SharedFrame};
pub use kernels::{Accumulate, RowKernel};
#[doc(hidden)]
pub use load::decode_for_fuzzing;
pub use load::{FileFormat, WritableMatrix};
pub use protocol::MAX_WORKERS;
pub use shmframe_ipc::{SegmentDir, SegmentName};
pub use user::{KernelRegistry, RowBlock, UserKernel};

/// The column name of frames loaded from `.npy` files and in-memory matrices.
pub const MATRIX_COLUMN: &str = "x";

/// The environment variable through which a spawned worker learns its role.
pub const WORKER_ENV: &str = "SHMFRAME_WORKER";

/// Call first thing in `main` of any executable used as a spawn-mode worker. When the process
/// was started as a worker it runs the worker loop and returns `Some(exit code)`; the caller
/// must exit with it. Otherwise it returns `None` at once. A malformed [`WORKER_ENV`] is
/// reported on stderr and gives `Some(2)`.
///
/// The same executable also serves as the pool's janitor (the process that removes the
/// coordinator's segments if the coordinator dies): then this waits for the coordinator to
/// go, removes what it left, and ends the process itself (`_exit`, running no destructors or
/// `atexit` handlers: a closing coordinator waits for that exit, not for a host's teardown
/// such as an interpreter's finalisation).
///
/// ```no_run
/// // First thing in main():
/// let registry = shmframe::KernelRegistry::new(); // register the same user kernels
/// if let Some(code) = shmframe::spawned_worker_main(&registry) {
///     std::process::exit(code);
/// }
/// // ... the program ...
/// ```
pub fn spawned_worker_main(registry: &KernelRegistry) -> Option<i32> {
    let v = std::env::var(WORKER_ENV).ok()?;
    let args = match protocol::WorkerRole::decode(&v) {
        Ok(protocol::WorkerRole::Worker(a)) => a,
        Ok(protocol::WorkerRole::Janitor(j)) => {
            // Its end of the pipe is stdin; it must outlive the coordinator, so no death signal.
            let code = coordinator::janitor_main(std::io::stdin().lock(), &j, false);
            shmframe_ipc::exit_now(code);
        }
        Err(e) => {
            eprintln!("shmframe worker: malformed {WORKER_ENV}: {e}");
            return Some(2);
        }
    };
    if !shmframe_ipc::process::die_with_parent(nix::sys::signal::Signal::SIGKILL, args.parent) {
        return Some(0);
    }
    Some(worker::run(args, std::sync::Arc::new(registry.clone())))
}
