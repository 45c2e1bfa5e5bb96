//! Typed errors of the shared-memory layer.
//!
//! One enum per concern; every message names the segment, file or path that failed.

use std::path::PathBuf;

use crate::name::SegmentName;

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

/// Why a segment's header was refused on attach.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// The object is smaller than a header.
    #[error("object has {size} bytes, smaller than the {header} byte shmframe header")]
    TooSmall {
        /// The object's size.
        size: u64,
        /// The header size.
        header: u64,
    },
    /// The magic bytes are wrong: not a shmframe segment.
    #[error("wrong magic bytes: not a shmframe segment")]
    Magic,
    /// The header has not been published yet (still being filled, or its creator died while filling).
    #[error(
        "header not published (segment still being filled, or its creator died while filling it)"
    )]
    Unpublished,
    /// The header is already published where an unpublished one was expected.
    #[error("header already published: the segment is sealed for readers, no more writes")]
    AlreadyPublished,
    /// The format version is not one this build reads.
    #[error("format version {found} is not supported (this build reads version {supported})")]
    Version {
        /// The version found.
        found: u32,
        /// The version supported.
        supported: u32,
    },
    /// A field has an impossible value.
    #[error("header field {field} is invalid: {value} ({reason})")]
    Field {
        /// The field name.
        field: &'static str,
        /// The value found.
        value: u64,
        /// Why it is refused.
        reason: &'static str,
    },
}

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

/// An error from writing or reading Arrow data in a segment.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArrowSegmentError {
    /// The segment itself failed.
    #[error(transparent)]
    Segment(#[from] SegmentError),
    /// The segment does not hold an Arrow IPC file.
    #[error("segment {name} holds {kind:?}, not an Arrow IPC file")]
    NotArrow {
        /// The segment name.
        name: String,
        /// Its content kind.
        kind: crate::header::ContentKind,
    },
    /// The Arrow IPC bytes are invalid.
    #[error("segment {name}: invalid Arrow IPC file: {reason}")]
    Invalid {
        /// The segment name.
        name: String,
        /// Why.
        reason: String,
    },
    /// Arrow refused the data.
    #[error("segment {name}: {source}")]
    Arrow {
        /// The segment name.
        name: String,
        /// The arrow error.
        #[source]
        source: arrow_schema::ArrowError,
    },
    /// A type that the planned layout does not support.
    #[error("column {column:?}: type {data_type} is not supported here ({reason})")]
    Unsupported {
        /// The column.
        column: String,
        /// Its type.
        data_type: arrow_schema::DataType,
        /// Why.
        reason: &'static str,
    },
}

/// An error viewing a column as a matrix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MatrixError {
    /// The column type is not a matrix of the requested element type.
    #[error("column {column:?} has type {found}, expected {expected}")]
    Type {
        /// The column name.
        column: String,
        /// Its type.
        found: String,
        /// What was expected.
        expected: String,
    },
    /// The tensor extension metadata is invalid.
    #[error("column {column:?}: invalid arrow.fixed_shape_tensor metadata: {reason}")]
    Tensor {
        /// The column name.
        column: String,
        /// Why.
        reason: String,
    },
    /// No column with that name.
    #[error("no column named {column:?} (columns: {available})")]
    NoColumn {
        /// The name asked for.
        column: String,
        /// The column names present.
        available: String,
    },
}

/// An error of the cross-process synchronisation primitives.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The wait timed out.
    #[error("{what}: timed out after {waited:?}")]
    Timeout {
        /// What was waited for.
        what: &'static str,
        /// How long.
        waited: std::time::Duration,
    },
    /// The futex call failed unexpectedly.
    #[error("{what}: futex failed: {errno}")]
    Futex {
        /// What was waited for.
        what: &'static str,
        /// The errno.
        errno: nix::errno::Errno,
    },
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
