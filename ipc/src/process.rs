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
        if self.pid == 0 {
            return false;
        }
        let Ok(stat) = fs::read_to_string(format!("/proc/{}/stat", self.pid)) else {
            return false;
        };
        let Some(close) = stat.rfind(')') else {
            return false;
        };
        let mut fields = stat[close + 1..].split_whitespace();
        let state = fields.next().unwrap_or("X");
        if state == "Z" || state == "X" {
            return false;
        }
        fields
            .nth(22 - 4)
            .and_then(|s| s.parse::<u64>().ok())
            .is_some_and(|t| t == self.start_ticks)
    }
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
    fn threads_are_counted() {
        assert!(thread_count().unwrap() >= 1);
    }
}
