//! The errors of the `.npy` reader and writers: [`NpyFormatError`] for refused bytes,
//! [`NpyErrorKind`] for everything that can fail, and [`NpyError`], which adds the path.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use super::NpyDtype;

/// Formats a shape for messages: `1000` for 1-D, `1000x4` for 2-D, `()` for 0-D.
struct ShapeDisplay<'a>(&'a [u64]);

impl fmt::Display for ShapeDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("()");
        }
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("x")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

pub(super) fn shape_u64(shape: &[usize]) -> Vec<u64> {
    shape.iter().map(|&d| d as u64).collect()
}

/// Why the bytes of a `.npy` file were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NpyFormatError {
    /// Fewer bytes than the fixed preamble (magic, version, header length).
    #[error("file has only {len} bytes, too short for an .npy preamble ({needed} bytes)")]
    TooShort {
        /// The bytes available.
        len: u64,
        /// The bytes the preamble needs.
        needed: u64,
    },
    /// The magic bytes are wrong: not an `.npy` file.
    #[error("not an .npy file: starts with {found:02x?}, expected \\x93NUMPY")]
    BadMagic {
        /// The first bytes found (at most 6).
        found: Vec<u8>,
    },
    /// A format version other than 1.0, 2.0 or 3.0.
    #[error("unsupported .npy format version {major}.{minor} (this build reads 1.0, 2.0 and 3.0)")]
    UnsupportedVersion {
        /// Major version byte.
        major: u8,
        /// Minor version byte.
        minor: u8,
    },
    /// The header length field is larger than [`MAX_HEADER_LEN`](super::MAX_HEADER_LEN).
    #[error("header length {len} bytes is over the limit of {max} bytes (corrupt length field?)")]
    HeaderTooLong {
        /// The header end the length field implies.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// The header length field points past the end of the file.
    #[error(
        "header length points past the end: header ends at byte {header_end}, file has {len} bytes"
    )]
    HeaderPastEnd {
        /// The byte offset where the header would end.
        header_end: u64,
        /// The bytes available.
        len: u64,
    },
    /// The header is not UTF-8 text (ASCII in practice).
    #[error("header is not text: invalid byte at offset {offset}")]
    HeaderNotText {
        /// Byte offset of the first invalid byte, from the start of the file.
        offset: u64,
    },
    /// The header dict does not parse or lacks a key.
    #[error("header is malformed: {reason}; header: {header:?}")]
    MalformedHeader {
        /// What is wrong, and where.
        reason: String,
        /// The header text (shortened).
        header: String,
    },
    /// The array is stored column-major with more than one row and column.
    #[error(
        "array of shape {} is stored in Fortran (column-major) order; only C order is supported (save np.ascontiguousarray(a))",
        ShapeDisplay(shape)
    )]
    FortranOrder {
        /// The shape.
        shape: Vec<u64>,
    },
    /// A big-endian element type.
    #[error(
        "dtype {descr:?} is big-endian; only little-endian data is supported (save a.astype(a.dtype.newbyteorder('<')))"
    )]
    BigEndian {
        /// The type string.
        descr: String,
    },
    /// An object array (pickled Python objects).
    #[error(
        "dtype {descr:?} is an object array (pickled Python objects); only numeric arrays are supported"
    )]
    ObjectDtype {
        /// The type string.
        descr: String,
    },
    /// Any other element type.
    #[error("unsupported dtype {descr:?} (supported: <f4, <f8, <i4, <i8, |u1)")]
    UnsupportedDtype {
        /// The type string (or the raw header text of a structured dtype).
        descr: String,
    },
    /// A 0-dimensional array (a scalar).
    #[error("array is 0-dimensional (a scalar); only 1-D and 2-D arrays are supported")]
    ZeroDim,
    /// More than two dimensions.
    #[error(
        "array has {} dimensions (shape {}); only 1-D and 2-D arrays are supported",
        shape.len(),
        ShapeDisplay(shape)
    )]
    TooManyDims {
        /// The shape.
        shape: Vec<u64>,
    },
    /// The byte size of the shape does not fit in `usize`.
    #[error("shape {} of {} overflows: its byte size does not fit in usize", ShapeDisplay(shape), dtype.descr())]
    ShapeOverflow {
        /// The shape.
        shape: Vec<u64>,
        /// The element type.
        dtype: NpyDtype,
    },
    /// The data section is shorter than the header says.
    #[error(
        "data is truncated: header says {expected} bytes of {} ({}), file has {actual}",
        dtype.descr(),
        ShapeDisplay(shape)
    )]
    Truncated {
        /// Data bytes the header implies.
        expected: u64,
        /// Data bytes present.
        actual: u64,
        /// The element type.
        dtype: NpyDtype,
        /// The shape.
        shape: Vec<u64>,
    },
    /// The data section is longer than the header says (the header lies, or garbage follows).
    #[error(
        "data is longer than the header says: header says {expected} bytes of {} ({}), file has {actual} ({} trailing bytes)",
        dtype.descr(),
        ShapeDisplay(shape),
        actual - expected
    )]
    TrailingBytes {
        /// Data bytes the header implies.
        expected: u64,
        /// Data bytes present.
        actual: u64,
        /// The element type.
        dtype: NpyDtype,
        /// The shape.
        shape: Vec<u64>,
    },
}

/// What went wrong with a `.npy` file; wrapped in [`NpyError`] with the path.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NpyErrorKind {
    /// The file's bytes were refused.
    #[error(transparent)]
    Format(#[from] NpyFormatError),
    /// A read, write or rename failed.
    #[error("{op} failed: {source}")]
    Io {
        /// The operation, e.g. `read data`.
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Data passed to a writer does not match the shape.
    #[error(
        "data has {actual} bytes, but shape {} of {} needs {expected}",
        ShapeDisplay(shape),
        dtype.descr()
    )]
    DataLen {
        /// Bytes the shape needs.
        expected: u64,
        /// Bytes given.
        actual: u64,
        /// The element type.
        dtype: NpyDtype,
        /// The shape.
        shape: Vec<u64>,
    },
}

/// An error reading or writing a `.npy` file; the message starts with the path.
#[derive(Debug, thiserror::Error)]
#[error("{}: {kind}", path.display())]
pub struct NpyError {
    path: PathBuf,
    #[source]
    kind: NpyErrorKind,
}

impl NpyError {
    /// An error about the file at `path`.
    pub fn new(path: impl Into<PathBuf>, kind: impl Into<NpyErrorKind>) -> Self {
        Self {
            path: path.into(),
            kind: kind.into(),
        }
    }

    /// The file the error is about.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What went wrong.
    pub fn kind(&self) -> &NpyErrorKind {
        &self.kind
    }

    /// What went wrong, by value.
    pub fn into_kind(self) -> NpyErrorKind {
        self.kind
    }

    /// The format error, if the file's bytes were refused.
    pub fn format_error(&self) -> Option<&NpyFormatError> {
        match &self.kind {
            NpyErrorKind::Format(e) => Some(e),
            _ => None,
        }
    }

    pub(super) fn io(path: &Path, op: &'static str, source: io::Error) -> Self {
        Self::new(path, NpyErrorKind::Io { op, source })
    }
}

/// A [`NpyFormatError::MalformedHeader`] for `text`, shortened to 200 characters.
pub(super) fn malformed(reason: impl Into<String>, text: &str) -> NpyFormatError {
    const SHOW: usize = 200;
    let header = match text.char_indices().nth(SHOW) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.trim_end().to_owned(),
    };
    NpyFormatError::MalformedHeader {
        reason: reason.into(),
        header,
    }
}
