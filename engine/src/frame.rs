//! Shared frames: an Arrow schema plus columns whose buffers live in a mapping that every
//! worker can map too (a segment, or a file used in place).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arrow_array::{ArrayRef, RecordBatch};
use arrow_buffer::Buffer;
use arrow_schema::SchemaRef;
use shmframe_ipc::arrow::{IpcFile, buffer_range_in, read_ipc_file, write_batches};
use shmframe_ipc::{CreateOptions, MappedFile, Segment, SegmentDir, SegmentName};

use crate::control::{BufRef, Loc};
use crate::error::EngineError;
use crate::recycle::{OutputKey, OutputPool, RecycledOwner};

/// A frame whose data lives in shared memory (or a mapped file): its arrays point into the
/// mapping, and job descriptors name the mapping plus byte offsets so workers find the same
/// bytes without any copy.
///
/// Cloning is cheap (reference counted). The segment behind a frame made by this process is
/// unlinked when the last clone, and the last array taken from it, is dropped; a job's output
/// may instead go back to its engine for the next job of the same shape (see
/// [`crate::EngineBuilder::recycle_outputs`]) unless its name or path was asked for.
#[derive(Clone, Debug)]
pub struct SharedFrame {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    batch: RecordBatch,
    base: Buffer,
    loc: Loc,
    name: Option<SegmentName>,
    path: PathBuf,
    /// For a recyclable job output: set once the name or path is handed out, which keeps the
    /// segment from being reused.
    exposed: Option<Arc<AtomicBool>>,
}

impl SharedFrame {
    fn from_ipc(
        file: IpcFile,
        loc: Loc,
        name: Option<SegmentName>,
        path: PathBuf,
    ) -> Result<Self, EngineError> {
        let label = path.display().to_string();
        let batch = match file.batches.len() {
            1 => file.batches.into_iter().next().expect("one batch"),
            0 => RecordBatch::new_empty(file.schema.clone()),
            n => {
                return Err(EngineError::Input {
                    what: label,
                    reason: format!(
                        "has {n} record batches; shared frames hold one (load it through \
                         `SharedFrame::from_batches`, which concatenates, or write it as one batch)"
                    ),
                });
            }
        };
        Ok(SharedFrame {
            inner: Arc::new(Inner {
                batch,
                base: file.buffer,
                loc,
                name,
                path,
                exposed: None,
            }),
        })
    }

    /// A frame over a published Arrow segment (zero-copy).
    pub fn from_segment(segment: Segment) -> Result<Self, EngineError> {
        let name = segment.name().clone();
        let path = segment.path();
        let file = read_ipc_file(segment, name.as_str())?;
        Self::from_ipc(file, Loc::Segment(name.to_string()), Some(name), path)
    }

    /// A frame over a job output `seg` that goes back to `pool` when the frame and its arrays
    /// are dropped (see [`crate::recycle`]).
    pub(crate) fn from_recyclable(
        seg: Segment,
        pool: &Arc<OutputPool>,
        key: OutputKey,
    ) -> Result<Self, EngineError> {
        let name = seg.name().clone();
        let path = seg.path();
        let exposed = Arc::new(AtomicBool::new(false));
        let owner = RecycledOwner::new(seg, pool, key, exposed.clone());
        let file = read_ipc_file(owner, name.as_str())?;
        let mut frame = Self::from_ipc(file, Loc::Segment(name.to_string()), Some(name), path)?;
        Arc::get_mut(&mut frame.inner)
            .expect("a frame just made has one reference")
            .exposed = Some(exposed);
        Ok(frame)
    }

    /// Attaches the named Arrow segment `name` in `dir` read-only (zero-copy).
    pub fn attach(name: &SegmentName, dir: &SegmentDir) -> Result<Self, EngineError> {
        Self::from_segment(Segment::attach(name, dir)?)
    }

    /// Maps an Arrow IPC file (Feather v2) in place: zero copy, no load step. Files with
    /// several record batches or misaligned buffers are refused with a reason; use
    /// [`SharedFrame::from_batches`] for those.
    pub fn map_arrow_file(path: &Path) -> Result<Self, EngineError> {
        let mapped = MappedFile::open(path)?;
        let label = path.display().to_string();
        let file = read_ipc_file(mapped, &label)?;
        Self::from_ipc(
            file,
            Loc::File(path.to_path_buf()),
            None,
            path.to_path_buf(),
        )
    }

