//! numpy's `.npy` format (versions 1.0, 2.0 and 3.0), read and written without numpy.
//!
//! A `.npy` file is a 6-byte magic `\x93NUMPY`, a 2-byte version, a little-endian
//! header length (`u16` in 1.0, `u32` in 2.0 and 3.0), a Python dict literal such as
//! `{'descr': '<f8', 'fortran_order': False, 'shape': (1000, 4), }` padded with spaces and
//! a newline, then the raw array data. This module reads the subset shmframe computes on:
//! 1-D and 2-D, C-ordered, little-endian arrays of `f32`, `f64`, `i32`, `i64` and `u8`
//! ([`NpyDtype`]). Everything else is refused with a [`NpyFormatError`] that says what is
//! wrong; every header field is validated against the file length before data is touched.
//!
//! # Alignment
//!
//! numpy pads the header so the data starts at a multiple of 64 bytes since numpy 1.14
//! (numpy PR #9025, 2017); older versions padded to 16 bytes (and 2.0 headers were not
//! aligned at all). [`write_npy`] always pads to 64 ([`DATA_ALIGN`]), so the data section of
//! a file we write, or a recent numpy writes, can back an Arrow buffer in place when the
//! file is memory-mapped. See [`NpyHeader::is_data_offset_aligned`].
//!
//! # No `unsafe` here
//!
//! `memmap2::Mmap::map` is `unsafe` (the mapping breaks, with `SIGBUS`, if the file shrinks
//! underneath it) and the engine crate writes no `unsafe` code. So [`NpyFile::open`] reads
//! the data section into a 64-byte aligned Arrow buffer (one sequential read, typed views
//! always aligned), and [`NpyFile::from_buffer`] accepts an Arrow [`Buffer`] over the whole
//! file made elsewhere, e.g. a read-only mapping wrapped with `bytes::Bytes::from_owner` in
//! `shmframe-ipc`, which holds all of the workspace's `unsafe`; views of it are zero-copy.
//!
//! # Example
//!
//! ```
//! use shmframe::npy::{NpyFile, write_npy_f64};
//!
//! let path = std::env::temp_dir().join(format!("npy-doc-{}.npy", std::process::id()));
//! write_npy_f64(&path, 2, 3, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])?;
//! let file = NpyFile::open(&path)?;
//! assert_eq!((file.rows(), file.cols()), (2, 3));
//! assert_eq!(file.as_f64().unwrap()[4], 5.0);
//! # std::fs::remove_file(&path).unwrap();
//! # Ok::<(), shmframe::npy::NpyError>(())
//! ```
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use arrow_buffer::{ArrowNativeType, Buffer, MutableBuffer, ScalarBuffer};

/// The magic bytes every `.npy` file starts with.
pub const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// The alignment of the data section in the files [`write_npy`] writes (and numpy >= 1.14).
pub const DATA_ALIGN: usize = 64;

/// The longest header (magic, version, length field and dict) this module accepts.
///
/// A header for a 2-D array needs about 128 bytes; numpy's own loader refuses headers over
/// 10 000 bytes unless told otherwise. The cap keeps a corrupt length field from causing a
/// huge allocation.
pub const MAX_HEADER_LEN: usize = 1 << 20;

/// Size of the blocks [`write_npy_with`] asks its closure to fill.
const WRITE_BLOCK: usize = 8 << 20;

/// The length of the fixed part before the dict in version 1.0 (magic, version, `u16`).
const PREAMBLE_V1: usize = 10;

/// The length of the fixed part before the dict in versions 2.0 and 3.0 (`u32` length).
const PREAMBLE_V2: usize = 12;

/// The element types shmframe reads from and writes to `.npy` files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NpyDtype {
    /// 32-bit float, numpy `<f4`.
    F32,
    /// 64-bit float, numpy `<f8`.
    F64,
    /// 32-bit signed integer, numpy `<i4`.
    I32,
    /// 64-bit signed integer, numpy `<i8`.
    I64,
    /// 8-bit unsigned integer, numpy `|u1`.
    U8,
}

impl NpyDtype {
    /// Every supported dtype.
    pub const ALL: [NpyDtype; 5] = [Self::F32, Self::F64, Self::I32, Self::I64, Self::U8];

    /// The size of one element in bytes.
    pub const fn itemsize(self) -> usize {
        match self {
            Self::F32 | Self::I32 => 4,
            Self::F64 | Self::I64 => 8,
            Self::U8 => 1,
        }
    }

    /// The alignment an element needs in memory for a typed view on this platform.
    pub const fn align(self) -> usize {
        match self {
            Self::F32 => std::mem::align_of::<f32>(),
            Self::F64 => std::mem::align_of::<f64>(),
            Self::I32 => std::mem::align_of::<i32>(),
            Self::I64 => std::mem::align_of::<i64>(),
            Self::U8 => 1,
        }
    }

    /// numpy's type string as written in headers: `<f4`, `<f8`, `<i4`, `<i8`, `|u1`.
    pub const fn descr(self) -> &'static str {
        match self {
            Self::F32 => "<f4",
            Self::F64 => "<f8",
            Self::I32 => "<i4",
            Self::I64 => "<i8",
            Self::U8 => "|u1",
        }
    }

    /// shmframe's name: `f32`, `f64`, `i32`, `i64`, `u8`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::F64 => "f64",
            Self::I32 => "i32",
            Self::I64 => "i64",
            Self::U8 => "u8",
        }
    }

    /// The dtype with shmframe name `name` (`f32`, `f64`, `i32`, `i64`, `u8`).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.name() == name)
    }

    /// Parses a numpy type string (`descr`), refusing what this module cannot read.
    ///
    /// Accepts an explicit `<` (or `=`, or no byte order: native, on a little-endian
    /// host), and any byte order for `u1`. Refuses big-endian types
    /// ([`NpyFormatError::BigEndian`]), object arrays ([`NpyFormatError::ObjectDtype`]) and
    /// everything else ([`NpyFormatError::UnsupportedDtype`]).
    pub fn from_descr(descr: &str) -> Result<Self, NpyFormatError> {
        let (order, code) = match descr.as_bytes().first() {
            Some(c @ (b'<' | b'>' | b'|' | b'=')) => (Some(*c), &descr[1..]),
            _ => (None, descr),
        };
        if code.starts_with('O') {
            return Err(NpyFormatError::ObjectDtype {
                descr: descr.to_owned(),
            });
        }
        let dtype = match code {
            "f4" => Self::F32,
            "f8" => Self::F64,
            "i4" => Self::I32,
            "i8" => Self::I64,
            "u1" => Self::U8,
            _ => {
                return Err(NpyFormatError::UnsupportedDtype {
                    descr: descr.to_owned(),
                });
            }
        };
        if dtype.itemsize() == 1 {
            return Ok(dtype);
        }
        let native_little = cfg!(target_endian = "little");
        match order {
            Some(b'<') => Ok(dtype),
            Some(b'=') | None if native_little => Ok(dtype),
            Some(b'>' | b'=') | None => Err(NpyFormatError::BigEndian {
                descr: descr.to_owned(),
            }),
            // `|` ("not applicable") on a multi-byte type is not a valid numpy type string.
            _ => Err(NpyFormatError::UnsupportedDtype {
                descr: descr.to_owned(),
            }),
        }
    }
}

impl fmt::Display for NpyDtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

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

fn shape_u64(shape: &[usize]) -> Vec<u64> {
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
    /// The header length field is larger than [`MAX_HEADER_LEN`].
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

    fn io(path: &Path, op: &'static str, source: io::Error) -> Self {
        Self::new(path, NpyErrorKind::Io { op, source })
    }
}

/// The validated header of a `.npy` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyHeader {
    /// The element type.
    pub dtype: NpyDtype,
    /// The shape: one or two dimensions, C order.
    pub shape: Vec<usize>,
    /// Byte offset of the data section from the start of the file.
    pub data_offset: usize,
    /// Length of the data section in bytes (the product of the shape times the item size).
    pub data_len: usize,
}

impl NpyHeader {
    /// The number of rows: the first dimension.
    pub fn rows(&self) -> usize {
        self.shape[0]
    }

