//! Segment names.
//!
//! Every shmframe object is called `shmframe.<rest>` in its directory. Two families share
//! the namespace and cannot collide:
//!
//! * **Owned** names start with a digit: `shmframe.<pid>.<start>.<seq>[.<label>]`. They belong to
//!   the process `<pid>` whose start time (clock ticks since boot, `/proc/PID/stat` field 22) is
//!   `<start>`, so a recycled pid is never mistaken for the owner. `<seq>` is a per-process
//!   counter, `<label>` a short hint for humans (`ctl`, `out`, ...).
//! * **User** names start with a letter: `shmframe.<name>`, made by `shmframe load --name`.
//!   They are owned by no process and live until removed.
//!
//! Names never contain `/`, paths, environment values or anything but the parts above.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::process::ProcessId;

/// The prefix of every shmframe object name.
pub const PREFIX: &str = "shmframe.";
/// The longest object name, prefix included (well under `NAME_MAX`).
pub const MAX_NAME_LEN: usize = 200;
/// The longest label of an owned name.
pub const MAX_LABEL_LEN: usize = 32;

/// A validated shmframe segment name (the object name, without a leading `/`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SegmentName(String);

/// Who a segment name says owns the segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameOwner {
    /// A process, identified by pid and start time.
    Process(ProcessId),
    /// No process: a user-named segment that lives until removed.
    Nobody,
}

/// An invalid segment name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The name is empty or longer than the limit.
    #[error("segment name {name:?} has {len} bytes; names have 1 to {max} bytes")]
    Length {
        /// The offending name.
        name: String,
        /// Its length in bytes.
        len: usize,
        /// The maximum length.
        max: usize,
    },
    /// The name uses a character outside `[A-Za-z0-9_-]` or does not start with a letter.
    #[error(
        "segment name {name:?} is invalid: user names start with a letter and use only A-Z, a-z, 0-9, '_' and '-'"
    )]
    Characters {
        /// The offending name.
        name: String,
    },
    /// The object name does not start with the `shmframe.` prefix.
    #[error("{name:?} is not a shmframe segment (names start with \"shmframe.\")")]
    Prefix {
        /// The offending name.
        name: String,
    },
    /// An owned (process-scoped) name that does not parse.
    #[error("segment name {name:?} is malformed: {reason}")]
    Malformed {
        /// The offending name.
        name: String,
        /// What is wrong.
        reason: &'static str,
    },
}

static SEQ: AtomicU64 = AtomicU64::new(0);

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

impl SegmentName {
    /// A user name: `shmframe.<name>`. `name` starts with a letter and uses `[A-Za-z0-9_-]`.
    pub fn user(name: &str) -> Result<Self, NameError> {
        let full = format!("{PREFIX}{name}");
        if name.is_empty() || full.len() > MAX_NAME_LEN {
            return Err(NameError::Length {
                name: name.to_string(),
                len: name.len(),
                max: MAX_NAME_LEN - PREFIX.len(),
            });
        }
        let first_ok = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
        if !first_ok || !name.chars().all(is_name_char) {
            return Err(NameError::Characters {
                name: name.to_string(),
            });
        }
        Ok(SegmentName(full))
    }

    /// A fresh owned name for the calling process: `shmframe.<pid>.<start>.<seq>.<label>`.
    ///
    /// `label` is cut to [`MAX_LABEL_LEN`] and must use `[A-Za-z0-9_-]`.
    pub fn owned(label: &str) -> Result<Self, NameError> {
        if label.len() > MAX_LABEL_LEN {
            return Err(NameError::Length {
                name: label.to_string(),
                len: label.len(),
                max: MAX_LABEL_LEN,
            });
        }
        if !label.chars().all(is_name_char) {
            return Err(NameError::Characters {
                name: label.to_string(),
            });
        }
        let me = ProcessId::current();
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let full = if label.is_empty() {
            format!("{PREFIX}{}.{}.{seq}", me.pid, me.start_ticks)
        } else {
            format!("{PREFIX}{}.{}.{seq}.{label}", me.pid, me.start_ticks)
        };
        Ok(SegmentName(full))
    }

