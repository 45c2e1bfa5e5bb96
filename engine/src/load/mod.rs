//! Loading data into shared frames: `.npy` (mapped in place when aligned), Arrow IPC files
//! and streams / Feather v2 (mapped in place when they can be), Parquet and CSV (decoded once
//! into a segment), and in-memory matrices and batches.
//!
//! Files come from other programs and may be corrupt or hostile, so every loader holds to one
//! bar: no panic and no signal on any content, memory bounded by the file's size and by
//! [`crate::EngineBuilder::load_limit`], and an [`EngineError::Input`] that names the file
//! and what is wrong. [`Engine::frame_from_file`] picks the loader from the content
//! ([`sniff`]), with the extension only as a hint.

mod arrow;
mod csv;
mod memory;
mod npy;
mod parquet;
mod sniff;

use std::io::Read;
use std::path::Path;

use arrow_array::RecordBatch;
use shmframe_ipc::{MappedFile, SegmentName};

use crate::coordinator::Engine;
use crate::error::EngineError;
use crate::frame::SharedFrame;

pub use memory::WritableMatrix;
pub use sniff::FileFormat;

/// The column every `.npy` frame has: `x`.
pub(crate) const NPY_COLUMN: &str = "x";

pub(crate) fn input_err(path: &Path, reason: impl ToString) -> EngineError {
    EngineError::Input {
        what: path.display().to_string(),
        reason: reason.to_string(),
    }
}

fn io_err(path: &Path, source: std::io::Error) -> EngineError {
    EngineError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Maps a file read-only; a directory or a missing file is an error naming it.
fn open_mapped(path: &Path) -> Result<MappedFile, EngineError> {
    if path.is_dir() {
        return Err(input_err(path, "is a directory, not a file"));
    }
    Ok(MappedFile::open(path)?)
}

/// Runs a decoder that may panic on hostile input (parquet and arrow-csv trust some lengths
/// they read) and turns a panic into an input error naming the file.
fn no_panic<T>(path: &Path, f: impl FnOnce() -> Result<T, EngineError>) -> Result<T, EngineError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|p| {
        let what = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(input_err(
            path,
            format!("the decoder failed on corrupt data: {what}"),
        ))
    })
}

/// The error of a file whose decoding would pass the load limit.
fn too_large(path: &Path, limit: u64) -> EngineError {
    input_err(
        path,
        format!(
            "decoding would produce more than the load limit of {limit} bytes (a corrupt or \
             hostile file; to raise it: --load-limit, EngineBuilder::load_limit)"
        ),
    )
}

/// What decoded batches may add up to: [`crate::EngineBuilder::load_limit`].
struct Budget<'a> {
    path: &'a Path,
    limit: u64,
    used: u64,
}

impl<'a> Budget<'a> {
    fn new(path: &'a Path, limit: u64) -> Self {
        Self {
            path,
            limit,
            used: 0,
        }
    }

    /// Counts `bytes` more, or refuses once the limit is passed.
    fn charge(&mut self, bytes: u64) -> Result<(), EngineError> {
        self.used = self.used.saturating_add(bytes);
        if self.used > self.limit {
            return Err(too_large(self.path, self.limit));
        }
        Ok(())
    }

    /// Counts a decoded batch.
    fn batch(&mut self, b: &RecordBatch) -> Result<(), EngineError> {
        self.charge(b.get_array_memory_size() as u64)
    }
}

