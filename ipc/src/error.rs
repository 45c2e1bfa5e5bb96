//! Errors that span modules: [`SegmentError`] (raised by segments, anonymous segments,
//! mapped files, shared regions and the sweep) and the [`human_bytes`] formatter its messages
//! use.
//!
//! Errors that belong to one concept live beside it: [`crate::NameError`] in `name`,
//! [`crate::HeaderError`] in `header`, [`crate::ArrowSegmentError`] in `arrow`,
//! [`crate::MatrixError`] in `matrix` and [`crate::SyncError`] in `sync`. This module imports
//! `name` and `header`, never the other way round. Every message names the segment, file or
//! path that failed.

use std::path::PathBuf;

use crate::header::HeaderError;
use crate::name::{NameError, SegmentName};

/// An error from creating, attaching or removing a segment.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SegmentError {
    /// The name is invalid.
    #[error(transparent)]
    Name(#[from] NameError),
    /// A segment with this name exists already.
    #[error("segment {name} already exists in {dir}")]
    Exists {
        /// The segment name.
        name: SegmentName,
        /// The directory.
        dir: PathBuf,
    },
    /// No segment with this name exists.
    #[error("segment {name} does not exist in {dir}")]
    NotFound {
        /// The segment name.
        name: SegmentName,
        /// The directory.
        dir: PathBuf,
    },
    /// Not enough space to reserve the segment.
    #[error(
        "not enough space in {dir} for segment {name}: asked {} ({requested} bytes), {} free. \
         Raise the limit (e.g. `mount -o remount,size=8G /dev/shm`, or `docker run --shm-size=8g`), \
         or choose a disk-backed segment directory (SHMFRAME_DIR=/var/tmp/shmframe or --segment-dir)",
        human_bytes(*requested), human_bytes(*available)
    )]
    NoSpace {
        /// The segment name.
        name: SegmentName,
        /// The directory.
        dir: PathBuf,
        /// Bytes asked for.
        requested: u64,
        /// Bytes free in the directory's file system.
        available: u64,
    },
    /// The header was refused.
    #[error("segment {name} refused: {source}")]
    Header {
        /// The segment name.
        name: SegmentName,
        /// Why.
        #[source]
        source: HeaderError,
    },
    /// The object belongs to another user, is not a regular file, or has unsafe permissions.
    #[error("segment {name} refused: {reason}")]
    Foreign {
        /// The segment name.
        name: SegmentName,
        /// Why.
        reason: String,
    },
    /// Only the owner's own handle may do this (not an attachment, not a persistent segment).
    #[error("segment {name}: only the owner's handle can be made writable again")]
    NotOwner {
        /// The segment name.
        name: SegmentName,
    },
    /// The requested size overflows.
    #[error("segment {name}: size {requested} bytes is too large")]
    TooLarge {
        /// The segment name.
        name: SegmentName,
        /// The payload size asked for.
        requested: u64,
    },
    /// An operating-system call failed.
    #[error("segment {name}: {op} failed: {source}")]
    Os {
        /// The segment name (or a label for anonymous segments).
        name: String,
        /// The call.
        op: &'static str,
        /// The errno.
        #[source]
        source: std::io::Error,
    },
}

impl SegmentError {
    pub(crate) fn os(name: impl ToString, op: &'static str, errno: nix::errno::Errno) -> Self {
        SegmentError::Os {
            name: name.to_string(),
            op,
            source: std::io::Error::from_raw_os_error(errno as i32),
        }
    }

    pub(crate) fn io(name: impl ToString, op: &'static str, source: std::io::Error) -> Self {
        SegmentError::Os {
            name: name.to_string(),
            op,
            source,
        }
    }
}

/// Formats a byte count for humans (`1.5 GiB`).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}
