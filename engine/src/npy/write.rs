//! Writing `.npy` files: version 1.0, C order, data aligned to
//! [`DATA_ALIGN`](super::DATA_ALIGN), written to a temporary file in the same directory and
//! renamed into place.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::error::shape_u64;
use super::header::checked_data_len;
use super::{NpyDtype, NpyElement, NpyError, NpyErrorKind, header_bytes};

/// Size of the blocks [`write_npy_with`] asks its closure to fill.
pub(super) const WRITE_BLOCK: usize = 8 << 20;

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
    use crate::npy::tests::TempDir;

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
}
