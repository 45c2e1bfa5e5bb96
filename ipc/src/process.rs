//! Process identity and liveness.
//!
//! A pid alone is not an identity: pids are recycled. A [`ProcessId`] pairs the pid with the
//! process start time in clock ticks since boot (field 22 of `/proc/PID/stat`), which is what
//! segment names and headers record, and what [`ProcessId::is_alive`] checks.

use std::fs;

/// A process identity that survives pid reuse: pid plus start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProcessId {
    /// The pid.
    pub pid: u32,
    /// Start time in clock ticks since boot (`/proc/PID/stat` field 22).
    pub start_ticks: u64,
}

/// Reads the start time of `pid` from `/proc/PID/stat`, or `None` if there is no such process.
pub fn start_ticks(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces or ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    // Fields after the name start at field 3; start time is field 22.
    after.split_whitespace().nth(22 - 3)?.parse().ok()
}

/// The calling process's identity, cached; re-read after a fork (the pid differs).
static CURRENT: std::sync::Mutex<Option<ProcessId>> = std::sync::Mutex::new(None);

impl ProcessId {
    /// The calling process (cached; recomputed in a forked child).
    pub fn current() -> Self {
        let pid = std::process::id();
        let mut cached = CURRENT.lock().unwrap_or_else(|p| p.into_inner());
        match *cached {
            Some(id) if id.pid == pid => id,
            _ => {
                let id = ProcessId {
                    pid,
                    start_ticks: start_ticks(pid).unwrap_or(0),
                };
                *cached = Some(id);
                id
            }
        }
    }

    /// Whether this very process (same pid, same start time) is still running.
    ///
    /// A zombie counts as dead: it runs no code and holds no mapping.
    pub fn is_alive(&self) -> bool {
        self.stat().is_some_and(|s| s.live)
    }

    /// Whether this very process is alive and has not begun to exit: [`ProcessId::is_alive`]
    /// and the kernel's `PF_EXITING` flag (field 9 of `/proc/PID/stat`) clear.
    ///
    /// A process killed by a signal closes its files (so a pipe's reader sees end-of-file)
    /// a few microseconds *before* it becomes a zombie; in between `is_alive` still says yes.
    /// `PF_EXITING` is set at the very start of the exit, before the files close, so a reader
    /// woken by that end-of-file sees this return `false`. For the thread group leader, whose
    /// flags `/proc/PID/stat` shows: all threads close their files before the last close.
    pub fn is_running(&self) -> bool {
        self.stat()
            .is_some_and(|s| s.live && s.flags & PF_EXITING == 0)
    }

    /// What `/proc/PID/stat` says of this very process, `None` if there is no such process
    /// (or another one with the same pid).
    fn stat(&self) -> Option<Stat> {
        if self.pid == 0 {
            return None;
        }
        let stat = fs::read_to_string(format!("/proc/{}/stat", self.pid)).ok()?;
        let close = stat.rfind(')')?;
        // Fields after the name start at field 3 (state); flags is field 9, start time 22.
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3).copied();
        let start: u64 = field(22)?.parse().ok()?;
        if start != self.start_ticks {
            return None;
        }
        let state = field(3).unwrap_or("X");
        Some(Stat {
            live: state != "Z" && state != "X",
            flags: field(9).and_then(|f| f.parse().ok()).unwrap_or(0),
        })
    }
}

/// The kernel's per-task flag "getting shut down" (`include/linux/sched.h`), set by the
/// first step of `do_exit`.
const PF_EXITING: u64 = 0x4;

/// The parts of `/proc/PID/stat` liveness needs.
struct Stat {
    /// Neither a zombie nor dead.
    live: bool,
    /// The task flags (`PF_*`).
    flags: u64,
}

/// Asks the kernel to send `signal` to the calling process when its parent thread exits
/// (`PR_SET_PDEATHSIG`), then checks the parent did not die before the request took effect.
///
/// Returns `false` if the parent `expected_parent` is already gone (the caller should exit).
pub fn die_with_parent(signal: nix::sys::signal::Signal, expected_parent: u32) -> bool {
    if nix::sys::prctl::set_pdeathsig(signal).is_err() {
        return false;
    }
    nix::unistd::getppid().as_raw() as u32 == expected_parent
}

