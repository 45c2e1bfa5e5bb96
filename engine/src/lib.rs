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
//! # Ok::<(), shmframe::EngineError>(())
//! ```
//!
//! Image batches run on the same pool: [`image`] decodes, resizes and encodes files into a
//! shared `uint8 [H, W, C]` tensor frame ([`Engine::resize_paths`], [`Engine::resize_frame`]).
//!
//! See `docs/ARCHITECTURE.md` for the layers, the data's path and the invariants.
#![forbid(unsafe_code)]

mod control;
mod engine;
mod error;
mod frame;
pub mod image;
pub mod kernels;
mod load;
pub mod npy;
mod recycle;
mod user;
mod worker;

pub use control::MAX_WORKERS;
/// The column name of frames loaded from `.npy` files and in-memory matrices.
pub const MATRIX_COLUMN: &str = "x";
pub use engine::{
    Engine, EngineBuilder, JobStats, Kernel, Progress, RunOptions, StartMethod, WorkerDeath,
};
pub use error::EngineError;
pub use frame::SharedFrame;
pub use kernels::{Accumulate, RowKernel};
pub use shmframe_ipc::{SegmentDir, SegmentName};
pub use user::{KernelRegistry, RowBlock, UserKernel};

/// The environment variable through which a spawned worker learns its role.
pub const WORKER_ENV: &str = "SHMFRAME_WORKER";

pub(crate) fn encode_worker_env(a: &worker::WorkerArgs) -> String {
    let dir = match &a.dir {
        SegmentDir::Shm => String::new(),
        SegmentDir::Path(p) => p.display().to_string(),
    };
    format!(
        "{}|{}|{}|{}|{}|{}",
        a.control, a.slot, a.threads, a.parent, a.memory_limit, dir
    )
}

/// Call first thing in `main` of any executable used as a spawn-mode worker. When the process
/// was started as a worker it runs the worker loop and returns `Some(exit code)`; the caller
/// must exit with it. Otherwise it returns `None` at once.
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
    let parts: Vec<&str> = v.splitn(6, '|').collect();
    if parts.len() != 6 {
        eprintln!("shmframe worker: malformed {WORKER_ENV}");
        return Some(2);
    }
    let control = SegmentName::parse(parts[0]).ok()?;
    let slot = parts[1].parse().ok()?;
    let threads = parts[2].parse().ok()?;
    let parent: u32 = parts[3].parse().ok()?;
    let memory_limit = parts[4].parse().ok()?;
    let dir = if parts[5].is_empty() {
        SegmentDir::Shm
    } else {
        SegmentDir::Path(parts[5].into())
    };
    if !shmframe_ipc::process::die_with_parent(nix::sys::signal::Signal::SIGKILL, parent) {
        return Some(0);
    }
    let args = worker::WorkerArgs {
        control,
        dir,
        slot,
        threads,
        parent,
        memory_limit,
    };
    Some(worker::run(args, std::sync::Arc::new(registry.clone())))
}
