//! The coordinator: owns the control segment and the worker pool, posts jobs, waits for them,
//! and repairs the pool when a worker dies.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow_array::{Array, ArrayRef, FixedSizeListArray};
use arrow_buffer::NullBuffer;
use arrow_schema::{DataType, Field, Schema};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use shmframe_ipc::arrow::{ColumnPlan, PlannedSegment, plan_layout, plan_layout_into};
use shmframe_ipc::sync::atomic::Ordering;
use shmframe_ipc::{
    ArrowSegmentError, CreateOptions, SegmentDir, SegmentError, SegmentName, SharedRegion,
    fork_worker, matrix,
};

use crate::control::{
    ACTIVE, BufRef, CANCEL, CHUNK_DONE, CHUNK_FREE, CONTROL_LEN, CURRENT_SEQ, Control, DESC_MAX,
    DONE_CHUNKS, Dtype, FAILED, Hooks, InputDesc, JobDesc, Loc, MAX_CHUNKS, MAX_WORKERS, N_CHUNKS,
    NEXT_CHUNK, Op, S_JOIN, S_PID, SHUTDOWN,
};
use crate::error::EngineError;
use crate::frame::SharedFrame;
use crate::kernels::{Accumulate, RowKernel};
use crate::recycle::{OutputKey, OutputPool};
use crate::user::{KernelRegistry, UserKernel};
use crate::worker::WorkerArgs;

/// The most bytes of dropped outputs an engine keeps by default (see
/// [`EngineBuilder::recycle_outputs`]).
const DEFAULT_RECYCLE_BYTES: u64 = 256 << 20;

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
}

/// Builds an [`Engine`].
#[derive(Debug, Clone)]
pub struct EngineBuilder {
    workers: usize,
    threads_per_worker: usize,
    start: StartMethod,
    dir: SegmentDir,
    registry: KernelRegistry,
    ready_timeout: Duration,
    stall_timeout: Duration,
    grace: Duration,
    memory_limit: u64,
    recycle: Option<u64>,
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
            ready_timeout: Duration::from_secs(10),
            stall_timeout: Duration::from_secs(300),
            grace: Duration::from_millis(500),
            memory_limit: 0,
            recycle: None,
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
    /// (default 300 s): the last line of defence against a hang when no deadline is given.
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

    /// Creates the control segment and starts the pool; returns when every worker is ready.
    pub fn build(self) -> Result<Engine, EngineError> {
        let name = SegmentName::owned("ctl")?;
        let region = SharedRegion::create(name.clone(), CONTROL_LEN, &self.dir)?;
        let mut pool = Pool {
            control: Control::new(region),
            control_name: name,
            slots: vec![None; self.workers],
            cfg: self,
            seq: 0,
            log: Vec::new(),
            redo: Vec::new(),
            poison: None,
        };
        let start = Instant::now();
        for slot in 0..pool.slots.len() {
            pool.start_worker(slot)?;
        }
        let n = pool.slots.len();
        let mut ready = 0;
        while ready < n {
            if pool
                .control
                .ready_sem()
                .wait_timeout(Duration::from_millis(10))
                .is_ok()
            {
                ready += 1;
                continue;
            }
            let dead = pool.reap();
            if let Some((slot, pid, how)) = dead.first() {
                return Err(EngineError::PoolStart {
                    workers: n,
                    ready,
                    waited: start.elapsed(),
                    reason: format!("worker {slot} (pid {pid}) died during start-up: {how}"),
                });
            }
            if start.elapsed() > pool.cfg.ready_timeout {
                return Err(EngineError::PoolStart {
                    workers: n,
                    ready,
                    waited: start.elapsed(),
                    reason: "timed out".into(),
                });
            }
        }
        let cap = pool.cfg.recycle.unwrap_or_else(|| {
            let eighth = pool.cfg.dir.total_bytes().unwrap_or(0) / 8;
            eighth.min(DEFAULT_RECYCLE_BYTES)
        });
        Ok(Engine {
            pool: Mutex::new(pool),
            outputs: Arc::new(OutputPool::new(cap)),
        })
    }
}