    /// The number of columns: the second dimension, 1 for a 1-D array.
    pub fn cols(&self) -> usize {
        self.shape.get(1).copied().unwrap_or(1)
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.data_len / self.dtype.itemsize()
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.data_len == 0
    }

    /// The length a file with this header must have: data offset plus data length.
    pub fn file_len(&self) -> u64 {
        self.data_offset as u64 + self.data_len as u64
    }

    /// Whether the data section starts at a multiple of [`DATA_ALIGN`] (64) bytes, so a
    /// page-aligned mapping of the file can back Arrow buffers without a copy.
    ///
    /// True for files written by numpy >= 1.14 and by [`write_npy`]; files from older numpy
    /// are aligned to 16 bytes only, and must be copied to be used as Arrow buffers.
    pub fn is_data_offset_aligned(&self) -> bool {
        self.data_offset.is_multiple_of(DATA_ALIGN)
    }

    /// Checks a file of `file_len` bytes holds exactly the data the header describes.
    ///
    /// A shorter file is [`NpyFormatError::Truncated`]; a longer one is
    /// [`NpyFormatError::TrailingBytes`] (the header lies about the shape, or garbage
    /// follows the array; numpy ignores it, we do not).
    pub fn check_file_len(&self, file_len: u64) -> Result<(), NpyFormatError> {
        let expected = self.data_len as u64;
        let actual = file_len.saturating_sub(self.data_offset as u64);
        let shape = shape_u64(&self.shape);
        if actual < expected {
            Err(NpyFormatError::Truncated {
                expected,
                actual,
                dtype: self.dtype,
                shape,
            })
        } else if actual > expected {
            Err(NpyFormatError::TrailingBytes {
                expected,
                actual,
                dtype: self.dtype,
                shape,
            })
        } else {
            Ok(())
        }
    }
}

/// The fixed part of a file before the dict.
struct Preamble {
    /// Where the dict starts.
    dict_start: usize,
    /// Where the header (dict and padding) ends and data starts.
    header_end: u64,
}

