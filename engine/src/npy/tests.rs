//! Tests across the reader and the writers, and the helpers every test module of `npy`
//! shares (temporary directories, crafted files).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow_buffer::Buffer;

use super::write::WRITE_BLOCK;
use super::*;

/// A predicate on the error a case must produce.
pub(super) type ErrCheck = fn(&NpyFormatError) -> bool;

/// A fresh directory under the system temp dir, removed on drop.
pub(super) struct TempDir(PathBuf);

impl TempDir {
    pub(super) fn new(name: &str) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "shmframe-npy-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub(super) fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A version 1.0 file with `dict` as its header (padded to 64) and `data` after it.
pub(super) fn craft(dict: &str, data: &[u8]) -> Vec<u8> {
    craft_version((1, 0), dict, data)
}

pub(super) fn craft_version(version: (u8, u8), dict: &str, data: &[u8]) -> Vec<u8> {
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

/// Parses the dict in a crafted file and returns the header.
pub(super) fn parse_dict(dict: &str) -> Result<NpyHeader, NpyFormatError> {
    parse_header(&craft(dict, &[]))
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
