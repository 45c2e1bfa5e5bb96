//! Pool supervision: starting workers (fork or spawn), reaping dead ones, replacing them (in
//! the middle of a job too), and stopping them all.

use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use shmframe_ipc::{SegmentName, SharedRegion, fork_worker};

use super::builder::{EngineBuilder, StartMethod};
use super::janitor::Janitor;
use super::options::WorkerDeath;
use crate::error::EngineError;
use crate::protocol::{CONTROL_LEN, Control, WorkerArgs};
use crate::tuning::{CHUNK_DEATHS, WAIT_SLICE};

/// The worker pool: the control segment, a process per slot, the janitor, and the log of
/// deaths.
pub(crate) struct Pool {
    pub(crate) control: Control,
    pub(crate) control_name: SegmentName,
    /// The worker in each slot (None while dead and not yet replaced).
    pub(crate) slots: Vec<Option<Pid>>,
    pub(crate) cfg: Arc<EngineBuilder>,
    /// The last job's sequence number.
    pub(crate) seq: u32,
    /// Every death so far.
    pub(crate) log: Vec<WorkerDeath>,
    /// Per chunk of the running job: how many workers died holding it.
    pub(crate) redo: Vec<u8>,
    /// A chunk that killed [`CHUNK_DEATHS`] workers: (chunk, how the last one died).
    pub(crate) poison: Option<(usize, String)>,
    /// The process that started the pool: only it stops the workers (a `fork()` child holds
    /// a copy of the pool, and its exit must leave the parent's workers alone).
    pub(crate) owner: u32,
    /// Removes the coordinator's segments if the coordinator dies (see `janitor.rs`); `None`
    /// once stopped. Not restarted if it dies: the pool goes on without it.
    pub(crate) janitor: Option<Janitor>,
}

impl Pool {
    /// Creates the control segment, starts every worker and the janitor; returns when all
    /// workers are ready (the janitor is not waited for). On failure the workers started so
    /// far and the janitor are stopped (the control segment goes with the pool).
    pub(crate) fn start(cfg: Arc<EngineBuilder>) -> Result<Pool, EngineError> {
        let name = SegmentName::owned("ctl")?;
        let region = SharedRegion::create(name.clone(), CONTROL_LEN, &cfg.dir)?;
        let mut pool = Pool {
            control: Control::new(region),
            control_name: name,
            slots: vec![None; cfg.workers],
            cfg,
            seq: 0,
            log: Vec::new(),
            redo: Vec::new(),
            poison: None,
            owner: std::process::id(),
            janitor: None,
        };
        match pool.start_all() {
            Ok(()) => Ok(pool),
            Err(e) => {
                pool.shutdown();
                Err(e)
            }
        }
    }

    fn start_all(&mut self) -> Result<(), EngineError> {
        let start = Instant::now();
        for slot in 0..self.slots.len() {
            self.start_worker(slot)?;
        }
        // After the workers, so they start first (measured: a spawned Python janitor started
        // before them cost the engine's start ~3 ms more), and concurrently with their
        // start-up: nothing waits for the janitor. A fork janitor must still come before any
        // thread, like the workers.
        self.janitor = Some(Janitor::start(&self.cfg)?);
        let n = self.slots.len();
        let mut ready = 0;
        while ready < n {
            if self.control.worker_ready().wait_timeout(WAIT_SLICE).is_ok() {
                ready += 1;
                continue;
            }
            let dead = self.reap();
            if let Some((slot, pid, how)) = dead.first() {
                return Err(EngineError::PoolStart {
                    workers: n,
                    ready,
                    waited: start.elapsed(),
                    reason: format!("worker {slot} (pid {pid}) died during start-up: {how}"),
                });
            }
            if start.elapsed() > self.cfg.ready_timeout {
                return Err(EngineError::PoolStart {
                    workers: n,
                    ready,
                    waited: start.elapsed(),
                    reason: "timed out".into(),
                });
            }
        }
        Ok(())
    }