/// Decodes `bytes` as a file named `name` would be loaded (the format from the content, or
/// `format`), up to the point where a loader would copy the batches into a segment: the
/// entry point of the fuzz targets, which must find no input that panics or allocates past
/// `limit`. Not a stable API.
#[doc(hidden)]
pub fn decode_for_fuzzing(
    bytes: &[u8],
    name: &str,
    format: Option<FileFormat>,
    limit: u64,
) -> Result<Vec<RecordBatch>, EngineError> {
    let path = Path::new(name);
    let format = match format {
        Some(f) => f,
        None => {
            let tail = &bytes[bytes.len().saturating_sub(4)..];
            let head = &bytes[..bytes.len().min(sniff::SNIFF_LEN)];
            sniff::detect(path, head, tail).map_err(|r| input_err(path, r))?
        }
    };
    let batches = match format {
        FileFormat::Npy => {
            let h = crate::npy::parse_header(bytes).map_err(|e| input_err(path, e))?;
            h.check_file_len(bytes.len() as u64)
                .map_err(|e| input_err(path, e))?;
            Ok(Vec::new())
        }
        FileFormat::Arrow => {
            let owned = bytes.to_vec();
            let file = match arrow::read_arrow(|| Ok(owned.clone()), path, limit)? {
                arrow::ArrowRead::InPlace(f) | arrow::ArrowRead::Decoded(f) => f,
            };
            Ok(file.batches)
        }
        FileFormat::Parquet => no_panic(path, || {
            parquet::decode(path, bytes::Bytes::copy_from_slice(bytes), limit)
        })
        .map(|(_, b)| b),
        FileFormat::Csv => no_panic(path, || csv::decode(path, bytes, limit)).map(|(_, b)| b),
    }?;
    // What `SharedFrame::from_batches` does next, short of writing the segment.
    if batches.len() > 1 {
        arrow_select::concat::concat_batches(&batches[0].schema(), &batches)
            .map_err(|e| input_err(path, e))?;
    }
    Ok(batches)
}

/// The machine's physical memory (`MemTotal`), the default load limit.
pub(crate) fn physical_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib = info
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(kib * 1024)
}

impl Engine {
    /// A file of any supported format, recognised by its content: `.npy` (`\x93NUMPY`),
    /// Arrow IPC file or stream / Feather v2 (`ARROW1` or a schema message), Parquet
    /// (`PAR1`), else CSV if it is text. The extension is only a hint: one that names another
    /// format than the content is an error that says both (`x.csv` holding Parquet), and
    /// images, archives and Feather v1 get an error saying what they are.
    pub fn frame_from_file(&self, path: impl AsRef<Path>) -> Result<SharedFrame, EngineError> {
        let path = path.as_ref();
        match self.file_format(path)? {
            FileFormat::Npy => self.frame_from_npy(path),
            FileFormat::Arrow => self.frame_from_arrow_file(path),
            FileFormat::Parquet => self.frame_from_parquet(path),
            FileFormat::Csv => self.frame_from_csv(path),
        }
    }

    /// The format [`Engine::frame_from_file`] would read `path` as.
    pub fn file_format(&self, path: impl AsRef<Path>) -> Result<FileFormat, EngineError> {
        let path = path.as_ref();
        if path.is_dir() {
            return Err(input_err(path, "is a directory, not a file"));
        }
        let mut f = std::fs::File::open(path).map_err(|e| io_err(path, e))?;
        let mut head = Vec::with_capacity(sniff::SNIFF_LEN);
        (&mut f)
            .take(sniff::SNIFF_LEN as u64)
            .read_to_end(&mut head)
            .map_err(|e| io_err(path, e))?;
        let mut tail = [0u8; 4];
        let len = f.metadata().map_err(|e| io_err(path, e))?.len();
        if len >= 8 {
            use std::io::{Seek, SeekFrom};
            f.seek(SeekFrom::Start(len - 4))
                .and_then(|_| f.read_exact(&mut tail))
                .map_err(|e| io_err(path, e))?;
        }
        sniff::detect(path, &head, &tail).map_err(|reason| input_err(path, reason))
    }

    /// `shm:NAME` for a named segment, else a file ([`Engine::frame_from_file`]).
    pub fn frame_from_source(&self, src: &str) -> Result<SharedFrame, EngineError> {
        if let Some(name) = src.strip_prefix("shm:") {
            return SharedFrame::attach(&SegmentName::from_user_input(name)?, &self.segment_dir());
        }
        self.frame_from_file(src)
    }

    /// The most bytes a file loader may decode ([`crate::EngineBuilder::load_limit`]).
    pub fn load_limit(&self) -> u64 {
        self.cfg.load_limit
    }
}