    /// Writes record batches into a new segment (one copy; several batches are concatenated)
    /// and maps it back zero-copy.
    pub fn from_batches(
        schema: SchemaRef,
        batches: &[RecordBatch],
        dir: &SegmentDir,
        label: &str,
    ) -> Result<Self, EngineError> {
        let one = if batches.len() == 1 {
            batches[0].clone()
        } else {
            arrow_select::concat::concat_batches(&schema, batches).map_err(|e| {
                EngineError::Input {
                    what: label.into(),
                    reason: e.to_string(),
                }
            })?
        };
        let name = SegmentName::owned(label)?;
        let opts = CreateOptions {
            dir: dir.clone(),
            ..Default::default()
        };
        let seg = write_batches(name, &opts, &schema, &[one])?;
        Self::from_segment(seg)
    }

    /// Builds a frame from an already mapped buffer and a batch whose arrays point into it.
    pub(crate) fn from_mapped(batch: RecordBatch, base: Buffer, loc: Loc, path: PathBuf) -> Self {
        SharedFrame {
            inner: Arc::new(Inner {
                batch,
                base,
                loc,
                name: None,
                path,
                exposed: None,
            }),
        }
    }

    /// The record batch (zero-copy arrays).
    pub fn batch(&self) -> &RecordBatch {
        &self.inner.batch
    }

    /// The schema.
    pub fn schema(&self) -> SchemaRef {
        self.inner.batch.schema()
    }

    /// Rows.
    pub fn num_rows(&self) -> usize {
        self.inner.batch.num_rows()
    }

    /// The column named `name`.
    pub fn column(&self, name: &str) -> Result<&ArrayRef, EngineError> {
        self.inner
            .batch
            .column_by_name(name)
            .ok_or_else(|| EngineError::NoColumn {
                column: name.to_string(),
                available: self.column_names().join(", "),
            })
    }

    /// Column names.
    pub fn column_names(&self) -> Vec<String> {
        self.schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    }

    /// The segment name, for frames in a segment. Asking for it keeps a job output from
    /// being recycled: whoever is given the name sees this job's bytes for as long as the
    /// segment lives.
    pub fn segment_name(&self) -> Option<&SegmentName> {
        self.expose();
        self.inner.name.as_ref()
    }

    /// The path of the mapped object (`/dev/shm/…` for segments): what pyarrow opens. Asking
    /// for it keeps a job output from being recycled, as [`SharedFrame::segment_name`] does.
    pub fn path(&self) -> &Path {
        self.expose();
        &self.inner.path
    }

    fn expose(&self) {
        if let Some(e) = &self.inner.exposed {
            e.store(true, Ordering::Release);
        }
    }

    /// Bytes of the whole mapping.
    pub fn mapped_len(&self) -> usize {
        self.inner.base.len()
    }

    /// Where `bytes` (a slice of one of this frame's buffers) lies, as a worker finds it.
    pub(crate) fn buf_ref(&self, bytes: &[u8], what: &str) -> Result<BufRef, EngineError> {
        let r = buffer_range_in(self.inner.base.as_slice(), bytes).ok_or_else(|| {
            EngineError::Input {
                what: what.to_string(),
                reason: "buffer does not live in the frame's mapping (not zero-copy)".into(),
            }
        })?;
        Ok(BufRef {
            loc: self.inner.loc.clone(),
            offset: r.start,
            len: r.len(),
        })
    }

    /// Copies this frame into a new persistent segment named `name` (owned by no process,
    /// removed with `shmframe rm`), so other processes and pyarrow can attach it by name.
    pub fn persist_as(&self, name: &SegmentName, dir: &SegmentDir) -> Result<PathBuf, EngineError> {
        let opts = CreateOptions {
            dir: dir.clone(),
            persistent: true,
            ..Default::default()
        };
        let seg = write_batches(
            name.clone(),
            &opts,
            &self.schema(),
            std::slice::from_ref(self.batch()),
        )?;
        Ok(seg.path())
    }
}