/// Reads magic, version and header length from the first bytes of a file.
fn parse_preamble(bytes: &[u8]) -> Result<Preamble, NpyFormatError> {
    let magic_len = bytes.len().min(MAGIC.len());
    if bytes[..magic_len] != MAGIC[..magic_len] {
        return Err(NpyFormatError::BadMagic {
            found: bytes[..magic_len].to_vec(),
        });
    }
    if bytes.len() < 8 {
        return Err(NpyFormatError::TooShort {
            len: bytes.len() as u64,
            needed: PREAMBLE_V1 as u64,
        });
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let dict_start = match (major, minor) {
        (1, 0) => PREAMBLE_V1,
        (2, 0) | (3, 0) => PREAMBLE_V2,
        _ => return Err(NpyFormatError::UnsupportedVersion { major, minor }),
    };
    if bytes.len() < dict_start {
        return Err(NpyFormatError::TooShort {
            len: bytes.len() as u64,
            needed: dict_start as u64,
        });
    }
    let dict_len = if dict_start == PREAMBLE_V1 {
        u64::from(u16::from_le_bytes([bytes[8], bytes[9]]))
    } else {
        u64::from(u32::from_le_bytes([
            bytes[8], bytes[9], bytes[10], bytes[11],
        ]))
    };
    let header_end = dict_start as u64 + dict_len;
    if header_end > MAX_HEADER_LEN as u64 {
        return Err(NpyFormatError::HeaderTooLong {
            len: header_end,
            max: MAX_HEADER_LEN as u64,
        });
    }
    Ok(Preamble {
        dict_start,
        header_end,
    })
}

/// Parses and validates the header of a `.npy` file.
///
/// `bytes` is the file, or any prefix of it holding the whole header. Checks magic, version
/// and header length, then parses the dict literal (keys in any order, either quote style,
/// trailing commas, any spacing) and refuses what cannot be read: see [`NpyFormatError`].
/// It does not know the file length; call [`NpyHeader::check_file_len`] for that.
pub fn parse_header(bytes: &[u8]) -> Result<NpyHeader, NpyFormatError> {
    let pre = parse_preamble(bytes)?;
    if pre.header_end > bytes.len() as u64 {
        return Err(NpyFormatError::HeaderPastEnd {
            header_end: pre.header_end,
            len: bytes.len() as u64,
        });
    }
    // Bounded by MAX_HEADER_LEN, so it fits.
    let header_end = pre.header_end as usize;
    let text = std::str::from_utf8(&bytes[pre.dict_start..header_end]).map_err(|e| {
        NpyFormatError::HeaderNotText {
            offset: (pre.dict_start + e.valid_up_to()) as u64,
        }
    })?;
    let dict = DictParser::new(text).parse()?;
    dict.into_header(text, header_end)
}

/// A value in the header dict, as far as this module cares.
#[derive(Debug)]
enum PyValue {
    Str(String),
    Bool(bool),
    Tuple(Vec<u64>),
    /// Anything else, as raw text (e.g. a structured dtype's list, or `(5)`).
    Other(String),
}

/// The three keys of a header dict.
#[derive(Debug, Default)]
struct HeaderDict {
    descr: Option<PyValue>,
    fortran_order: Option<PyValue>,
    shape: Option<PyValue>,
}

fn malformed(reason: impl Into<String>, text: &str) -> NpyFormatError {
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

impl HeaderDict {
    fn into_header(self, text: &str, header_end: usize) -> Result<NpyHeader, NpyFormatError> {
        let missing = |key: &str| malformed(format!("key '{key}' is missing"), text);
        let dtype = match self.descr.ok_or_else(|| missing("descr"))? {
            PyValue::Str(s) => NpyDtype::from_descr(&s)?,
            PyValue::Other(raw) => return Err(NpyFormatError::UnsupportedDtype { descr: raw }),
            v => {
                return Err(malformed(
                    format!("'descr' is not a type string: {v:?}"),
                    text,
                ));
            }
        };
        let shape = match self.shape.ok_or_else(|| missing("shape"))? {
            PyValue::Tuple(dims) => dims,
            v => {
                return Err(malformed(
                    format!("'shape' is not a tuple of integers: {v:?}"),
                    text,
                ));
            }
        };
        let fortran_order = match self.fortran_order.ok_or_else(|| missing("fortran_order"))? {
            PyValue::Bool(b) => b,
            v => {
                return Err(malformed(
                    format!("'fortran_order' is not True or False: {v:?}"),
                    text,
                ));
            }
        };
        match shape.len() {
            0 => return Err(NpyFormatError::ZeroDim),
            1 | 2 => {}
            _ => return Err(NpyFormatError::TooManyDims { shape }),
        }
        // Column-major order only changes the layout when there is more than one row and
        // more than one column; numpy itself writes `False` for 1-D arrays.
        if fortran_order && shape.len() == 2 && shape[0] > 1 && shape[1] > 1 {
            return Err(NpyFormatError::FortranOrder { shape });
        }
        let overflow = || NpyFormatError::ShapeOverflow {
            shape: shape.clone(),
            dtype,
        };
        let mut dims = Vec::with_capacity(shape.len());
        let mut data_len = dtype.itemsize();
        for &d in &shape {
            let d = usize::try_from(d).map_err(|_| overflow())?;
            data_len = data_len.checked_mul(d).ok_or_else(overflow)?;
            dims.push(d);
        }
        header_end.checked_add(data_len).ok_or_else(overflow)?;
        Ok(NpyHeader {
            dtype,
            shape: dims,
            data_offset: header_end,
            data_len,
        })
    }
}

/// A small parser for the Python dict literal of a header.
struct DictParser<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> DictParser<'a> {
    fn new(text: &'a str) -> Self {
        Self { text, pos: 0 }
    }

    fn err(&self, what: impl fmt::Display) -> NpyFormatError {
        malformed(format!("{what} at offset {}", self.pos), self.text)
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r' | b'\x0c') = self.peek() {
            self.pos += 1;
        }
    }

    fn expect(&mut self, c: u8, context: &str) -> Result<(), NpyFormatError> {
        self.skip_ws();
        match self.peek() {
            Some(found) if found == c => {
                self.pos += 1;
                Ok(())
            }
            Some(found) => Err(self.err(format_args!(
                "expected '{}' {context}, found '{}'",
                c as char,
                found.escape_ascii()
            ))),
            None => Err(self.err(format_args!(
                "expected '{}' {context}, found the end of the header",
                c as char
            ))),
        }
    }

    fn parse(mut self) -> Result<HeaderDict, NpyFormatError> {
        self.expect(b'{', "at the start of the header dict")?;
        let mut dict = HeaderDict::default();
        loop {
            self.skip_ws();
            match self.peek() {
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                Some(b'\'' | b'"') => {}
                None => return Err(self.err("unterminated dict")),
                Some(_) => return Err(self.err("expected a quoted key or '}'")),
            }
            let key = self.string()?;
            self.expect(b':', "after a key")?;
            self.skip_ws();
            let value = self.value()?;
            let slot = match key.as_str() {
                "descr" => &mut dict.descr,
                "fortran_order" => &mut dict.fortran_order,
                "shape" => &mut dict.shape,
                _ => return Err(self.err(format_args!("unexpected key {key:?}"))),
            };
            if slot.replace(value).is_some() {
                return Err(self.err(format_args!("duplicate key {key:?}")));
            }
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                None => return Err(self.err("unterminated dict")),
                Some(c) => {
                    return Err(self.err(format_args!(
                        "expected ',' or '}}' after a value, found '{}'",
                        c.escape_ascii()
                    )));
                }
            }
        }
        self.skip_ws();
        if self.pos != self.text.len() {
            return Err(self.err("unexpected text after the dict"));
        }
        Ok(dict)
    }

    /// A quoted string; the current byte is the quote.
    fn string(&mut self) -> Result<String, NpyFormatError> {
        let text = self.text;
        let bytes = text.as_bytes();
        let quote = bytes[self.pos];
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        let mut run = self.pos;
        while let Some(c) = self.peek() {
            if c == quote {
                out.push_str(&self.text[run..self.pos]);
                self.pos += 1;
                return Ok(out);
            }
            if c == b'\\' {
                out.push_str(&self.text[run..self.pos]);
                let escaped = bytes.get(self.pos + 1).copied();
                match escaped {
                    Some(e @ (b'\\' | b'\'' | b'"')) => out.push(e as char),
                    Some(b'n') => out.push('\n'),
                    Some(b't') => out.push('\t'),
                    // Keep other escapes literally; they never occur in a valid header.
                    _ => {
                        run = self.pos;
                        self.pos += 1;
                        continue;
                    }
                }
                self.pos += 2;
                run = self.pos;
                continue;
            }
            self.pos += 1;
        }
        self.pos = start;
        Err(self.err("unterminated string"))
    }

    fn value(&mut self) -> Result<PyValue, NpyFormatError> {
        match self.peek() {
            Some(b'\'' | b'"') => Ok(PyValue::Str(self.string()?)),
            Some(b'(') => self.tuple(),
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => {
                let start = self.pos;
                while let Some(c) = self.peek() {
                    if !(c.is_ascii_alphanumeric() || c == b'_') {
                        break;
                    }
                    self.pos += 1;
                }
                Ok(match &self.text[start..self.pos] {
                    "True" => PyValue::Bool(true),
                    "False" => PyValue::Bool(false),
                    other => PyValue::Other(other.to_owned()),
                })
            }
            Some(_) => self.raw(),
            None => Err(self.err("expected a value, found the end of the header")),
        }
    }

    /// A shape tuple; the current byte is `(`. `(5)` is an int in Python, not a tuple.
    fn tuple(&mut self) -> Result<PyValue, NpyFormatError> {
        let start = self.pos;
        self.pos += 1;
        let mut dims = Vec::new();
        let mut comma = false;
        self.skip_ws();
        if self.peek() == Some(b')') {
            self.pos += 1;
            return Ok(PyValue::Tuple(dims));
        }
        loop {
            self.skip_ws();
            match self.peek() {
                Some(c) if c.is_ascii_digit() => dims.push(self.int()?),
                Some(b'-') => return Err(self.err("negative dimension in shape")),
                Some(_) => return Err(self.err("expected an integer in the shape tuple")),
                None => return Err(self.err("unterminated shape tuple")),
            }
            self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    comma = true;
                    self.pos += 1;
                    self.skip_ws();
                    if self.peek() == Some(b')') {
                        self.pos += 1;
                        break;
                    }
                }
                Some(b')') => {
                    self.pos += 1;
                    break;
                }
                None => return Err(self.err("unterminated shape tuple")),
                Some(_) => return Err(self.err("expected ',' or ')' in the shape tuple")),
            }
        }
        if dims.len() == 1 && !comma {
            return Ok(PyValue::Other(self.text[start..self.pos].to_owned()));
        }
        Ok(PyValue::Tuple(dims))
    }

    /// A non-negative integer, with Python 2's optional `L` suffix.
    fn int(&mut self) -> Result<u64, NpyFormatError> {
        let start = self.pos;
        let mut n: u64 = 0;
        let mut fits = true;
        while let Some(c @ b'0'..=b'9') = self.peek() {
            match n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(c - b'0')))
            {
                Some(v) => n = v,
                None => fits = false,
            }
            self.pos += 1;
        }
        if !fits {
            let digits = &self.text[start..self.pos];
            return Err(self.err(format_args!("dimension {digits} does not fit in 64 bits")));
        }
        if let Some(b'L' | b'l') = self.peek() {
            self.pos += 1;
        }
        Ok(n)
    }

    /// Any other value, as raw text: balanced brackets and strings up to a `,` or `}` at
    /// the top level.
    fn raw(&mut self) -> Result<PyValue, NpyFormatError> {
        let start = self.pos;
        let mut depth = 0usize;
        while let Some(c) = self.peek() {
            match c {
                b'\'' | b'"' => {
                    self.string()?;
                    continue;
                }
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' if depth > 0 => depth -= 1,
                b',' | b'}' if depth == 0 => break,
                b')' | b']' => return Err(self.err("unbalanced bracket")),
                _ => {}
            }
            self.pos += 1;
        }
        if depth > 0 {
            return Err(self.err("unterminated value"));
        }
        let raw = self.text[start..self.pos].trim();
        if raw.is_empty() {
            return Err(self.err("expected a value"));
        }
        Ok(PyValue::Other(raw.to_owned()))
    }
}

/// An element type that can be viewed in and written to `.npy` files.
pub trait NpyElement: ArrowNativeType {
    /// The matching `.npy` dtype.
    const DTYPE: NpyDtype;

    /// Writes the value's little-endian bytes to `out` (`out.len()` is the item size).
    fn write_le(self, out: &mut [u8]);
}

macro_rules! npy_element {
    ($t:ty, $d:ident) => {
        impl NpyElement for $t {
            const DTYPE: NpyDtype = NpyDtype::$d;

            fn write_le(self, out: &mut [u8]) {
                out.copy_from_slice(&self.to_le_bytes());
            }
        }
    };
}

npy_element!(f32, F32);
npy_element!(f64, F64);
npy_element!(i32, I32);
npy_element!(i64, I64);
npy_element!(u8, U8);

/// A validated `.npy` file with its data section in an Arrow [`Buffer`].
///
/// Typed views ([`NpyFile::values`], [`NpyFile::as_f64`], ...) borrow the buffer without
/// copying; [`NpyFile::values_buffer`] hands it to Arrow arrays.
#[derive(Debug, Clone)]
pub struct NpyFile {
    path: PathBuf,
    header: NpyHeader,
    data: Buffer,
}

