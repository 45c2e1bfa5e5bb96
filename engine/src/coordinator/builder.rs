//! [`EngineBuilder`]: how many workers, how they start, where segments live, the pool's time
//! limits and its bound on recycled outputs.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use shmframe_ipc::SegmentDir;

use super::Engine;
use super::pool::Pool;
use crate::error::EngineError;
use crate::ops::RowOutputs;
use crate::protocol::MAX_WORKERS;
use crate::tuning::{
    GRACE, LOAD_LIMIT_FALLBACK, READY_TIMEOUT, RECYCLE_BYTES, RECYCLE_FS_FRACTION, STALL_TIMEOUT,
};
use crate::user::{KernelRegistry, UserKernel};

/// How worker processes are started.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StartMethod {
    /// `fork()` the coordinator (fast, inherits registered kernels). Only allowed while the
    /// coordinator is single-threaded; see docs/ARCHITECTURE.md.
    #[default]
    Fork,
    /// Start `exe` (fork + immediate exec, safe from threaded hosts). The executable must call
    /// [`crate::spawned_worker_main`] first thing in `main`.
    Spawn {
        /// The worker executable (default: the current executable).
        exe: Option<PathBuf>,
    },
    /// Start `program args…` (fork + immediate exec), for hosts whose workers are not an
    /// executable of their own: an interpreter given the arguments that load the engine and
    /// call [`crate::spawned_worker_main`] (the Python package starts its workers as
    /// `python -I -S -c …`). The worker's role is in the environment, as for `Spawn`.
    Command {
        /// The program.
        program: PathBuf,
        /// Its arguments.
        args: Vec<std::ffi::OsString>,
    },
}

/// Builds an [`Engine`].
#[derive(Debug, Clone)]
pub struct EngineBuilder {
    pub(crate) workers: usize,
    pub(crate) threads_per_worker: usize,
    pub(crate) start: StartMethod,
    pub(crate) dir: SegmentDir,
    pub(crate) registry: KernelRegistry,
    pub(crate) ready_timeout: Duration,
    pub(crate) stall_timeout: Duration,
    pub(crate) grace: Duration,
    pub(crate) memory_limit: u64,
    pub(crate) recycle: Option<u64>,
    pub(crate) load_limit: u64,
}

impl Default for EngineBuilder {
    fn default() -> Self {
        EngineBuilder {
            workers: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            threads_per_worker: 1,
            start: StartMethod::Fork,
            dir: SegmentDir::from_env(),
            registry: KernelRegistry::new(),
            ready_timeout: READY_TIMEOUT,
            stall_timeout: STALL_TIMEOUT,
            grace: GRACE,
            memory_limit: 0,
            recycle: None,
            load_limit: crate::load::physical_memory().unwrap_or(LOAD_LIMIT_FALLBACK),
        }
    }
}

impl EngineBuilder {
    /// Worker processes (default: available cores).
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n.clamp(1, MAX_WORKERS);
        self
    }

    /// Threads inside each worker (a process x thread hybrid; default 1).
    pub fn threads_per_worker(mut self, n: usize) -> Self {
        self.threads_per_worker = n.max(1);
        self
    }

    /// How workers are started (default: fork).
    pub fn start_method(mut self, m: StartMethod) -> Self {
        self.start = m;
        self
    }

    /// Where segments live (default: `SHMFRAME_DIR` or `/dev/shm`).
    pub fn segment_dir(mut self, dir: SegmentDir) -> Self {
        self.dir = dir;
        self
    }

    /// Registers a user kernel.
    pub fn register<K: UserKernel>(mut self, kernel: K) -> Self {
        self.registry.register(kernel);
        self
    }

    /// Uses this registry of user kernels.
    pub fn registry(mut self, registry: KernelRegistry) -> Self {
        self.registry = registry;
        self
    }

    /// A job whose completed-chunk count does not move for this long is cancelled
    /// (default 300 s, `STALL_TIMEOUT` in `tuning.rs`): the last line of defence against a hang when no deadline is given.
    pub fn stall_timeout(mut self, d: Duration) -> Self {
        self.stall_timeout = d;
        self
    }

    /// Time between SIGTERM and SIGKILL at shutdown (default 500 ms).
    pub fn grace(mut self, d: Duration) -> Self {
        self.grace = d;
        self
    }

    /// Limits each worker's address space (`RLIMIT_AS`) to `bytes`: a kernel that allocates
    /// past it fails in that worker (allocation failure aborts it), the job fails with an
    /// error naming the chunk, and the pool goes on. Mind that the limit covers the worker's
    /// mappings of the inputs too.
    pub fn worker_memory_limit(mut self, bytes: u64) -> Self {
        self.memory_limit = bytes;
        self
    }

    /// Keeps up to `bytes` of dropped job outputs for reuse by later jobs whose output has the
    /// same layout (same kernel output, rows and null count), so their pages need not be
    /// allocated and zeroed again. 0 turns it off. Default: 256 MiB, or an eighth of the
    /// segment directory's file system if that is smaller (a 64 MiB Docker `/dev/shm` keeps
    /// 8 MiB). Held outputs are unlinked when the engine is dropped, by
    /// [`Engine::release_recycled`], and whenever a new segment would not fit. An output
    /// whose name or path was asked for is never reused. See `docs/ARCHITECTURE.md`.
    pub fn recycle_outputs(mut self, bytes: u64) -> Self {
        self.recycle = Some(bytes);
        self
    }

    /// The most bytes a file loader ([`Engine::frame_from_file`] and the loaders it picks)
    /// may decode from one file: decompressed Arrow buffers, Parquet pages and decoded
    /// batches count against it, checked before the memory is taken wherever the file says
    /// how much it will take. A corrupt or hostile file that claims more fails with an input
    /// error instead of exhausting memory. Default: the machine's physical memory (16 GiB
    /// where `/proc/meminfo` cannot be read). Mapping a file in place takes none of it.
    pub fn load_limit(mut self, bytes: u64) -> Self {
        self.load_limit = bytes;
        self
    }

    /// Creates the control segment and starts the pool; returns when every worker is ready.
    /// On failure every worker started so far is stopped and the control segment removed.
    pub fn build(self) -> Result<Engine, EngineError> {
        let cap = self.recycle.unwrap_or_else(|| {
            let fraction = self.dir.total_bytes().unwrap_or(0) / RECYCLE_FS_FRACTION;
            fraction.min(RECYCLE_BYTES)
        });
        let cfg = Arc::new(self);
        let pool = Pool::start(cfg.clone())?;
        Ok(Engine::new(pool, cfg, RowOutputs::new(cap)))
    }
}
