//! The pool's janitor: a small process that removes the coordinator's segments when the
//! coordinator dies without cleaning up (SIGKILL, a crash, `os._exit`), so they do not wait
//! for `shmframe gc`.
//!
//! **How it learns of the death.** The coordinator makes a pipe (both ends close-on-exec)
//! and keeps the write end, to which nothing is ever written; the janitor gets the read end
//! (a forked janitor inherits it, a spawned one has it as stdin) and blocks reading. It reads
//! end-of-file once every holder of the write end is gone: the coordinator, and any `fork()`
//! of it that the host made (that delays the end-of-file until the child exits; the children
//! the engine forks, workers and janitors of any pool, close their copies first thing). Then,
//! unless the coordinator still runs (a normal close: it cleaned up itself), it removes every
//! segment in the engine's segment directory named after exactly that coordinator, pid and
//! start time ([`sweep_owner`]), and exits.
//!
//! **What it is not.** Not a child that dies with its parent: no `PR_SET_PDEATHSIG` (a
//! forked one clears what [`shmframe_ipc::fork_worker`] set). It ignores `SIGINT` and runs
//! in a process group of its own, so neither a Ctrl-C at the terminal nor a signal sent to
//! the coordinator's whole group (GNU `timeout` does that) ends it before it has cleaned up.
//! It maps no segment (it reads names only) and holds nothing but its end of the pipe. A
//! janitor that dies is not restarted: the pool goes on, and a later death of the coordinator
//! leaves its segments to `shmframe gc` as before.
//!
//! **Its cost.** It starts with the workers, at the lowest CPU priority so their start-up
//! does not wait for it, and nobody waits for it to be ready: the pipe is made before it
//! starts, so a death even during its start-up is seen. Once past its start-up it renames
//! itself [`NAME`] (what `ps` shows). At a normal close the coordinator drops the write end
//! after the workers stopped and reaps the janitor: one so named exits at once by itself (it
//! is killed if it has not within [`REAP_WAIT`]: a host's `fork()` child may hold a copy of
//! the write end); one still starting is killed at once, as it has nothing to do.

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use shmframe_ipc::sweep::sweep_owner;
use shmframe_ipc::{ProcessId, SegmentDir, fork_worker};

use super::builder::{EngineBuilder, StartMethod};
use crate::error::EngineError;
use crate::protocol::JanitorArgs;

/// How long a normal close waits for a janitor past its start-up to exit after the write end
/// closed, before it kills it.
const REAP_WAIT: Duration = Duration::from_secs(1);
/// The janitor's process name (`/proc/PID/comm`, at most 15 bytes) once it waits on its pipe.
pub(crate) const NAME: &str = "shmf-janitor";
/// How often the janitor checks its coordinator if its pipe cannot be read.
const POLL: Duration = Duration::from_millis(200);

/// The write ends this process holds (one per pool), by number. A child forked by the engine
/// (worker or janitor) closes its copies first thing: with another pool's write end open, it
/// would keep that pool's janitor from seeing end-of-file (and that pool's close waiting).
static HELD: Mutex<Vec<RawFd>> = Mutex::new(Vec::new());

fn held() -> std::sync::MutexGuard<'static, Vec<RawFd>> {
    HELD.lock().unwrap_or_else(|p| p.into_inner())
}

/// In a child just forked by the engine: closes the copies of every pool's write end.
pub(crate) fn close_inherited_write_ends() {
    for &fd in held().iter() {
        let _ = nix::unistd::close(fd);
    }
}

/// The coordinator's handle on its janitor.
#[derive(Debug)]
pub(crate) struct Janitor {
    pid: Pid,
    /// The write end of the pipe: held, never written; dropping it tells the janitor.
    hold: Option<OwnedFd>,
    /// The process that started the janitor: only it stops and reaps it.
    owner: u32,
}