impl NpyFile {
    /// Opens and validates the file at `path`, reading its data section.
    ///
    /// The header is checked against the file length before the data is read, and the data
    /// lands in a 64-byte aligned buffer, so typed views work even for files whose data
    /// offset is not aligned (numpy < 1.14). This is one sequential read of the file, not a
    /// mapping: see the module docs, and [`NpyFile::from_buffer`] for a zero-copy path.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, NpyError> {
        let path = path.as_ref();
        let mut file = File::open(path).map_err(|e| NpyError::io(path, "open", e))?;
        let file_len = file
            .metadata()
            .map_err(|e| NpyError::io(path, "stat", e))?
            .len();
        let mut pre = [0u8; PREAMBLE_V2];
        let n =
            read_up_to(&mut file, &mut pre).map_err(|e| NpyError::io(path, "read header", e))?;
        let preamble = parse_preamble(&pre[..n]).map_err(|e| NpyError::new(path, e))?;
        if preamble.header_end > file_len {
            return Err(NpyError::new(
                path,
                NpyFormatError::HeaderPastEnd {
                    header_end: preamble.header_end,
                    len: file_len,
                },
            ));
        }
        // Bounded by MAX_HEADER_LEN in parse_preamble.
        let mut head = vec![0u8; preamble.header_end as usize];
        file.seek(SeekFrom::Start(0))
            .and_then(|_| file.read_exact(&mut head))
            .map_err(|e| NpyError::io(path, "read header", e))?;
        let header = parse_header(&head).map_err(|e| NpyError::new(path, e))?;
        header
            .check_file_len(file_len)
            .map_err(|e| NpyError::new(path, e))?;
        let mut data = MutableBuffer::from_len_zeroed(header.data_len);
        file.read_exact(data.as_slice_mut())
            .map_err(|e| NpyError::io(path, "read data", e))?;
        Ok(Self {
            path: path.to_owned(),
            header,
            data: data.into(),
        })
    }

    /// Validates `file`, the whole content of the `.npy` file at `path`, without copying.
    ///
    /// Use it with a buffer over a read-only memory mapping (made where `unsafe` is allowed:
    /// `bytes::Bytes::from_owner(mmap)` converts into a [`Buffer`]). The typed views are then
    /// zero-copy; they are `None` if the data is not aligned for its dtype, which happens
    /// when the file's data offset is not a multiple of the element size (see
    /// [`NpyHeader::is_data_offset_aligned`]): callers must then copy.
    pub fn from_buffer(path: impl Into<PathBuf>, file: Buffer) -> Result<Self, NpyError> {
        let path = path.into();
        let header = match parse_header(&file) {
            Ok(h) => h,
            Err(e) => return Err(NpyError::new(path, e)),
        };
        if let Err(e) = header.check_file_len(file.len() as u64) {
            return Err(NpyError::new(path, e));
        }
        let data = file.slice_with_length(header.data_offset, header.data_len);
        Ok(Self { path, header, data })
    }

    /// The validated header.
    pub fn header(&self) -> &NpyHeader {
        &self.header
    }

    /// The path the file was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The element type.
    pub fn dtype(&self) -> NpyDtype {
        self.header.dtype
    }

    /// The shape (one or two dimensions).
    pub fn shape(&self) -> &[usize] {
        &self.header.shape
    }

    /// The number of rows: the first dimension.
    pub fn rows(&self) -> usize {
        self.header.rows()
    }

    /// The number of columns: the second dimension, 1 for a 1-D array.
    pub fn cols(&self) -> usize {
        self.header.cols()
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.header.len()
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.header.is_empty()
    }

    /// The data section's bytes (little-endian elements, C order).
    pub fn data_bytes(&self) -> &[u8] {
        &self.data
    }

    /// The data section as an Arrow buffer: an O(1) clone sharing the same memory.
    ///
    /// Check [`NpyFile::is_aligned_for_dtype`] before building typed arrays from it; a
    /// misaligned buffer makes `ScalarBuffer::new` panic, so callers must copy it instead.
    pub fn values_buffer(&self) -> Buffer {
        self.data.clone()
    }

    /// Whether the data in memory is aligned for its dtype, so typed views exist.
    ///
    /// Always true after [`NpyFile::open`]; after [`NpyFile::from_buffer`] it depends on
    /// the buffer's address and the file's data offset.
    pub fn is_aligned_for_dtype(&self) -> bool {
        self.data.as_ptr().align_offset(self.header.dtype.align()) == 0
    }

    /// Whether typed views of element type `T` exist for this file.
    fn viewable<T: NpyElement>(&self) -> bool {
        T::DTYPE == self.header.dtype
            && std::mem::size_of::<T>() == self.header.dtype.itemsize()
            && (cfg!(target_endian = "little") || std::mem::size_of::<T>() == 1)
            && self.data.as_ptr().align_offset(std::mem::align_of::<T>()) == 0
    }

    /// The elements as a slice, without copying, in C order.
    ///
    /// `None` if `T` is not the file's dtype, the data is misaligned (see
    /// [`NpyFile::is_aligned_for_dtype`]) or the host is big-endian.
    pub fn values<T: NpyElement>(&self) -> Option<&[T]> {
        self.viewable::<T>().then(|| self.data.typed_data::<T>())
    }

    /// The elements as an Arrow [`ScalarBuffer`], without copying; `None` as for
    /// [`NpyFile::values`].
    pub fn scalar_buffer<T: NpyElement>(&self) -> Option<ScalarBuffer<T>> {
        self.viewable::<T>()
            .then(|| ScalarBuffer::new(self.data.clone(), 0, self.len()))
    }

    /// The elements as a `rows x cols` ndarray view, without copying; `None` as for
    /// [`NpyFile::values`].
    pub fn view2<T: NpyElement>(&self) -> Option<ndarray::ArrayView2<'_, T>> {
        let values = self.values::<T>()?;
        ndarray::ArrayView2::from_shape((self.rows(), self.cols()), values).ok()
    }

    /// The `f32` elements; see [`NpyFile::values`].
    pub fn as_f32(&self) -> Option<&[f32]> {
        self.values()
    }

    /// The `f64` elements; see [`NpyFile::values`].
    pub fn as_f64(&self) -> Option<&[f64]> {
        self.values()
    }

    /// The `i32` elements; see [`NpyFile::values`].
    pub fn as_i32(&self) -> Option<&[i32]> {
        self.values()
    }

    /// The `i64` elements; see [`NpyFile::values`].
    pub fn as_i64(&self) -> Option<&[i64]> {
        self.values()
    }

    /// The `u8` elements; see [`NpyFile::values`].
    pub fn as_u8(&self) -> Option<&[u8]> {
        self.values()
    }
}

/// Reads until `buf` is full or the file ends; returns the bytes read.
fn read_up_to(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Checks a shape for writing and returns its data length in bytes.
fn checked_data_len(dtype: NpyDtype, shape: &[usize]) -> Result<usize, NpyFormatError> {
    match shape.len() {
        0 => return Err(NpyFormatError::ZeroDim),
        1 | 2 => {}
        _ => {
            return Err(NpyFormatError::TooManyDims {
                shape: shape_u64(shape),
            });
        }
    }
    shape
        .iter()
        .try_fold(dtype.itemsize(), |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| NpyFormatError::ShapeOverflow {
            shape: shape_u64(shape),
            dtype,
        })
}

/// The version 1.0 header for a C-ordered array, padded so the data starts at a multiple
/// of [`DATA_ALIGN`] (64) bytes. The data section follows it directly.
///
/// Refuses the shapes [`parse_header`] refuses: 0-D, more than 2-D, and byte sizes that
/// overflow `usize`.
pub fn header_bytes(dtype: NpyDtype, shape: &[usize]) -> Result<Vec<u8>, NpyFormatError> {
    checked_data_len(dtype, shape)?;
    let shape_repr = match shape {
        [n] => format!("({n},)"),
        [r, c] => format!("({r}, {c})"),
        _ => unreachable!("checked_data_len allows 1 or 2 dimensions"),
    };
    let dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape_repr}, }}",
        dtype.descr()
    );
    // Magic, version, u16 length, dict, then spaces and a newline up to the alignment.
    let unpadded = PREAMBLE_V1 + dict.len() + 1;
    let total = unpadded.div_ceil(DATA_ALIGN) * DATA_ALIGN;
    let dict_len = u16::try_from(total - PREAMBLE_V1).expect("a 2-D header is short");
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&dict_len.to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.resize(total - 1, b' ');
    out.push(b'\n');
    Ok(out)
}

