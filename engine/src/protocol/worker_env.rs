//! What a worker (or the pool's janitor) is told at start: by value to a forked one, through
//! the [`crate::WORKER_ENV`] environment variable to a spawned one. The variable's value says
//! the role: [`WorkerRole::decode`] tells a worker's from a janitor's.

use shmframe_ipc::{ProcessId, SegmentDir, SegmentName};

/// What a worker needs to start (everything by value: nothing inherited is ever dropped).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WorkerArgs {
    /// The control segment.
    pub(crate) control: SegmentName,
    /// The segment directory.
    pub(crate) dir: SegmentDir,
    /// The worker's slot.
    pub(crate) slot: usize,
    /// Threads inside the worker.
    pub(crate) threads: usize,
    /// The coordinator's pid: the worker exits when its parent changes.
    pub(crate) parent: u32,
    /// Address-space limit of the worker (`RLIMIT_AS`), bytes; 0 = none.
    pub(crate) memory_limit: u64,
}

const FIELDS: usize = 6;

impl WorkerArgs {
    /// The value of [`crate::WORKER_ENV`] for a spawned worker: `|`-separated, the segment
    /// directory last (it may contain `|`; empty for `/dev/shm`).
    pub(crate) fn encode(&self) -> String {
        format!(
            "{}|{}|{}|{}|{}|{}",
            self.control,
            self.slot,
            self.threads,
            self.parent,
            self.memory_limit,
            encode_dir(&self.dir)
        )
    }

    /// Parses [`WorkerArgs::encode`]'s output; the error names the field that is wrong.
    pub(crate) fn decode(v: &str) -> Result<Self, String> {
        let parts: Vec<&str> = v.splitn(FIELDS, '|').collect();
        if parts.len() != FIELDS {
            return Err(format!("{} fields, expected {FIELDS}", parts.len()));
        }
        Ok(WorkerArgs {
            control: SegmentName::parse(parts[0])
                .map_err(|e| format!("control segment {:?}: {e}", parts[0]))?,
            slot: num("slot", parts[1])?,
            threads: num("threads", parts[2])?,
            parent: num("parent pid", parts[3])?,
            memory_limit: num("memory limit", parts[4])?,
            dir: decode_dir(parts[5]),
        })
    }
}

/// What the pool's janitor needs: whose segments to remove from which directory once the
/// coordinator is gone (see `coordinator/janitor.rs`). Its end of the pipe is its stdin.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct JanitorArgs {
    /// The coordinator: only segments named after exactly this process (pid and start time)
    /// are removed.
    pub(crate) owner: ProcessId,
    /// The segment directory.
    pub(crate) dir: SegmentDir,
}

/// The first field of a janitor's [`crate::WORKER_ENV`] value. A worker's first field is a
/// segment name (`shmframe.…`), so the two cannot be confused.
const JANITOR: &str = "janitor";
const JANITOR_FIELDS: usize = 4;

impl JanitorArgs {
    /// The value of [`crate::WORKER_ENV`] for a spawned janitor:
    /// `janitor|<owner pid>|<owner start ticks>|<dir>`, the directory last as for a worker.
    pub(crate) fn encode(&self) -> String {
        format!(
            "{JANITOR}|{}|{}|{}",
            self.owner.pid,
            self.owner.start_ticks,
            encode_dir(&self.dir)
        )
    }

    /// Parses [`JanitorArgs::encode`]'s output; the error names the field that is wrong.
    pub(crate) fn decode(v: &str) -> Result<Self, String> {
        let parts: Vec<&str> = v.splitn(JANITOR_FIELDS, '|').collect();
        if parts.len() != JANITOR_FIELDS {
            return Err(format!(
                "janitor: {} fields, expected {JANITOR_FIELDS}",
                parts.len()
            ));
        }
        if parts[0] != JANITOR {
            return Err(format!("role {:?} is not {JANITOR:?}", parts[0]));
        }
        Ok(JanitorArgs {
            owner: ProcessId {
                pid: num("owner pid", parts[1])?,
                start_ticks: num("owner start ticks", parts[2])?,
            },
            dir: decode_dir(parts[3]),
        })
    }
}

/// What a process started with [`crate::WORKER_ENV`] is to be.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum WorkerRole {
    /// A worker of the pool.
    Worker(WorkerArgs),
    /// The pool's janitor.
    Janitor(JanitorArgs),
}

impl WorkerRole {
    /// Parses a [`crate::WORKER_ENV`] value of either role; the error names the wrong field.
    pub(crate) fn decode(v: &str) -> Result<Self, String> {
        if v.split('|').next() == Some(JANITOR) {
            JanitorArgs::decode(v).map(WorkerRole::Janitor)
        } else {
            WorkerArgs::decode(v).map(WorkerRole::Worker)
        }
    }
}

/// A segment directory as the last field: empty for `/dev/shm` (a path may contain `|`).
fn encode_dir(dir: &SegmentDir) -> String {
    match dir {
        SegmentDir::Shm => String::new(),
        SegmentDir::Path(p) => p.display().to_string(),
    }
}

/// The inverse of [`encode_dir`].
fn decode_dir(s: &str) -> SegmentDir {
    if s.is_empty() {
        SegmentDir::Shm
    } else {
        SegmentDir::Path(s.into())
    }
}

/// Parses the numeric field `what`; the error names it.
fn num<T: std::str::FromStr>(what: &str, s: &str) -> Result<T, String> {
    s.parse()
        .map_err(|_| format!("{what} {s:?} is not a number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_named_errors() {
        let a = WorkerArgs {
            control: SegmentName::parse("shmframe.ctl-test").unwrap(),
            dir: SegmentDir::Path("/tmp/a|b".into()),
            slot: 3,
            threads: 2,
            parent: 77,
            memory_limit: 1 << 30,
        };
        assert_eq!(WorkerArgs::decode(&a.encode()).unwrap(), a);
        let shm = WorkerArgs {
            dir: SegmentDir::Shm,
            ..a.clone()
        };
        assert_eq!(WorkerArgs::decode(&shm.encode()).unwrap(), shm);
        assert!(WorkerArgs::decode("x|1").unwrap_err().contains("2 fields"));
        let bad = a.encode().replacen("|3|", "|three|", 1);
        assert!(WorkerArgs::decode(&bad).unwrap_err().contains("slot"));
        // Through the role: a worker's value is a worker.
        assert_eq!(
            WorkerRole::decode(&a.encode()).unwrap(),
            WorkerRole::Worker(a.clone())
        );

        let j = JanitorArgs {
            owner: ProcessId {
                pid: 4242,
                start_ticks: 987_654_321,
            },
            dir: SegmentDir::Path("/tmp/x|y".into()),
        };
        assert!(j.encode().starts_with("janitor|"));
        assert_eq!(
            WorkerRole::decode(&j.encode()).unwrap(),
            WorkerRole::Janitor(j.clone())
        );
        let j_shm = JanitorArgs {
            dir: SegmentDir::Shm,
            ..j.clone()
        };
        assert_eq!(
            WorkerRole::decode(&j_shm.encode()).unwrap(),
            WorkerRole::Janitor(j_shm)
        );
        let err = |v: &str| WorkerRole::decode(v).unwrap_err();
        assert!(
            err("janitor|1").contains("2 fields"),
            "{}",
            err("janitor|1")
        );
        assert!(err("janitor|x|1|/d").contains("owner pid"));
        assert!(err("janitor|1|-3|/d").contains("owner start ticks"));
        // A janitor's value is never read as a worker's.
        assert!(!err("janitor|1|2").contains("control segment"));
    }
}