#[derive(Debug, Clone, Copy)]
struct WorkerProc {
    pid: Pid,
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

struct Pool {
    control: Control,
    control_name: SegmentName,
    slots: Vec<Option<WorkerProc>>,
    cfg: EngineBuilder,
    seq: u32,
    log: Vec<WorkerDeath>,
    /// Per chunk of the running job: how many workers died holding it.
    redo: Vec<u8>,
    /// A chunk that killed two workers: (chunk, how the second one died).
    poison: Option<(usize, String)>,
}

impl Pool {
    fn start_worker(&mut self, slot: usize) -> Result<(), EngineError> {
        let args = WorkerArgs {
            control: self.control_name.clone(),
            dir: self.cfg.dir.clone(),
            slot,
            threads: self.cfg.threads_per_worker,
            parent: std::process::id(),
            memory_limit: self.cfg.memory_limit,
        };
        let pid = match &self.cfg.start {
            StartMethod::Fork => {
                let registry = Arc::new(self.cfg.registry.clone());
                fork_worker(move || crate::worker::run(args, registry))?
            }
            StartMethod::Spawn { exe } => spawn_worker(exe.as_deref(), &args)?,
        };
        self.slots[slot] = Some(WorkerProc { pid });
        Ok(())
    }

    /// Reaps dead workers; returns (slot, pid, how) of each.
    fn reap(&mut self) -> Vec<(usize, Pid, String)> {
        let mut dead = Vec::new();
        for (slot, w) in self.slots.iter_mut().enumerate() {
            let Some(proc_) = *w else { continue };
            let how = match waitpid(proc_.pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => continue,
                Ok(WaitStatus::Exited(_, code)) => format!("exit code {code}"),
                Ok(WaitStatus::Signaled(_, sig, _)) => format!("signal {sig}"),
                Ok(_) => continue,
                Err(e) => format!("lost ({e})"),
            };
            *w = None;
            dead.push((slot, proc_.pid, how));
        }
        dead
    }