/// Removes a temporary file unless it was renamed into place.
struct TempFile {
    path: PathBuf,
    keep: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Writes `path` through a temporary file in the same directory, renamed into place when
/// `body` succeeds, so readers never see a partial file.
fn write_atomically(
    path: &Path,
    header: &[u8],
    body: impl FnOnce(&mut File) -> io::Result<()>,
) -> Result<(), NpyError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().ok_or_else(|| {
        NpyError::io(
            path,
            "create",
            io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"),
        )
    })?;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut tmp_name = OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.{n}.tmp", std::process::id()));
    let mut tmp = TempFile {
        path: path.with_file_name(tmp_name),
        keep: false,
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp.path)
        .map_err(|e| NpyError::io(path, "create temporary file", e))?;
    file.write_all(header)
        .and_then(|()| body(&mut file))
        .and_then(|()| file.flush())
        .map_err(|e| NpyError::io(path, "write", e))?;
    drop(file);
    std::fs::rename(&tmp.path, path).map_err(|e| NpyError::io(path, "rename into place", e))?;
    tmp.keep = true;
    Ok(())
}

/// Writes a C-ordered array of `dtype` and `shape` whose little-endian bytes are `data`.
///
/// The file is a version 1.0 `.npy` with its data at a multiple of 64 bytes, written to a
/// temporary file in the same directory and renamed into place (atomic for concurrent
/// readers; not synced to disk).
pub fn write_npy(
    path: impl AsRef<Path>,
    dtype: NpyDtype,
    shape: &[usize],
    data: &[u8],
) -> Result<(), NpyError> {
    let path = path.as_ref();
    let header = header_bytes(dtype, shape).map_err(|e| NpyError::new(path, e))?;
    let expected = checked_data_len(dtype, shape).map_err(|e| NpyError::new(path, e))?;
    if data.len() != expected {
        return Err(NpyError::new(
            path,
            NpyErrorKind::DataLen {
                expected: expected as u64,
                actual: data.len() as u64,
                dtype,
                shape: shape_u64(shape),
            },
        ));
    }
    write_atomically(path, &header, |f| f.write_all(data))
}

/// Writes a `.npy` file like [`write_npy`], with data produced block by block.
///
/// `fill(first_element, block)` fills `block` with the little-endian bytes of the elements
/// from index `first_element` on (C order); blocks hold whole elements, up to 8 MiB each,
/// and come in order. A block holds the previous block's bytes when `fill` is called, so
/// `fill` must write all of it. Large files are thus generated without holding them in
/// memory; `fill` may use rayon to fill its block in parallel.
pub fn write_npy_with<F>(
    path: impl AsRef<Path>,
    dtype: NpyDtype,
    shape: &[usize],
    mut fill: F,
) -> Result<(), NpyError>
where
    F: FnMut(usize, &mut [u8]),
{
    let path = path.as_ref();
    let header = header_bytes(dtype, shape).map_err(|e| NpyError::new(path, e))?;
    let data_len = checked_data_len(dtype, shape).map_err(|e| NpyError::new(path, e))?;
    let itemsize = dtype.itemsize();
    let block_len = (WRITE_BLOCK / itemsize * itemsize).min(data_len);
    write_atomically(path, &header, |file| {
        let mut block = vec![0u8; block_len];
        let mut done = 0;
        while done < data_len {
            let n = block_len.min(data_len - done);
            fill(done / itemsize, &mut block[..n]);
            file.write_all(&block[..n])?;
            done += n;
        }
        Ok(())
    })
}

/// Writes a C-ordered array of `shape` from typed `data`; see [`write_npy`].
pub fn write_npy_typed<T: NpyElement>(
    path: impl AsRef<Path>,
    shape: &[usize],
    data: &[T],
) -> Result<(), NpyError> {
    let path = path.as_ref();
    let expected = checked_data_len(T::DTYPE, shape).map_err(|e| NpyError::new(path, e))?;
    let actual = std::mem::size_of_val(data);
    if actual != expected {
        return Err(NpyError::new(
            path,
            NpyErrorKind::DataLen {
                expected: expected as u64,
                actual: actual as u64,
                dtype: T::DTYPE,
                shape: shape_u64(shape),
            },
        ));
    }
    write_npy_typed_with(path, shape, |first, out: &mut [T]| {
        out.copy_from_slice(&data[first..first + out.len()]);
    })
}

/// Writes a C-ordered array of `shape`, with typed data produced block by block; see
/// [`write_npy_with`]. `fill(first_element, block)` must fill all of `block`.
pub fn write_npy_typed_with<T, F>(
    path: impl AsRef<Path>,
    shape: &[usize],
    mut fill: F,
) -> Result<(), NpyError>
where
    T: NpyElement,
    F: FnMut(usize, &mut [T]),
{
    let size = std::mem::size_of::<T>();
    let mut values: Vec<T> = Vec::new();
    write_npy_with(path, T::DTYPE, shape, |first, out| {
        values.resize(out.len() / size, T::default());
        fill(first, &mut values);
        for (v, o) in values.iter().zip(out.chunks_exact_mut(size)) {
            v.write_le(o);
        }
    })
}

/// Writes a `rows x cols` C-ordered `f64` array (always 2-D; use [`write_npy_typed`] with
/// a 1-element shape for a 1-D array).
pub fn write_npy_f64(
    path: impl AsRef<Path>,
    rows: usize,
    cols: usize,
    data: &[f64],
) -> Result<(), NpyError> {
    write_npy_typed(path, &[rows, cols], data)
}