/// Lets the calling process outlive its parent: clears the `PR_SET_PDEATHSIG` signal that
/// [`crate::fork_worker`] (like [`die_with_parent`]) asked for. For a process that must act
/// *after* its parent died, such as the engine's janitor.
pub fn outlive_parent() -> Result<(), nix::errno::Errno> {
    nix::sys::prctl::set_pdeathsig(None)
}

/// Ignores `SIGINT` in the calling process from now on, so a Ctrl-C sent to the terminal's
/// process group does not end it; the setting survives `exec`.
pub fn ignore_interrupts() -> Result<(), nix::errno::Errno> {
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SAFETY: installs no handler function, only `SIG_IGN`, so no code runs in signal context
    // and there is nothing whose safety it could break; `signal` is async-signal-safe, so this
    // may run in a forked child too. Replacing a handler another part of the process installed
    // is the documented purpose of this function.
    unsafe { signal(Signal::SIGINT, SigHandler::SigIgn) }.map(drop)
}

/// Gives process `pid` the lowest scheduling priority (nice 19): it then takes CPU time from
/// nothing else that wants it, such as the workers starting beside it. A process may lower
/// the priority of its own children; it cannot raise it again.
pub fn lower_priority(pid: u32) -> Result<(), nix::errno::Errno> {
    // SAFETY: `setpriority` takes plain integers and no pointers; a pid that is gone gives
    // ESRCH, which is returned.
    let r = unsafe { libc::setpriority(libc::PRIO_PROCESS, pid as libc::id_t, 19) };
    nix::errno::Errno::result(r).map(drop)
}

/// The name (`comm`, at most 15 bytes) of process `pid`, or `None` if there is no such process.
pub fn name(pid: u32) -> Option<String> {
    let comm = fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    Some(comm.trim_end_matches('\n').to_string())
}

/// The number of threads of the calling process (`/proc/self/status`), or `None` if unknown.
pub fn thread_count() -> Option<usize> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_process_is_alive_and_identity_is_checked() {
        let me = ProcessId::current();
        assert!(me.start_ticks > 0);
        assert!(me.is_alive());
        let recycled = ProcessId {
            pid: me.pid,
            start_ticks: me.start_ticks + 1,
        };
        assert!(!recycled.is_alive(), "same pid, other start time is not us");
        assert!(
            !ProcessId {
                pid: 0,
                start_ticks: 0
            }
            .is_alive()
        );
        assert!(
            !ProcessId {
                pid: u32::MAX - 1,
                start_ticks: 1
            }
            .is_alive()
        );
    }

    #[test]
    fn a_running_process_is_not_exiting_and_a_dead_one_is_not_running() {
        let me = ProcessId::current();
        assert!(me.is_running());
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let id = ProcessId {
            pid: child.id(),
            start_ticks: start_ticks(child.id()).unwrap_or(0),
        };
        child.wait().unwrap();
        assert!(
            !id.is_running() && !id.is_alive(),
            "a reaped child runs no more"
        );
        let recycled = ProcessId {
            pid: me.pid,
            start_ticks: me.start_ticks + 1,
        };
        assert!(!recycled.is_running());
    }

    #[test]
    fn a_child_gets_the_lowest_priority_and_names_are_read() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let r = lower_priority(child.id());
        let stat = fs::read_to_string(format!("/proc/{}/stat", child.id())).unwrap();
        let nice: i32 = stat[stat.rfind(')').unwrap() + 1..]
            .split_whitespace()
            .nth(19 - 3)
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(name(child.id()).as_deref(), Some("sleep"));
        let _ = child.kill();
        let _ = child.wait();
        r.unwrap();
        assert_eq!(nice, 19);
        assert_eq!(name(u32::MAX - 1), None);
    }

    #[test]
    fn threads_are_counted() {
        assert!(thread_count().unwrap() >= 1);
    }
}