    /// Handles deaths during job `seq` (or between jobs when `seq` is None): releases their
    /// chunks, starts replacements that join the job, and settles their participation.
    fn repair(&mut self, seq: Option<u32>, n_chunks: usize) -> Result<usize, EngineError> {
        let dead = self.reap();
        let count = dead.len();
        for (slot, pid, how) in dead {
            let mark = slot as u32 + 1;
            let mut redone = 0;
            for c in self.control.chunks(n_chunks) {
                if c.compare_exchange(mark, CHUNK_FREE, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
                {
                    redone += 1;
                }
            }
            let c = &self.control;
            let mut need_replacement_join = false;
            if let Some(seq) = seq {
                // The replacement joins first, so ACTIVE cannot reach 0 in between.
                c.word(ACTIVE).fetch_add(1, Ordering::AcqRel);
                need_replacement_join = true;
                if c.slot(slot, S_JOIN)
                    .compare_exchange(seq, 0, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
                {
                    c.word(ACTIVE).fetch_sub(1, Ordering::AcqRel);
                }
                c.slot(slot, S_JOIN).store(seq, Ordering::Release);
            }
            tracing::warn!(slot, pid = pid.as_raw(), how = %how, chunks_redone = redone, "worker died; starting a replacement");
            self.log.push(WorkerDeath {
                slot,
                pid: pid.as_raw() as u32,
                how,
                chunks_redone: redone,
            });
            let before = self.control.ready_sem().value();
            if let Err(e) = self.start_worker(slot) {
                if need_replacement_join && let Some(seq) = seq {
                    // Nobody will take this participation: settle it now.
                    let c = &self.control;
                    if c.slot(slot, S_JOIN)
                        .compare_exchange(seq, 0, Ordering::AcqRel, Ordering::Relaxed)
                        .is_ok()
                        && c.word(ACTIVE).fetch_sub(1, Ordering::AcqRel) == 1
                    {
                        c.done_sem().post();
                    }
                }
                return Err(e);
            }
            let _ = before;
            // The replacement's readiness post is consumed here so later waits stay balanced.
            let _ = self
                .control
                .ready_sem()
                .wait_timeout(self.cfg.ready_timeout);
        }
        Ok(count)
    }

    fn live_pids(&self) -> Vec<Pid> {
        self.slots.iter().flatten().map(|w| w.pid).collect()
    }

    fn shutdown(&mut self) {
        self.control.word(SHUTDOWN).store(1, Ordering::Release);
        self.control.job_event().notify_all();
        let deadline = Instant::now() + self.cfg.grace;
        let mut termed = false;
        loop {
            self.reap();
            if self.slots.iter().all(Option::is_none) {
                return;
            }
            if Instant::now() >= deadline {
                if termed {
                    for pid in self.live_pids() {
                        let _ = kill(pid, Signal::SIGKILL);
                    }
                    for (slot, w) in self.slots.iter_mut().enumerate() {
                        if let Some(p) = w.take() {
                            let _ = waitpid(p.pid, None);
                            tracing::debug!(slot, "worker killed at shutdown");
                        }
                    }
                    return;
                }
                for pid in self.live_pids() {
                    let _ = kill(pid, Signal::SIGTERM);
                }
                termed = true;
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

fn spawn_worker(exe: Option<&std::path::Path>, args: &WorkerArgs) -> Result<Pid, EngineError> {
    let exe = match exe {
        Some(p) => p.to_path_buf(),
        None => std::env::current_exe().map_err(|e| EngineError::Spawn {
            exe: "current_exe".into(),
            source: e,
        })?,
    };
    let child = std::process::Command::new(&exe)
        .env(crate::WORKER_ENV, crate::encode_worker_env(args))
        .stdin(std::process::Stdio::null())
        .spawn()
        .map_err(|e| EngineError::Spawn {
            exe: exe.display().to_string(),
            source: e,
        })?;
    // The child is reaped through waitpid like a forked one; the handle is not needed.
    Ok(Pid::from_raw(child.id() as i32))
}

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
    /// [`EngineBuilder::recycle_outputs`]).
    pub output_reused: bool,
}

/// Options of one job.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Rows per chunk (default: about 8 chunks per worker, a multiple of 64 rows).
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

impl Kernel {
    fn name(&self) -> String {
        match self {
            Kernel::Row(k) => k.name().to_string(),
            Kernel::User(n) => n.clone(),
        }
    }
}

/// The coordinator of a persistent pool of worker processes.
///
/// ```no_run
/// use shmframe::{Engine, RowKernel, SharedFrame};
/// let engine = Engine::builder().workers(2).build()?;
/// let frame = engine.frame_from_npy("x.npy")?;
/// let norms = engine.run(RowKernel::L2, &frame, "x")?;
/// let unit = engine.run(RowKernel::NormalizeL2, &frame, "x")?;
/// let cos = engine.run_with_query(RowKernel::Cosine, &unit, "x", &[1.0, 0.0, 0.0])?;
/// # Ok::<(), shmframe::EngineError>(())
/// ```
pub struct Engine {
    pool: Mutex<Pool>,
    /// Dropped outputs kept for reuse (see [`crate::recycle`]).
    outputs: Arc<OutputPool>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("workers", &self.workers())
            .finish()
    }
}

impl Engine {
    /// A builder with the defaults.
    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }

    fn pool(&self) -> std::sync::MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Worker processes in the pool.
    pub fn workers(&self) -> usize {
        self.pool().slots.len()
    }

    /// Pids of the live workers.
    pub fn worker_pids(&self) -> Vec<u32> {
        self.pool()
            .live_pids()
            .iter()
            .map(|p| p.as_raw() as u32)
            .collect()
    }

    /// The segment directory.
    pub fn segment_dir(&self) -> SegmentDir {
        self.pool().cfg.dir.clone()
    }

    /// The name of the control segment.
    pub fn control_segment(&self) -> SegmentName {
        self.pool().control_name.clone()
    }

    /// Every worker death seen so far.
    pub fn worker_deaths(&self) -> Vec<WorkerDeath> {
        self.pool().log.clone()
    }

    /// Runs `kernel` on column `column` of `frame`; returns a new shared frame.
    pub fn run(
        &self,
        kernel: impl Into<Kernel>,
        frame: &SharedFrame,
        column: &str,
    ) -> Result<SharedFrame, EngineError> {
        self.run_full(
            kernel.into(),
            frame,
            &[column],
            None,
            &RunOptions::default(),
        )
        .map(|(f, _)| f)
    }

    /// Runs a kernel that takes a query vector (`dot`, `cosine`).
    pub fn run_with_query(
        &self,
        kernel: impl Into<Kernel>,
        frame: &SharedFrame,
        column: &str,
        query: &[f64],
    ) -> Result<SharedFrame, EngineError> {
        self.run_full(
            kernel.into(),
            frame,
            &[column],
            Some(query),
            &RunOptions::default(),
        )
        .map(|(f, _)| f)
    }

    /// Runs a row kernel across several primitive columns (dataframe style: "the norm across
    /// columns x, y, z"). The output is `f64`.
    pub fn run_columns(
        &self,
        kernel: impl Into<Kernel>,
        frame: &SharedFrame,
        columns: &[&str],
    ) -> Result<SharedFrame, EngineError> {
        self.run_full(kernel.into(), frame, columns, None, &RunOptions::default())
            .map(|(f, _)| f)
    }

    /// The general form: any kernel, one matrix column or several primitive columns, an
    /// optional query, options; returns the output frame and the job's statistics.
    pub fn run_full(
        &self,
        kernel: Kernel,
        frame: &SharedFrame,
        columns: &[&str],
        query: Option<&[f64]>,
        opts: &RunOptions,
    ) -> Result<(SharedFrame, JobStats), EngineError> {
        let pool = self.pool();
        let dir = pool.cfg.dir.clone();
        let workers = pool.slots.len();
        let plan = plan_job(&kernel, frame, columns, query, opts, &pool.cfg.registry)?;
        // The output segment: Arrow metadata now, values by the workers, validity from input.
        let out_field = plan.out_field.clone();
        let schema = Schema::new(vec![out_field]);
        let null_count = plan.nulls.as_ref().map_or(0, |n| n.null_count());
        let key = OutputKey {
            field: plan.out_field.clone(),
            rows: plan.rows,
            null_count,
        };
        let (mut planned, reused) = self.output_segment(&key, &schema, &dir)?;
        let name = planned.segment.name().clone();
        let bufs = planned.columns[0].clone();
        if let (Some(v), Some(nulls)) = (&bufs.validity, &plan.nulls) {
            let (body, base) = planned.segment.body_mut();
            let bits = nulls.inner().sliced();
            let dst = &mut body[v.start - base..v.end - base];
            dst.copy_from_slice(&bits.as_slice()[..dst.len()]);
        }
        let out_ref = BufRef {
            loc: Loc::Segment(name.to_string()),
            offset: bufs.values.start,
            len: bufs.values.len(),
        };
        let query_frame = match &plan.query {
            Some(q) => Some(query_frame(q, plan.in_dtype, &dir)?),
            None => None,
        };
        let query_ref = match &query_frame {
            Some(f) => {
                let arr = f.batch().column(0).to_data();
                let bytes = arr.buffers()[0].as_slice();
                Some((f.buf_ref(bytes, "query")?, plan.in_dtype))
            }
            None => None,
        };
        let chunk_rows = opts
            .chunk_rows
            .unwrap_or_else(|| default_chunk_rows(plan.rows, workers))
            .max(1);
        let desc = JobDesc {
            seq: 0,
            op: plan.op.clone(),
            rows: plan.rows,
            chunk_rows,
            input: Some(plan.input.clone()),
            query: query_ref,
            output: Some((out_ref, plan.out_dtype, plan.out_width)),
            keep_output: reused,
            hooks: Hooks::default(),
        };
        drop(pool);
        let stats = self.execute_job(desc, chunk_rows, opts, &kernel.name())?;
        let stats = JobStats {
            input_bytes: plan.input_bytes,
            ..stats
        };
        drop(query_frame);
        let seg = planned.segment.publish()?;
        let frame = SharedFrame::from_recyclable(seg, &self.outputs, key)?;
        Ok((
            frame,
            JobStats {
                output_reused: reused,
                ..stats
            },
        ))
    }

    /// The output segment of a row job with the layout `key`: a recycled one if the engine
    /// holds one, else a new one (after releasing the recycled ones if it does not fit).
    /// Returns whether it was recycled.
    fn output_segment(
        &self,
        key: &OutputKey,
        schema: &Schema,
        dir: &SegmentDir,
    ) -> Result<(PlannedSegment, bool), EngineError> {
        let plans = [ColumnPlan {
            null_count: key.null_count,
            value_bytes: 0,
        }];
        if let Some(seg) = self.outputs.take(key) {
            match plan_layout_into(seg, schema, key.rows, &plans) {
                Ok(p) => return Ok((p, true)),
                // Cannot happen for an equal key (the layout follows from it); a new segment
                // is the remedy if it ever does.
                Err(e) => tracing::warn!(error = %e, "recycled output refused"),
            }
        }
        let create = CreateOptions {
            dir: dir.clone(),
            ..Default::default()
        };
        let fresh = || -> Result<PlannedSegment, ArrowSegmentError> {
            let name = SegmentName::owned("out").map_err(SegmentError::from)?;
            plan_layout(name, &create, schema, key.rows, &plans)
        };
        match fresh() {
            Err(ArrowSegmentError::Segment(SegmentError::NoSpace { .. }))
                if self.outputs.bytes() > 0 =>
            {
                self.outputs.clear();
                Ok((fresh()?, false))
            }
            r => Ok((r?, false)),
        }
    }

    /// Unlinks the dropped job outputs this engine keeps for reuse (see
    /// [`EngineBuilder::recycle_outputs`]); returns the bytes released.
    pub fn release_recycled(&self) -> u64 {
        let b = self.outputs.bytes();
        self.outputs.clear();
        b
    }

    /// Runs a planned job: the test hooks of `opts` applied, chunks of `chunk_rows` rows.
    pub(crate) fn execute_job(
        &self,
        mut desc: JobDesc,
        chunk_rows: usize,
        opts: &RunOptions,
        name: &str,
    ) -> Result<JobStats, EngineError> {
        let mut pool = self.pool();
        desc.chunk_rows = chunk_rows;
        let n_chunks = desc.rows.div_ceil(chunk_rows);
        if n_chunks > MAX_CHUNKS {
            return Err(EngineError::Input {
                what: "chunk_rows".into(),
                reason: format!(
                    "{n_chunks} chunks exceed the limit of {MAX_CHUNKS}; use larger chunks"
                ),
            });
        }
        desc.hooks.chunk_sleep_us = opts.test_chunk_sleep.map_or(0, |d| d.as_micros() as u64);
        desc.hooks.kill_pid_after = opts.test_kill_worker_after_chunks.and_then(|(slot, n)| {
            pool.slots
                .get(slot)
                .copied()
                .flatten()
                .map(|w| (w.pid.as_raw() as u32, n))
        });
        pool.execute(desc, n_chunks, opts, name)
    }

    /// Posts an empty job (no rows) that every worker wakes for and acknowledges: the
    /// round-trip benchmark of the pool itself.
    pub fn run_empty(&self) -> Result<JobStats, EngineError> {
        let mut pool = self.pool();
        let workers = pool.slots.len();
        let desc = JobDesc {
            seq: 0,
            op: Op::Empty,
            rows: 0,
            chunk_rows: 1,
            input: None,
            query: None,
            output: None,
            keep_output: false,
            hooks: Hooks::default(),
        };
        let _ = workers;
        pool.execute(desc, 0, &RunOptions::default(), "empty")
    }

    /// Stops the workers (polite, then SIGTERM, then SIGKILL after the grace period) and
    /// removes the control segment. Dropping the engine does the same.
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.pool().shutdown();
    }
}

impl Pool {
    fn execute(
        &mut self,
        mut desc: JobDesc,
        n_chunks: usize,
        opts: &RunOptions,
        kernel: &str,
    ) -> Result<JobStats, EngineError> {
        let deadline = opts.deadline;
        // Replace workers that died between jobs.
        self.repair(None, 0)?;
        self.seq = self.seq.wrapping_add(1).max(1);
        let seq = self.seq;
        desc.seq = seq;
        let json = serde_json::to_vec(&desc).expect("descriptor serialises");
        let c = &self.control;
        if !c.write_blob(true, &json) {
            return Err(EngineError::Input {
                what: "job descriptor".into(),
                reason: format!(
                    "{} bytes exceed the {DESC_MAX} byte descriptor area (too many columns?)",
                    json.len()
                ),
            });
        }
        for s in c.chunks(n_chunks) {
            s.store(CHUNK_FREE, Ordering::Relaxed);
        }
        c.word(NEXT_CHUNK).store(0, Ordering::Relaxed);
        c.word(N_CHUNKS).store(n_chunks as u32, Ordering::Relaxed);
        c.word(DONE_CHUNKS).store(0, Ordering::Relaxed);
        c.word(FAILED).store(0, Ordering::Relaxed);
        c.word(CANCEL).store(0, Ordering::Relaxed);
        let live: Vec<usize> = (0..self.slots.len())
            .filter(|s| self.slots[*s].is_some())
            .collect();
        c.word(ACTIVE).store(live.len() as u32, Ordering::Relaxed);
        self.redo = vec![0; n_chunks];
        self.poison = None;
        for s in &live {
            c.slot(*s, S_JOIN).store(seq, Ordering::Relaxed);
        }
        // SYNC POINT: the descriptor and every reset above are published by this Release
        // store; workers load CURRENT_SEQ with Acquire before reading the descriptor.
        c.word(CURRENT_SEQ).store(seq, Ordering::Release);
        let start = Instant::now();
        c.job_event().notify_all();
        let mut deaths = 0usize;
        let mut last_progress = (0u32, Instant::now());
        loop {
            match self
                .control
                .done_sem()
                .wait_timeout(Duration::from_millis(10))
            {
                Ok(()) => break,
                Err(_) => {
                    // Waited 10 ms: look after the workers (a death is seen within ~10 ms).
                    let n = self.repair(Some(seq), n_chunks)?;
                    deaths += n;
                    if let Some((chunk, how)) = self.poison.take() {
                        self.abandon(seq);
                        return Err(EngineError::ChunkKillsWorkers {
                            kernel: kernel.into(),
                            chunk,
                            first_row: chunk * desc.chunk_rows,
                            how,
                        });
                    }
                    if deaths > 4 * self.slots.len() + 4 {
                        let last = self
                            .log
                            .last()
                            .map(|d| format!("pid {} {}", d.pid, d.how))
                            .unwrap_or_default();
                        self.abandon(seq);
                        return Err(EngineError::WorkersDied {
                            kernel: kernel.into(),
                            deaths,
                            last,
                        });
                    }
                    let done = self.control.word(DONE_CHUNKS).load(Ordering::Acquire);
                    if done != last_progress.0 {
                        last_progress = (done, Instant::now());
                        if let Some(p) = &opts.progress {
                            (p.0)(done as usize, n_chunks);
                        }
                    }
                    let elapsed = start.elapsed();
                    let stalled = last_progress.1.elapsed() > self.cfg.stall_timeout;
                    if deadline.is_some_and(|d| elapsed > d) || stalled {
                        self.abandon(seq);
                        return Err(EngineError::Deadline {
                            kernel: kernel.into(),
                            deadline: deadline.unwrap_or(self.cfg.stall_timeout),
                            done: done as usize,
                            chunks: n_chunks,
                        });
                    }
                }
            }
        }
        let seconds = start.elapsed().as_secs_f64();
        if let Some(f) = self.control.failure() {
            return Err(EngineError::Kernel {
                kernel: f.kernel,
                chunk: f.chunk,
                first_row: f.first_row,
                message: f.message,
            });
        }
        let done = self
            .control
            .chunks(n_chunks)
            .iter()
            .filter(|s| s.load(Ordering::Acquire) == CHUNK_DONE)
            .count();
        if done != n_chunks {
            return Err(EngineError::Broken(format!(
                "job {kernel} ended with {done} of {n_chunks} chunks done"
            )));
        }
        Ok(JobStats {
            seconds,
            rows: desc.rows,
            chunks: n_chunks,
            input_bytes: 0,
            output_reused: false,
            worker_deaths: deaths,
        })
    }

    /// Cancels job `seq`: workers stop claiming; those that do not leave within the grace
    /// period (stopped, stuck in a long chunk) are killed and replaced.
    fn abandon(&mut self, seq: u32) {
        self.control.word(CANCEL).store(1, Ordering::Release);
        let until = Instant::now() + self.cfg.grace;
        while Instant::now() < until {
            if self.control.word(ACTIVE).load(Ordering::Acquire) == 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        for slot in 0..self.slots.len() {
            if self.control.slot(slot, S_JOIN).load(Ordering::Acquire) == seq
                && let Some(w) = self.slots[slot]
            {
                tracing::warn!(
                    slot,
                    pid = w.pid.as_raw(),
                    "worker did not leave the cancelled job; killing it"
                );
                let _ = kill(w.pid, Signal::SIGKILL);
                let _ = waitpid(w.pid, None);
                self.slots[slot] = None;
                self.control.slot(slot, S_JOIN).store(0, Ordering::Release);
                self.log.push(WorkerDeath {
                    slot,
                    pid: w.pid.as_raw() as u32,
                    how: "killed: stuck in a cancelled job".into(),
                    chunks_redone: 0,
                });
                if let Err(e) = self.start_worker(slot) {
                    tracing::error!(slot, error = %e, "cannot replace worker");
                } else {
                    let _ = self
                        .control
                        .ready_sem()
                        .wait_timeout(self.cfg.ready_timeout);
                }
            }
        }
        self.control.word(ACTIVE).store(0, Ordering::Release);
        // Drain a completion post that may have raced with the cancellation.
        let _ = self.control.done_sem().try_wait();
        let _ = self.control.slot(0, S_PID);
    }
}

fn default_chunk_rows(rows: usize, workers: usize) -> usize {
    let target = rows.div_ceil(workers.max(1) * 8);
    target.next_multiple_of(64).max(64)
}

struct JobPlan {
    op: Op,
    input: InputDesc,
    rows: usize,
    in_dtype: Dtype,
    out_dtype: Dtype,
    out_width: usize,
    out_field: Field,
    nulls: Option<NullBuffer>,
    query: Option<Vec<f64>>,
    input_bytes: usize,
}

fn plan_job(
    kernel: &Kernel,
    frame: &SharedFrame,
    columns: &[&str],
    query: Option<&[f64]>,
    opts: &RunOptions,
    registry: &KernelRegistry,
) -> Result<JobPlan, EngineError> {
    if columns.is_empty() {
        return Err(EngineError::Input {
            what: "columns".into(),
            reason: "no column given".into(),
        });
    }
    let needs_query = matches!(kernel, Kernel::Row(k) if k.needs_query());
    if needs_query != query.is_some() {
        return Err(EngineError::Input {
            what: format!("kernel {}", kernel.name()),
            reason: if needs_query {
                "needs a query vector".into()
            } else {
                "takes no query vector".into()
            },
        });
    }
    let (op, matrix_out) = match kernel {
        Kernel::Row(k) => {
            let acc = if opts.native_accumulation {
                Accumulate::Native
            } else {
                Accumulate::F64
            };
            (
                Op::Row {
                    id: k.id(),
                    ddof: k.ddof(),
                    acc: acc.id(),
                },
                k.output_is_matrix(),
            )
        }
        Kernel::User(name) => {
            if registry.get(name).is_none() {
                return Err(EngineError::Input {
                    what: format!("kernel {name}"),
                    reason: format!(
                        "not registered (registered: {})",
                        registry.names().collect::<Vec<_>>().join(", ")
                    ),
                });
            }
            (Op::User { name: name.clone() }, false)
        }
    };
    let rows = frame.num_rows();
    let first = frame.column(columns[0])?;
    let default_name = |k: &Kernel| k.name().replace('-', "_");
    if columns.len() == 1 && matches!(first.data_type(), DataType::FixedSizeList(..)) {
        let list = first
            .as_any()
            .downcast_ref::<FixedSizeListArray>()
            .expect("fixed-size list");
        let cols = list.value_length() as usize;
        let values = list.values();
        // u8 matrices (image tensors) are widened to f64 by the workers, row kernels only.
        let dtype = Dtype::from_arrow(values.data_type())
            .filter(|d| {
                matches!(d, Dtype::F32 | Dtype::F64)
                    || (*d == Dtype::U8 && matches!(kernel, Kernel::Row(_)))
            })
            .ok_or_else(|| EngineError::Input {
                what: format!("column {}", columns[0]),
                reason: format!(
                    "matrix of {} (row kernels take f32, f64 or u8; user kernels f32 or f64)",
                    values.data_type()
                ),
            })?;
        let out_t = if dtype == Dtype::U8 {
            Dtype::F64
        } else {
            dtype
        };
        if values.null_count() > 0 {
            return Err(EngineError::Input {
                what: format!("column {}", columns[0]),
                reason: "null values inside rows are not supported (null rows are)".into(),
            });
        }
        let data = values.to_data();
        let w = dtype.width();
        let start = (data.offset() + list.offset() * cols) * w;
        let bytes = &data.buffers()[0].as_slice()[start..start + rows * cols * w];
        let values_ref = frame.buf_ref(bytes, &format!("column {}", columns[0]))?;
        if let Some(q) = query
            && q.len() != cols
        {
            return Err(EngineError::Input {
                what: "query".into(),
                reason: format!(
                    "has {} values, rows of column {} have {cols}",
                    q.len(),
                    columns[0]
                ),
            });
        }
        let (out_dtype, out_width, out_field) = match kernel {
            Kernel::User(name) => {
                let width = registry.get(name).expect("checked").output_cols(cols);
                let name = opts
                    .output_name
                    .clone()
                    .unwrap_or_else(|| default_name(kernel));
                let f = if width == 1 {
                    Field::new(name, DataType::Float64, true)
                } else {
                    matrix::matrix_field(&name, DataType::Float64, width, true)
                };
                (Dtype::F64, width, f)
            }
            Kernel::Row(_) if matrix_out => {
                let name = opts
                    .output_name
                    .clone()
                    .unwrap_or_else(|| columns[0].to_string());
                (
                    out_t,
                    cols,
                    matrix::matrix_field(&name, out_t.to_arrow(), cols, true),
                )
            }
            Kernel::Row(_) => {
                let name = opts
                    .output_name
                    .clone()
                    .unwrap_or_else(|| default_name(kernel));
                (out_t, 1, Field::new(name, out_t.to_arrow(), true))
            }
        };
        return Ok(JobPlan {
            op,
            input: InputDesc::Matrix {
                values: values_ref,
                dtype,
                cols,
            },
            rows,
            in_dtype: dtype,
            out_dtype,
            out_width,
            out_field,
            nulls: list.nulls().cloned(),
            query: query.map(<[f64]>::to_vec),
            input_bytes: rows * cols * w,
        });
    }
    // Several primitive columns, a row across them.
    if matrix_out || matches!(kernel, Kernel::User(_)) {
        return Err(EngineError::Input {
            what: format!("kernel {}", kernel.name()),
            reason: "runs on one matrix column (FixedSizeList or fixed_shape_tensor)".into(),
        });
    }
    let mut descs = Vec::new();
    let mut nulls: Option<NullBuffer> = None;
    let mut input_bytes = 0;
    for name in columns {
        let arr: &ArrayRef = frame.column(name)?;
        let dtype = Dtype::from_arrow(arr.data_type()).ok_or_else(|| EngineError::Input {
            what: format!("column {name}"),
            reason: format!(
                "type {} is not a primitive number or a matrix",
                arr.data_type()
            ),
        })?;
        let data = arr.to_data();
        let w = dtype.width();
        let bytes = &data.buffers()[0].as_slice()[data.offset() * w..(data.offset() + rows) * w];
        descs.push((frame.buf_ref(bytes, &format!("column {name}"))?, dtype));
        nulls = NullBuffer::union(nulls.as_ref(), arr.nulls());
        input_bytes += rows * w;
    }
    if let Some(q) = query
        && q.len() != columns.len()
    {
        return Err(EngineError::Input {
            what: "query".into(),
            reason: format!("has {} values for {} columns", q.len(), columns.len()),
        });
    }
    let name = opts
        .output_name
        .clone()
        .unwrap_or_else(|| default_name(kernel));
    Ok(JobPlan {
        op,
        input: InputDesc::Columns { columns: descs },
        rows,
        in_dtype: Dtype::F64,
        out_dtype: Dtype::F64,
        out_width: 1,
        out_field: Field::new(name, DataType::Float64, true),
        nulls,
        query: query.map(<[f64]>::to_vec),
        input_bytes,
    })
}

/// The query vector in its own small segment, in the input's element type.
fn query_frame(q: &[f64], dtype: Dtype, dir: &SegmentDir) -> Result<SharedFrame, EngineError> {
    use arrow_array::{Float32Array, Float64Array, RecordBatch};
    let arr: ArrayRef = match dtype {
        Dtype::F32 => Arc::new(Float32Array::from_iter_values(q.iter().map(|v| *v as f32))),
        _ => Arc::new(Float64Array::from_iter_values(q.iter().copied())),
    };
    let batch = RecordBatch::try_from_iter([("query", arr)]).map_err(|e| EngineError::Input {
        what: "query".into(),
        reason: e.to_string(),
    })?;
    SharedFrame::from_batches(batch.schema(), &[batch], dir, "query")
}