/// Writes a `rows x cols` C-ordered `f32` array (always 2-D; use [`write_npy_typed`] with
/// a 1-element shape for a 1-D array).
pub fn write_npy_f32(
    path: impl AsRef<Path>,
    rows: usize,
    cols: usize,
    data: &[f32],
) -> Result<(), NpyError> {
    write_npy_typed(path, &[rows, cols], data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// A predicate on the error a case must produce.
    type ErrCheck = fn(&NpyFormatError) -> bool;

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            static N: AtomicU64 = AtomicU64::new(0);
            let dir = std::env::temp_dir().join(format!(
                "shmframe-npy-{name}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        fn path(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// The value at flat index `i` in test files; `npy_numpy.py` uses the same formulas.
    trait TestValue: NpyElement + PartialEq {
        fn at(i: usize) -> Self;
    }
    impl TestValue for f64 {
        fn at(i: usize) -> Self {
            i as f64 * 0.5 - 3.0
        }
    }
    impl TestValue for f32 {
        fn at(i: usize) -> Self {
            (i as f64 * 0.5 - 3.0) as f32
        }
    }
    impl TestValue for i32 {
        fn at(i: usize) -> Self {
            i as i32 * 7 - 100
        }
    }
    impl TestValue for i64 {
        fn at(i: usize) -> Self {
            i as i64 * 7 - 100
        }
    }
    impl TestValue for u8 {
        fn at(i: usize) -> Self {
            (i % 251) as u8
        }
    }

    fn expected<T: TestValue>(n: usize) -> Vec<T> {
        (0..n).map(T::at).collect()
    }

    /// Writes files of every shape for `T`, reads them back, checks them.
    fn round_trip<T: TestValue>(dir: &TempDir) {
        for shape in [vec![10], vec![5, 3], vec![0], vec![0, 3], vec![1, 1]] {
            let n: usize = shape.iter().product();
            let path = dir.path(&format!("rt_{}_{shape:?}.npy", T::DTYPE));
            write_npy_typed(&path, &shape, &expected::<T>(n)).unwrap();
            let f = NpyFile::open(&path).unwrap();
            assert_eq!(f.dtype(), T::DTYPE);
            assert_eq!(f.shape(), &shape[..]);
            assert_eq!(f.rows(), shape[0]);
            assert_eq!(f.cols(), shape.get(1).copied().unwrap_or(1));
            assert!(f.header().is_data_offset_aligned());
            assert!(f.is_aligned_for_dtype());
            assert_eq!(f.values::<T>().unwrap(), &expected::<T>(n)[..]);
            assert_eq!(&f.scalar_buffer::<T>().unwrap()[..], &expected::<T>(n)[..]);
            let view = f.view2::<T>().unwrap();
            assert_eq!(view.dim(), (f.rows(), f.cols()));
            assert_eq!(f.values_buffer().len(), n * T::DTYPE.itemsize());
            // The same bytes, zero-copy from a buffer.
            let bytes = std::fs::read(&path).unwrap();
            let g = NpyFile::from_buffer(&path, Buffer::from_vec(bytes)).unwrap();
            assert_eq!(g.header(), f.header());
            assert_eq!(g.data_bytes(), f.data_bytes());
            // The block writer produces the same file.
            let path2 = dir.path(&format!("rtw_{}_{shape:?}.npy", T::DTYPE));
            write_npy_typed_with(&path2, &shape, |first, out: &mut [T]| {
                for (k, v) in out.iter_mut().enumerate() {
                    *v = T::at(first + k);
                }
            })
            .unwrap();
            assert_eq!(
                std::fs::read(&path2).unwrap(),
                std::fs::read(&path).unwrap()
            );
        }
        // Other dtypes' views are refused.
        let f = NpyFile::open(dir.path(&format!("rt_{}_[10].npy", T::DTYPE))).unwrap();
        let others = NpyDtype::ALL.iter().filter(|d| **d != T::DTYPE).count();
        let views = [
            f.as_f32().is_some(),
            f.as_f64().is_some(),
            f.as_i32().is_some(),
            f.as_i64().is_some(),
            f.as_u8().is_some(),
        ];
        assert_eq!(views.iter().filter(|v| !**v).count(), others);
    }

    #[test]
    fn round_trip_every_dtype() {
        let dir = TempDir::new("rt");
        round_trip::<f32>(&dir);
        round_trip::<f64>(&dir);
        round_trip::<i32>(&dir);
        round_trip::<i64>(&dir);
        round_trip::<u8>(&dir);
        // Only the files remain: no temporary files left behind.
        let names: Vec<_> = std::fs::read_dir(&dir.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(
            names
                .iter()
                .all(|n| n.ends_with(".npy") && !n.starts_with('.'))
        );
    }

    #[test]
    fn f64_helpers_and_block_writer_across_blocks() {
        let dir = TempDir::new("blocks");
        let path = dir.path("a.npy");
        write_npy_f64(&path, 2, 3, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        let f = NpyFile::open(&path).unwrap();
        assert_eq!(f.view2::<f64>().unwrap()[[1, 2]], 6.0);
        write_npy_f32(&path, 1, 2, &[1.5, 2.5]).unwrap();
        assert_eq!(NpyFile::open(&path).unwrap().as_f32().unwrap(), &[1.5, 2.5]);
        // More than one 8 MiB block, with a partial last block.
        let rows = WRITE_BLOCK / 8 * 2 + 3;
        let mut calls = 0;
        write_npy_typed_with(&path, &[rows], |first, out: &mut [i64]| {
            calls += 1;
            for (k, v) in out.iter_mut().enumerate() {
                *v = (first + k) as i64;
            }
        })
        .unwrap();
        assert_eq!(calls, 3);
        let f = NpyFile::open(&path).unwrap();
        let v = f.as_i64().unwrap();
        assert!(v.iter().enumerate().all(|(i, x)| *x == i as i64));
    }

    #[test]
    fn header_bytes_are_numpy_style() {
        let h = header_bytes(NpyDtype::F64, &[3, 4]).unwrap();
        assert_eq!(h.len() % DATA_ALIGN, 0);
        assert!(h.starts_with(b"\x93NUMPY\x01\x00"));
        let text = std::str::from_utf8(&h[10..]).unwrap();
        assert!(text.starts_with("{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }"));
        assert!(text.ends_with(" \n"));
        let parsed = parse_header(&h).unwrap();
        assert_eq!(parsed.shape, vec![3, 4]);
        assert_eq!(parsed.data_offset, h.len());
        assert_eq!(parsed.data_len, 96);
        let h1 = header_bytes(NpyDtype::U8, &[7]).unwrap();
        assert!(std::str::from_utf8(&h1[10..]).unwrap().contains("'|u1'"));
        assert!(std::str::from_utf8(&h1[10..]).unwrap().contains("(7,)"));
        assert_eq!(
            header_bytes(NpyDtype::F64, &[]),
            Err(NpyFormatError::ZeroDim)
        );
        assert!(matches!(
            header_bytes(NpyDtype::F64, &[1, 2, 3]),
            Err(NpyFormatError::TooManyDims { .. })
        ));
        assert!(matches!(
            header_bytes(NpyDtype::F64, &[1 << 62, 8]),
            Err(NpyFormatError::ShapeOverflow { .. })
        ));
    }

    #[test]
    fn writer_refuses_wrong_data_length() {
        let dir = TempDir::new("len");
        let path = dir.path("bad.npy");
        let err = write_npy(&path, NpyDtype::F64, &[2, 2], &[0u8; 24]).unwrap_err();
        assert!(matches!(
            err.kind(),
            NpyErrorKind::DataLen {
                expected: 32,
                actual: 24,
                ..
            }
        ));
        assert!(
            err.to_string().contains("bad.npy: data has 24 bytes"),
            "{err}"
        );
        assert!(!path.exists());
        let err = write_npy_f64(&path, 2, 2, &[1.0]).unwrap_err();
        assert!(matches!(err.kind(), NpyErrorKind::DataLen { .. }));
    }

    /// A version 1.0 file with `dict` as its header (padded to 64) and `data` after it.
    fn craft(dict: &str, data: &[u8]) -> Vec<u8> {
        craft_version((1, 0), dict, data)
    }

    fn craft_version(version: (u8, u8), dict: &str, data: &[u8]) -> Vec<u8> {
        let pre = if version.0 == 1 { 10 } else { 12 };
        let total = (pre + dict.len() + 1).div_ceil(64) * 64;
        let dict_len = total - pre;
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&[version.0, version.1]);
        if pre == 10 {
            out.extend_from_slice(&(dict_len as u16).to_le_bytes());
        } else {
            out.extend_from_slice(&(dict_len as u32).to_le_bytes());
        }
        out.extend_from_slice(dict.as_bytes());
        out.resize(total - 1, b' ');
        out.push(b'\n');
        out.extend_from_slice(data);
        out
    }

    fn parse_err(bytes: &[u8]) -> NpyFormatError {
        parse_header(bytes).unwrap_err()
    }

    /// Parses the dict in a crafted file and returns the header.
    fn parse_dict(dict: &str) -> Result<NpyHeader, NpyFormatError> {
        parse_header(&craft(dict, &[]))
    }

    #[test]
    fn dict_parsing_is_robust() {
        let ok = [
            "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }",
            "{\"shape\":(3,4),\"descr\":\"<f8\",\"fortran_order\":False}",
            "{ 'fortran_order' : False , 'shape' : ( 3 , 4 , ) , 'descr' : '<f8' , }",
            "{'descr': '<f8',\n 'fortran_order': False,\t'shape': (3L, 4L)}",
            "{'descr': 'f8', 'fortran_order': False, 'shape': (3, 4)}",
            "{'descr': '=f8', 'fortran_order': False, 'shape': (3, 4)}",
        ];
        for dict in ok {
            let h = parse_dict(dict).unwrap_or_else(|e| panic!("{dict}: {e}"));
            assert_eq!(
                (h.dtype, &h.shape[..], h.data_len),
                (NpyDtype::F64, &[3, 4][..], 96)
            );
        }
        let h = parse_dict("{'descr': '<i4', 'fortran_order': False, 'shape': (7,), }").unwrap();
        assert_eq!(
            (h.dtype, &h.shape[..], h.rows(), h.cols()),
            (NpyDtype::I32, &[7][..], 7, 1)
        );
        for descr in ["|u1", "<u1", ">u1", "u1"] {
            let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': (2,)}}");
            assert_eq!(parse_dict(&dict).unwrap().dtype, NpyDtype::U8);
        }
        // Fortran order is harmless for a single row or column.
        let h = parse_dict("{'descr': '<f4', 'fortran_order': True, 'shape': (5, 1)}").unwrap();
        assert_eq!(h.shape, vec![5, 1]);
        // Versions 2.0 and 3.0.
        for v in [(2, 0), (3, 0)] {
            let bytes = craft_version(
                v,
                "{'descr': '<f8', 'fortran_order': False, 'shape': (2,)}",
                &[0; 16],
            );
            let h = parse_header(&bytes).unwrap();
            assert_eq!(h.data_offset, 128);
            h.check_file_len(bytes.len() as u64).unwrap();
        }
    }

    #[test]
    fn refuses_bad_preambles() {
        let good = craft(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (1,)}",
            &[0; 8],
        );
        let mut wrong_magic = good.clone();
        wrong_magic[1] = b'X';
        assert!(matches!(
            parse_err(&wrong_magic),
            NpyFormatError::BadMagic { .. }
        ));
        assert!(matches!(
            parse_err(b"PK\x03\x04"),
            NpyFormatError::BadMagic { .. }
        ));
        assert!(matches!(
            parse_err(b""),
            NpyFormatError::TooShort { len: 0, .. }
        ));
        assert!(matches!(
            parse_err(b"\x93NUMPY\x01"),
            NpyFormatError::TooShort { .. }
        ));
        assert!(matches!(
            parse_err(b"\x93NUMPY\x02\x00\x10\x00"),
            NpyFormatError::TooShort { .. }
        ));
        for v in [(0, 0), (1, 1), (4, 0)] {
            let mut b = good.clone();
            (b[6], b[7]) = v;
            assert_eq!(
                parse_err(&b),
                NpyFormatError::UnsupportedVersion {
                    major: v.0,
                    minor: v.1
                }
            );
        }
        // Header length past the end of the bytes.
        let mut b = good.clone();
        b[8..10].copy_from_slice(&1000u16.to_le_bytes());
        assert_eq!(
            parse_err(&b),
            NpyFormatError::HeaderPastEnd {
                header_end: 1010,
                len: b.len() as u64
            }
        );
        assert!(matches!(
            parse_err(&good[..40]),
            NpyFormatError::HeaderPastEnd { .. }
        ));
        // A v2 length field claiming gigabytes.
        let mut b = craft_version(
            (2, 0),
            "{'descr': '<f8', 'fortran_order': False, 'shape': (1,)}",
            &[0; 8],
        );
        b[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            parse_err(&b),
            NpyFormatError::HeaderTooLong { .. }
        ));
    }

    #[test]
    fn refuses_bad_dicts() {
        let cases: &[(&str, ErrCheck)] = &[
            (
                "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }",
                |e| matches!(e, NpyFormatError::FortranOrder { shape } if shape == &[2, 3]),
            ),
            (
                "{'descr': '>f8', 'fortran_order': False, 'shape': (2,), }",
                |e| matches!(e, NpyFormatError::BigEndian { descr } if descr == ">f8"),
            ),
            (
                "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }",
                |e| matches!(e, NpyFormatError::ObjectDtype { .. }),
            ),
            (
                "{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }",
                |e| matches!(e, NpyFormatError::UnsupportedDtype { descr } if descr == "<f2"),
            ),
            (
                "{'descr': '|f8', 'fortran_order': False, 'shape': (2,), }",
                |e| matches!(e, NpyFormatError::UnsupportedDtype { .. }),
            ),
            (
                "{'descr': [('a', '<f8'), ('b', '<i4')], 'fortran_order': False, 'shape': (2,), }",
                |e| matches!(e, NpyFormatError::UnsupportedDtype { descr } if descr.starts_with("[('a'")),
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2, 2), }",
                |e| matches!(e, NpyFormatError::TooManyDims { shape } if shape.len() == 3),
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (), }",
                |e| matches!(e, NpyFormatError::ZeroDim),
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904, 8), }",
                |e| matches!(e, NpyFormatError::ShapeOverflow { shape, .. } if shape == &[1 << 62, 8]),
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999,), }",
                |e| matches!(e, NpyFormatError::MalformedHeader { reason, .. } if reason.contains("64 bits")),
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (5), }",
                |e| matches!(e, NpyFormatError::MalformedHeader { reason, .. } if reason.contains("not a tuple")),
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (-5,), }",
                |e| matches!(e, NpyFormatError::MalformedHeader { reason, .. } if reason.contains("negative")),
            ),
            (
                "{'descr': '<f8', 'fortran_order': 0, 'shape': (5,), }",
                |e| matches!(e, NpyFormatError::MalformedHeader { reason, .. } if reason.contains("True or False")),
            ),
            (
                "{'descr': '<f8', 'shape': (5,), }",
                |e| matches!(e, NpyFormatError::MalformedHeader { reason, .. } if reason.contains("'fortran_order' is missing")),
            ),
            (
                "{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, 'shape': (5,), }",
                |e| matches!(e, NpyFormatError::MalformedHeader { reason, .. } if reason.contains("duplicate")),
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (5,), 'extra': 1}",
                |e| matches!(e, NpyFormatError::MalformedHeader { reason, .. } if reason.contains("unexpected key")),
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (5,)",
                |e| matches!(e, NpyFormatError::MalformedHeader { reason, .. } if reason.contains("unterminated dict")),
            ),
            (
                "{'descr': '<f8, 'fortran_order': False, 'shape': (5,)}",
                |e| matches!(e, NpyFormatError::MalformedHeader { .. }),
            ),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (5,)} junk",
                |e| matches!(e, NpyFormatError::MalformedHeader { reason, .. } if reason.contains("after the dict")),
            ),
            ("['descr', '<f8']", |e| {
                matches!(e, NpyFormatError::MalformedHeader { .. })
            }),
            ("", |e| matches!(e, NpyFormatError::MalformedHeader { .. })),
            (
                "{'descr': '<f8', 'fortran_order': False, 'shape': (5,",
                |e| matches!(e, NpyFormatError::MalformedHeader { reason, .. } if reason.contains("unterminated shape")),
            ),
        ];
        for (dict, check) in cases {
            let err = parse_dict(dict).unwrap_err();
            assert!(check(&err), "{dict}: unexpected {err:?}");
            // Every message is a single readable line.
            assert!(!err.to_string().contains('\n'), "{err}");
        }
        // Not UTF-8.
        let mut b = craft(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (1,)}",
            &[0; 8],
        );
        b[20] = 0xff;
        assert_eq!(parse_err(&b), NpyFormatError::HeaderNotText { offset: 20 });
    }

    #[test]
    fn refuses_wrong_data_lengths_with_named_file() {
        let dir = TempDir::new("trunc");
        let dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (1000, 1), }";
        let path = dir.path("x.npy");
        std::fs::write(&path, craft(dict, &[0; 7992])).unwrap();
        let err = NpyFile::open(&path).unwrap_err();
        assert_eq!(
            err.format_error(),
            Some(&NpyFormatError::Truncated {
                expected: 8000,
                actual: 7992,
                dtype: NpyDtype::F64,
                shape: vec![1000, 1]
            })
        );
        let msg = err.to_string();
        assert!(
            msg.ends_with(
                "x.npy: data is truncated: header says 8000 bytes of <f8 (1000x1), file has 7992"
            ),
            "{msg}"
        );
        std::fs::write(&path, craft(dict, &[0; 8003])).unwrap();
        let err = NpyFile::open(&path).unwrap_err();
        assert!(matches!(
            err.format_error(),
            Some(NpyFormatError::TrailingBytes {
                expected: 8000,
                actual: 8003,
                ..
            })
        ));
        assert!(err.to_string().contains("(3 trailing bytes)"), "{err}");
        // Header past the end of a short file, through open.
        let mut b = craft(dict, &[]);
        b[8..10].copy_from_slice(&500u16.to_le_bytes());
        std::fs::write(&path, &b).unwrap();
        let err = NpyFile::open(&path).unwrap_err();
        assert!(
            matches!(
                err.format_error(),
                Some(NpyFormatError::HeaderPastEnd { .. })
            ),
            "{err}"
        );
        // Empty file and a missing file.
        std::fs::write(&path, b"").unwrap();
        let err = NpyFile::open(&path).unwrap_err();
        assert!(
            matches!(err.format_error(), Some(NpyFormatError::TooShort { .. })),
            "{err}"
        );
        let err = NpyFile::open(dir.path("missing.npy")).unwrap_err();
        assert!(
            matches!(err.kind(), NpyErrorKind::Io { op: "open", .. }),
            "{err}"
        );
        assert!(
            err.to_string().contains("missing.npy: open failed"),
            "{err}"
        );
        // The same checks through from_buffer.
        let err =
            NpyFile::from_buffer("y.npy", Buffer::from_vec(craft(dict, &[0; 8]))).unwrap_err();
        assert!(matches!(
            err.format_error(),
            Some(NpyFormatError::Truncated { actual: 8, .. })
        ));
        assert_eq!(err.path(), Path::new("y.npy"));
    }

    #[test]
    fn misaligned_buffers_have_no_typed_views() {
        // An old-numpy style header (16-byte aligned data offset), in a buffer at an odd address.
        let dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }";
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&[1, 0]);
        let dict_len = (10 + dict.len() + 1).div_ceil(16) * 16 - 10;
        bytes.extend_from_slice(&(dict_len as u16).to_le_bytes());
        bytes.extend_from_slice(dict.as_bytes());
        bytes.resize(10 + dict_len - 1, b' ');
        bytes.push(b'\n');
        assert_eq!(bytes.len() % 64, 16);
        for v in [1.5f64, -2.0] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        let header = parse_header(&bytes).unwrap();
        assert!(!header.is_data_offset_aligned());
        let mut shifted = vec![0u8];
        shifted.extend_from_slice(&bytes);
        let buf = Buffer::from_vec(shifted).slice(1);
        let f = NpyFile::from_buffer("old.npy", buf).unwrap();
        assert!(!f.is_aligned_for_dtype());
        assert_eq!(f.as_f64(), None);
        assert!(f.scalar_buffer::<f64>().is_none());
        assert_eq!(f.data_bytes(), &bytes[bytes.len() - 16..]);
        // open copies into an aligned buffer.
        let dir = TempDir::new("old");
        let path = dir.path("old.npy");
        std::fs::write(&path, &bytes).unwrap();
        let f = NpyFile::open(&path).unwrap();
        assert!(!f.header().is_data_offset_aligned());
        assert_eq!(f.as_f64().unwrap(), &[1.5, -2.0]);
    }

    proptest::proptest! {
        /// Arbitrary and mutated headers never panic the parser.
        #[test]
        fn parser_never_panics(
            tail in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
            flips in proptest::collection::vec((0usize..140, proptest::num::u8::ANY), 0..6),
        ) {
            let mut raw = MAGIC.to_vec();
            raw.extend_from_slice(&tail);
            let _ = parse_header(&raw);
            let mut b = craft("{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }", &[0; 96]);
            for (i, v) in flips {
                let i = i % b.len();
                b[i] = v;
            }
            if let Ok(h) = parse_header(&b) {
                let _ = h.check_file_len(b.len() as u64);
            }
        }
    }

    /// The Python with numpy to use, or why the numpy tests are skipped.
    fn numpy_python() -> Result<String, String> {
        let python = std::env::var("SHMFRAME_PYTHON").unwrap_or_else(|_| "python3".into());
        match Command::new(&python).args(["-c", "import numpy"]).output() {
            Ok(out) if out.status.success() => Ok(python),
            Ok(out) => Err(format!(
                "{python} cannot import numpy ({}); set SHMFRAME_PYTHON to a Python with numpy",
                String::from_utf8_lossy(&out.stderr)
                    .trim()
                    .lines()
                    .last()
                    .unwrap_or("")
            )),
            Err(e) => Err(format!("cannot run {python}: {e}; set SHMFRAME_PYTHON")),
        }
    }

    fn run_script(python: &str, mode: &str, dir: &Path) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/npy_numpy.py");
        let out = Command::new(python)
            .arg(script)
            .arg(mode)
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "npy_numpy.py {mode} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn check_numpy_file<T: TestValue>(dir: &TempDir, name: &str, shape: &[usize]) {
        let f = NpyFile::open(dir.path(name)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.shape(), shape, "{name}");
        assert_eq!(
            f.values::<T>().unwrap(),
            &expected::<T>(f.len())[..],
            "{name}"
        );
    }

    #[test]
    fn interoperates_with_real_numpy() {
        let python = match numpy_python() {
            Ok(p) => p,
            Err(reason) => {
                eprintln!("skipping interoperates_with_real_numpy: {reason}");
                return;
            }
        };
        let dir = TempDir::new("numpy");
        // numpy writes, we read.
        run_script(&python, "write", &dir.0);
        fn all_shapes<T: TestValue>(dir: &TempDir) {
            let d = T::DTYPE.name();
            check_numpy_file::<T>(dir, &format!("np_{d}_10.npy"), &[10]);
            check_numpy_file::<T>(dir, &format!("np_{d}_5x3.npy"), &[5, 3]);
            check_numpy_file::<T>(dir, &format!("np_{d}_0.npy"), &[0]);
            check_numpy_file::<T>(dir, &format!("np_{d}_0x3.npy"), &[0, 3]);
        }
        all_shapes::<f32>(&dir);
        all_shapes::<f64>(&dir);
        all_shapes::<i32>(&dir);
        all_shapes::<i64>(&dir);
        all_shapes::<u8>(&dir);
        for name in ["np_f64_v2.npy", "np_f64_v3.npy", "np_f64_old16.npy"] {
            check_numpy_file::<f64>(&dir, name, &[6, 2]);
        }
        for name in ["np_f64_10.npy", "np_u8_5x3.npy", "np_f64_v3.npy"] {
            let f = NpyFile::open(dir.path(name)).unwrap();
            assert!(
                f.header().is_data_offset_aligned(),
                "numpy aligned {name} to 64"
            );
        }
        let old = NpyFile::open(dir.path("np_f64_old16.npy")).unwrap();
        assert!(!old.header().is_data_offset_aligned());
        let refused: &[(&str, ErrCheck)] = &[
            ("bad_fortran.npy", |e| {
                matches!(e, NpyFormatError::FortranOrder { .. })
            }),
            ("bad_bigendian.npy", |e| {
                matches!(e, NpyFormatError::BigEndian { .. })
            }),
            ("bad_object.npy", |e| {
                matches!(e, NpyFormatError::ObjectDtype { .. })
            }),
            ("bad_0d.npy", |e| matches!(e, NpyFormatError::ZeroDim)),
            ("bad_3d.npy", |e| {
                matches!(e, NpyFormatError::TooManyDims { .. })
            }),
            ("bad_f16.npy", |e| {
                matches!(e, NpyFormatError::UnsupportedDtype { .. })
            }),
            ("bad_structured.npy", |e| {
                matches!(e, NpyFormatError::UnsupportedDtype { .. })
            }),
        ];
        for (name, check) in refused {
            let err = NpyFile::open(dir.path(name)).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(name), "{msg}");
            assert!(err.format_error().is_some_and(check), "{name}: {msg}");
        }
        // We write, numpy reads (names say dtype and shape).
        fn write_all<T: TestValue>(dir: &TempDir) {
            let d = T::DTYPE.name();
            write_npy_typed(
                dir.path(&format!("rs_{d}_10.npy")),
                &[10],
                &expected::<T>(10),
            )
            .unwrap();
            write_npy_typed(
                dir.path(&format!("rs_{d}_5x3.npy")),
                &[5, 3],
                &expected::<T>(15),
            )
            .unwrap();
            write_npy_typed(dir.path(&format!("rs_{d}_0.npy")), &[0], &expected::<T>(0)).unwrap();
            write_npy_typed(
                dir.path(&format!("rs_{d}_0x3.npy")),
                &[0, 3],
                &expected::<T>(0),
            )
            .unwrap();
        }
        write_all::<f32>(&dir);
        write_all::<f64>(&dir);
        write_all::<i32>(&dir);
        write_all::<i64>(&dir);
        write_all::<u8>(&dir);
        run_script(&python, "check", &dir.0);
    }
}