    /// Parses a full object name (`shmframe.…`), as listed in the segment directory.
    pub fn parse(full: &str) -> Result<Self, NameError> {
        let full = full.strip_prefix('/').unwrap_or(full);
        let Some(rest) = full.strip_prefix(PREFIX) else {
            return Err(NameError::Prefix {
                name: full.to_string(),
            });
        };
        if rest.starts_with(|c: char| c.is_ascii_digit()) {
            if full.len() > MAX_NAME_LEN {
                return Err(NameError::Length {
                    name: full.to_string(),
                    len: full.len(),
                    max: MAX_NAME_LEN,
                });
            }
            let name = SegmentName(full.to_string());
            name.owner_parts().ok_or(NameError::Malformed {
                name: full.to_string(),
                reason: "owned names are shmframe.<pid>.<start>.<seq>[.<label>]",
            })?;
            Ok(name)
        } else {
            SegmentName::user(rest)
        }
    }

    /// Accepts either a full object name (`shmframe.x`) or a bare user name (`x`).
    pub fn from_user_input(s: &str) -> Result<Self, NameError> {
        let s = s.strip_prefix("shm:").unwrap_or(s);
        if s.starts_with(PREFIX) || s.starts_with(&format!("/{PREFIX}")) {
            SegmentName::parse(s)
        } else {
            SegmentName::user(s)
        }
    }

    fn owner_parts(&self) -> Option<(u32, u64, u64)> {
        let rest = self.0.strip_prefix(PREFIX)?;
        let mut parts = rest.splitn(4, '.');
        let pid = parts.next()?.parse().ok()?;
        let start = parts.next()?.parse().ok()?;
        let seq = parts.next()?.parse().ok()?;
        if let Some(label) = parts.next()
            && (label.is_empty() || !label.chars().all(is_name_char))
        {
            return None;
        }
        Some((pid, start, seq))
    }

    /// Who the name says owns the segment.
    pub fn owner(&self) -> NameOwner {
        match self.owner_parts() {
            Some((pid, start_ticks, _)) => NameOwner::Process(ProcessId { pid, start_ticks }),
            None => NameOwner::Nobody,
        }
    }

    /// The object name (`shmframe.…`).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as `shm_open` wants it: with a leading `/`.
    pub(crate) fn shm_path(&self) -> String {
        format!("/{}", self.0)
    }

    /// The user part of a user name (`x` for `shmframe.x`); the full name for owned names.
    pub fn short(&self) -> &str {
        match self.owner() {
            NameOwner::Nobody => &self.0[PREFIX.len()..],
            NameOwner::Process(_) => &self.0,
        }
    }
}

impl fmt::Display for SegmentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SegmentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names() {
        let n = SegmentName::user("embeddings_v2-a").unwrap();
        assert_eq!(n.as_str(), "shmframe.embeddings_v2-a");
        assert_eq!(n.owner(), NameOwner::Nobody);
        assert_eq!(n.short(), "embeddings_v2-a");
        for bad in [
            "",
            "1abc",
            "a/b",
            "a.b",
            "a b",
            "../x",
            "é",
            &"a".repeat(300),
        ] {
            assert!(SegmentName::user(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn owned_names_round_trip() {
        let n = SegmentName::owned("ctl").unwrap();
        let me = ProcessId::current();
        assert_eq!(n.owner(), NameOwner::Process(me));
        assert_eq!(SegmentName::parse(n.as_str()).unwrap(), n);
        assert_ne!(SegmentName::owned("ctl").unwrap(), n, "names are unique");
        assert!(SegmentName::owned("a/b").is_err());
        assert!(SegmentName::owned(&"x".repeat(40)).is_err());
    }

    #[test]
    fn parse_refuses_foreign_and_malformed() {
        assert!(matches!(
            SegmentName::parse("psm_1234"),
            Err(NameError::Prefix { .. })
        ));
        assert!(matches!(
            SegmentName::parse("shmframe.12.x.3"),
            Err(NameError::Malformed { .. })
        ));
        assert!(SegmentName::parse("shmframe.12.34").is_err());
        assert!(SegmentName::parse("shmframe.12.34.5.").is_err());
        assert!(SegmentName::parse("/shmframe.12.34.5.out").is_ok());
        assert!(SegmentName::parse("shmframe.data").is_ok());
        assert_eq!(
            SegmentName::from_user_input("shm:data").unwrap().as_str(),
            "shmframe.data"
        );
    }
}
