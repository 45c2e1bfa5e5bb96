//! Reading `.npy` files: [`NpyFile`], from a path (one sequential read into an aligned
//! buffer) or from an Arrow [`Buffer`] over the whole file (zero-copy).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use arrow_buffer::{Buffer, MutableBuffer, ScalarBuffer};

use super::header::parse_preamble;
use super::{NpyDtype, NpyElement, NpyError, NpyFormatError, NpyHeader, PREAMBLE_V2, parse_header};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::npy::tests::{TempDir, craft};
    use crate::npy::{MAGIC, NpyErrorKind};

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
}