    /// Starts the worker of `slot`.
    pub(crate) fn start_worker(&mut self, slot: usize) -> Result<(), EngineError> {
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
                fork_worker(move || {
                    super::janitor::close_inherited_write_ends();
                    crate::worker::run(args, registry)
                })?
            }
            StartMethod::Spawn { exe } => spawn_worker(exe.as_deref(), &[], &args)?,
            StartMethod::Command {
                program,
                args: argv,
            } => spawn_worker(Some(program), argv, &args)?,
        };
        self.slots[slot] = Some(pid);
        Ok(())
    }

    /// Reaps dead workers; returns (slot, pid, how) of each.
    pub(crate) fn reap(&mut self) -> Vec<(usize, Pid, String)> {
        let mut dead = Vec::new();
        for (slot, w) in self.slots.iter_mut().enumerate() {
            let Some(pid) = *w else { continue };
            let how = match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => continue,
                Ok(WaitStatus::Exited(_, code)) => format!("exit code {code}"),
                Ok(WaitStatus::Signaled(_, sig, _)) => format!("signal {sig}"),
                Ok(_) => continue,
                Err(e) => format!("lost ({e})"),
            };
            *w = None;
            dead.push((slot, pid, how));
        }
        dead
    }

    /// Handles deaths during job `seq` (or between jobs when `seq` is None): releases their
    /// chunks (a chunk that has now killed [`CHUNK_DEATHS`] workers poisons the job), starts
    /// replacements that join the job, and settles their participation. Returns the deaths.
    pub(crate) fn repair(
        &mut self,
        seq: Option<u32>,
        n_chunks: usize,
    ) -> Result<usize, EngineError> {
        let dead = self.reap();
        let count = dead.len();
        for (slot, pid, how) in dead {
            let released = self.control.release_claims(slot, n_chunks);
            for &c in &released {
                if let Some(n) = self.redo.get_mut(c) {
                    *n = n.saturating_add(1);
                    if *n >= CHUNK_DEATHS && self.poison.is_none() {
                        self.poison = Some((c, how.clone()));
                    }
                }
            }
            if let Some(seq) = seq {
                // The replacement is counted in first, so the count cannot reach 0 in between.
                self.control.add_participant();
                self.control.drop_out(slot, seq);
                self.control.join(slot, seq);
            }
            tracing::warn!(slot, pid = pid.as_raw(), how = %how, chunks_redone = released.len(), "worker died; starting a replacement");
            self.log.push(WorkerDeath {
                slot,
                pid: pid.as_raw() as u32,
                how,
                chunks_redone: released.len(),
            });
            if let Err(e) = self.start_worker(slot) {
                if let Some(seq) = seq {
                    // Nobody will take this participation: settle it now.
                    self.control.leave(slot, seq);
                }
                return Err(e);
            }
            // The replacement's readiness post is consumed here so later waits stay balanced.
            let _ = self
                .control
                .worker_ready()
                .wait_timeout(self.cfg.ready_timeout);
        }
        Ok(count)
    }

    /// Pids of the live workers.
    pub(crate) fn live_pids(&self) -> Vec<Pid> {
        self.slots.iter().flatten().copied().collect()
    }

    /// Kills the worker in `slot` (stuck in a cancelled job) and starts a replacement.
    pub(crate) fn kill_and_replace(&mut self, slot: usize, why: &str) {
        let Some(pid) = self.slots[slot] else { return };
        tracing::warn!(slot, pid = pid.as_raw(), "{why}; killing it");
        let _ = kill(pid, Signal::SIGKILL);
        let _ = waitpid(pid, None);
        self.slots[slot] = None;
        self.control.clear_joined(slot);
        self.log.push(WorkerDeath {
            slot,
            pid: pid.as_raw() as u32,
            how: format!("killed: {why}"),
            chunks_redone: 0,
        });
        if let Err(e) = self.start_worker(slot) {
            tracing::error!(slot, error = %e, "cannot replace worker");
        } else {
            let _ = self
                .control
                .worker_ready()
                .wait_timeout(self.cfg.ready_timeout);
        }
    }

    /// Stops the workers (asks them to exit, then SIGTERM after the grace period, then SIGKILL
    /// after another), then the janitor: only now, so a death of the coordinator while the
    /// workers stop is still cleaned up.
    pub(crate) fn shutdown(&mut self) {
        if std::process::id() != self.owner {
            // A fork()'s copy: the workers and the janitor are the parent's. Dropping the
            // janitor handle only closes this process's copy of the pipe's write end.
            self.janitor = None;
            return;
        }
        self.stop_workers();
        if let Some(mut janitor) = self.janitor.take() {
            janitor.stop();
        }
    }

    fn stop_workers(&mut self) {
        self.control.request_shutdown();
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
                        if let Some(pid) = w.take() {
                            let _ = waitpid(pid, None);
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

fn spawn_worker(
    exe: Option<&std::path::Path>,
    argv: &[std::ffi::OsString],
    args: &WorkerArgs,
) -> Result<Pid, EngineError> {
    let exe = match exe {
        Some(p) => p.to_path_buf(),
        None => std::env::current_exe().map_err(|e| EngineError::Spawn {
            exe: "current_exe".into(),
            source: e,
        })?,
    };
    let child = std::process::Command::new(&exe)
        .args(argv)
        .env(crate::WORKER_ENV, args.encode())
        .stdin(std::process::Stdio::null())
        .spawn()
        .map_err(|e| EngineError::Spawn {
            exe: exe.display().to_string(),
            source: e,
        })?;
    // The child is reaped through waitpid like a forked one; the handle is not needed.
    Ok(Pid::from_raw(child.id() as i32))
}
