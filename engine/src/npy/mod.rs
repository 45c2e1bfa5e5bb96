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
//! always aligned), and [`NpyFile::from_buffer`] accepts an Arrow [`Buffer`](arrow_buffer::Buffer) over the whole
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

mod dtype;
mod error;
mod header;
mod literal;
mod read;
#[cfg(test)]
mod tests;
mod write;

pub use dtype::{NpyDtype, NpyElement};
pub use error::{NpyError, NpyErrorKind, NpyFormatError};
pub use header::{NpyHeader, header_bytes, parse_header};
pub use read::NpyFile;
pub use write::{
    write_npy, write_npy_f32, write_npy_f64, write_npy_typed, write_npy_typed_with, write_npy_with,
};

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

/// The length of the fixed part before the dict in version 1.0 (magic, version, `u16`).
const PREAMBLE_V1: usize = 10;

/// The length of the fixed part before the dict in versions 2.0 and 3.0 (`u32` length).
const PREAMBLE_V2: usize = 12;
