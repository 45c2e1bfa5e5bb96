//! What a worker is told at start: by value to a forked worker, through the
//! [`crate::WORKER_ENV`] environment variable to a spawned one.

use shmframe_ipc::{SegmentDir, SegmentName};

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
        let dir = match &self.dir {
            SegmentDir::Shm => String::new(),
            SegmentDir::Path(p) => p.display().to_string(),
        };
        format!(
            "{}|{}|{}|{}|{}|{dir}",
            self.control, self.slot, self.threads, self.parent, self.memory_limit
        )
    }

    /// Parses [`WorkerArgs::encode`]'s output; the error names the field that is wrong.
    pub(crate) fn decode(v: &str) -> Result<Self, String> {
        let parts: Vec<&str> = v.splitn(FIELDS, '|').collect();
        if parts.len() != FIELDS {
            return Err(format!("{} fields, expected {FIELDS}", parts.len()));
        }
        fn num<T: std::str::FromStr>(what: &str, s: &str) -> Result<T, String> {
            s.parse()
                .map_err(|_| format!("{what} {s:?} is not a number"))
        }
        Ok(WorkerArgs {
            control: SegmentName::parse(parts[0])
                .map_err(|e| format!("control segment {:?}: {e}", parts[0]))?,
            slot: num("slot", parts[1])?,
            threads: num("threads", parts[2])?,
            parent: num("parent pid", parts[3])?,
            memory_limit: num("memory limit", parts[4])?,
            dir: if parts[5].is_empty() {
                SegmentDir::Shm
            } else {
                SegmentDir::Path(parts[5].into())
            },
        })
    }
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
    }
}