impl Janitor {
    /// Starts the janitor of a coordinator whose segments live in `cfg.dir`, the same way the
    /// workers start. Returns at once: the janitor needs no readiness handshake.
    pub(crate) fn start(cfg: &EngineBuilder) -> Result<Janitor, EngineError> {
        let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)
            .map_err(|e| spawn_error("pipe2", std::io::Error::from(e)))?;
        let args = JanitorArgs {
            owner: ProcessId::current(),
            dir: cfg.dir.clone(),
        };
        let pid = match &cfg.start {
            StartMethod::Fork => {
                // The child's copy of the write end: closed first thing, or the janitor would
                // hold its own pipe open. (The parent drops `read` with the closure.)
                let write_copy = write.as_raw_fd();
                fork_worker(move || {
                    close_inherited_write_ends();
                    let _ = nix::unistd::close(write_copy);
                    run(std::fs::File::from(read), &args, true)
                })?
            }
            StartMethod::Spawn { exe } => {
                let exe = match exe {
                    Some(p) => p.clone(),
                    None => std::env::current_exe().map_err(|e| spawn_error("current_exe", e))?,
                };
                spawn(&exe, &[], &args, read)?
            }
            StartMethod::Command {
                program,
                args: argv,
            } => spawn(program, argv, &args, read)?,
        };
        // Best effort: at worst it competes with the workers' start-up.
        let _ = shmframe_ipc::process::lower_priority(pid.as_raw() as u32);
        held().push(write.as_raw_fd());
        Ok(Janitor {
            pid,
            hold: Some(write),
            owner: std::process::id(),
        })
    }

    /// Closes the write end and reaps the janitor, which exits at once (its coordinator is
    /// alive, so it removes nothing); kills it if it has not exited within [`REAP_WAIT`] (a
    /// host's `fork()` child may hold a copy of the write end), or at once if it is still
    /// starting (not yet named [`NAME`]). In a `fork()` child of the coordinator it only drops
    /// that child's copy of the write end.
    pub(crate) fn stop(&mut self) {
        let Some(write) = self.hold.take() else {
            return;
        };
        // Forgotten before it is closed: a later fork must not close a reused number.
        let fd = write.as_raw_fd();
        held().retain(|&h| h != fd);
        drop(write);
        if std::process::id() != self.owner {
            return; // a fork()'s copy: the janitor is the parent's
        }
        let started =
            shmframe_ipc::process::name(self.pid.as_raw() as u32).as_deref() == Some(NAME);
        let deadline = if started {
            Instant::now() + REAP_WAIT
        } else {
            Instant::now() // still starting: nothing to wait for
        };
        loop {
            match waitpid(self.pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_micros(200));
                }
                Ok(WaitStatus::StillAlive) => {
                    tracing::debug!(pid = self.pid.as_raw(), "janitor did not exit; killing it");
                    let _ = kill(self.pid, Signal::SIGKILL);
                    let _ = waitpid(self.pid, None);
                    return;
                }
                Ok(WaitStatus::Exited(_, 0)) => return,
                Ok(status) => {
                    tracing::debug!(?status, "janitor ended");
                    return;
                }
                Err(_) => return, // not our child any more (already reaped)
            }
        }
    }
}

impl Drop for Janitor {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts `program argv…` as the janitor, with the read end of the pipe as its stdin.
fn spawn(
    program: &std::path::Path,
    argv: &[std::ffi::OsString],
    args: &JanitorArgs,
    read: OwnedFd,
) -> Result<Pid, EngineError> {
    use std::os::unix::process::CommandExt;
    let child = std::process::Command::new(program)
        .args(argv)
        .env(crate::WORKER_ENV, args.encode())
        .stdin(std::process::Stdio::from(read))
        // A group of its own from the first instruction: a Ctrl-C at the terminal, or a
        // signal to the coordinator's group, does not reach it even before it ignores SIGINT.
        .process_group(0)
        .spawn()
        .map_err(|e| spawn_error(&program.display().to_string(), e))?;
    // Reaped through waitpid like a worker; the handle is not needed.
    Ok(Pid::from_raw(child.id() as i32))
}

fn spawn_error(what: &str, source: std::io::Error) -> EngineError {
    EngineError::Spawn {
        exe: what.to_string(),
        source,
    }
}

/// The janitor process: waits for end-of-file on `pipe`, then removes the dead coordinator's
/// segments. `forked` says it was forked (not spawned) from the coordinator. Returns the exit
/// code.
pub(crate) fn run(mut pipe: impl Read, args: &JanitorArgs, forked: bool) -> i32 {
    if forked {
        // A spawned janitor was put in a group of its own by the coordinator, and inherited
        // no death signal.
        let _ = nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0));
        let _ = shmframe_ipc::process::outlive_parent();
    }
    let _ = shmframe_ipc::process::ignore_interrupts();
    // Last before the wait: a coordinator that stops sees the name and waits for the exit.
    if let Ok(name) = std::ffi::CString::new(NAME) {
        let _ = nix::sys::prctl::set_name(&name);
    }
    let mut buf = [0u8; 16];
    loop {
        match pipe.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {} // nothing is ever written; ignore it
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                // Cannot tell through the pipe: watch the coordinator instead.
                tracing::debug!(error = %e, "janitor cannot read its pipe; polling");
                while args.owner.is_running() {
                    std::thread::sleep(POLL);
                }
                break;
            }
        }
    }
    // End-of-file with the coordinator still running is a normal close (or an exec): it
    // removed its segments itself, and sweep_owner removes nothing.
    if !args.owner.is_running() {
        sweep(&args.dir, &args.owner);
    }
    0
}

fn sweep(dir: &SegmentDir, owner: &ProcessId) {
    match sweep_owner(dir, owner) {
        Ok(removed) if !removed.is_empty() => tracing::info!(
            owner = owner.pid,
            removed = removed.len(),
            "janitor removed the segments of a dead coordinator"
        ),
        Ok(_) => {}
        Err(e) => eprintln!(
            "shmframe janitor: cannot remove the segments of dead coordinator {}: {e}",
            owner.pid
        ),
    }
}
