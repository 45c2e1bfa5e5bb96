//! Shared frames: an Arrow schema plus columns whose buffers live in a mapping that every
//! worker can map too (a segment, or a file used in place).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arrow_array::types::ArrowPrimitiveType;
use arrow_array::{Array, ArrayRef, FixedSizeListArray, PrimitiveArray, RecordBatch};
use arrow_buffer::ArrowNativeType;
use arrow_buffer::Buffer;
use arrow_schema::DataType;
use arrow_schema::SchemaRef;
use shmframe_ipc::arrow::{IpcFile, buffer_range_in, read_ipc_file, write_batches};
use shmframe_ipc::{CreateOptions, MappedFile, Segment, SegmentDir, SegmentName};

use crate::error::EngineError;
use crate::protocol::{BufRef, Loc};
use crate::recycle::{OutputKey, OutputPool, RecycledOwner};

/// A frame whose data lives in shared memory (or a mapped file): its arrays point into the
/// mapping, and job descriptors name the mapping plus byte offsets so workers find the same
/// bytes without any copy.
///
/// Cloning is cheap (reference counted). The segment behind a frame made by this process is
/// unlinked when the last clone, and the last array taken from it, is dropped; a job's output
/// may instead go back to its engine for the next job of the same shape (see
/// [`crate::EngineBuilder::recycle_outputs`]) unless its name or path was asked for.
#[derive(Clone)]
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
    pub(crate) fn from_ipc(
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
        let file = read_ipc_file(segment, &format!("segment {name}"))?;
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
        let file = read_ipc_file(owner, &format!("segment {name}"))?;
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

    /// The columns a row kernel reads when none are named: the matrix column `x`, else the
    /// first `FixedSizeList` column (a `fixed_shape_tensor` is one), else every integer and
    /// floating-point column in schema order (the kernel then runs across them per row).
    /// Empty when the frame has none of these.
    pub fn default_columns(&self) -> Vec<String> {
        let schema = self.schema();
        if schema.column_with_name(crate::MATRIX_COLUMN).is_some() {
            return vec![crate::MATRIX_COLUMN.to_string()];
        }
        if let Some(f) = schema
            .fields()
            .iter()
            .find(|f| matches!(f.data_type(), DataType::FixedSizeList(..)))
        {
            return vec![f.name().clone()];
        }
        schema
            .fields()
            .iter()
            .filter(|f| f.data_type().is_integer() || f.data_type().is_floating())
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

mod sealed {
    pub trait Sealed {}
}

/// An element type a frame's numbers can have: `f32`, `f64`, and the signed and unsigned
/// integers of 8 to 64 bits. Sealed.
pub trait Element: bytemuck::Pod + ArrowNativeType + Send + Sync + sealed::Sealed {
    /// The Arrow type of a column of these.
    const DATA_TYPE: DataType;
    /// The arrow-rs primitive type.
    type Arrow: ArrowPrimitiveType<Native = Self>;
}

macro_rules! elements {
    ($($t:ty => $dt:ident $arrow:ident),* $(,)?) => {$(
        impl sealed::Sealed for $t {}
        impl Element for $t {
            const DATA_TYPE: DataType = DataType::$dt;
            type Arrow = arrow_array::types::$arrow;
        }
    )*};
}

elements! {
    f32 => Float32 Float32Type, f64 => Float64 Float64Type,
    i8 => Int8 Int8Type, i16 => Int16 Int16Type, i32 => Int32 Int32Type, i64 => Int64 Int64Type,
    u8 => UInt8 UInt8Type, u16 => UInt16 UInt16Type, u32 => UInt32 UInt32Type,
    u64 => UInt64 UInt64Type,
}

impl SharedFrame {
    /// The values of column `name` as a typed slice, zero-copy: a primitive column's values,
    /// or a matrix column's values row after row (`rows * cols`). The values of null rows are
    /// unspecified (read the column's validity for which rows are null).
    ///
    /// ```no_run
    /// # let engine = shmframe::Engine::builder().build()?;
    /// # let frame = engine.frame_from_npy("x.npy")?;
    /// let norms = engine.run(shmframe::RowKernel::L2, &frame, "x")?;
    /// let values: &[f64] = norms.values("l2_norm")?;
    /// # Ok::<(), shmframe::EngineError>(())
    /// ```
    pub fn values<T: Element>(&self, name: &str) -> Result<&[T], EngineError> {
        Ok(self.typed_column::<T>(name)?.0)
    }

    /// Column `name` as an `ndarray` view of `rows x cols`, zero-copy: a matrix column
    /// (`FixedSizeList`, `fixed_shape_tensor` flattened per row), or a primitive column as one
    /// column. The values of null rows are unspecified.
    pub fn matrix<T: Element>(
        &self,
        name: &str,
    ) -> Result<ndarray::ArrayView2<'_, T>, EngineError> {
        let (values, cols) = self.typed_column::<T>(name)?;
        let rows = self.num_rows();
        ndarray::ArrayView2::from_shape((rows, cols), values).map_err(|e| EngineError::Input {
            what: format!("column {name}"),
            reason: e.to_string(),
        })
    }

    /// Values and values per row of a primitive or matrix column of `T`.
    fn typed_column<T: Element>(&self, name: &str) -> Result<(&[T], usize), EngineError> {
        let col = self.column(name)?;
        let wrong = || EngineError::ColumnType {
            column: name.to_string(),
            expected: T::DATA_TYPE.to_string(),
            found: col.data_type().to_string(),
        };
        let rows = self.num_rows();
        match col.data_type() {
            DataType::FixedSizeList(f, n) if *f.data_type() == T::DATA_TYPE => {
                let list = col
                    .as_any()
                    .downcast_ref::<FixedSizeListArray>()
                    .ok_or_else(wrong)?;
                let cols = *n as usize;
                let values = list.values();
                let values = values
                    .as_any()
                    .downcast_ref::<PrimitiveArray<T::Arrow>>()
                    .ok_or_else(wrong)?;
                let start = list.offset() * cols;
                let all: &[T] = values.values();
                let v = all
                    .get(start..start + rows * cols)
                    .ok_or_else(|| EngineError::Input {
                        what: format!("column {name}"),
                        reason: "values shorter than its rows".into(),
                    })?;
                Ok((v, cols))
            }
            dt if *dt == T::DATA_TYPE => {
                let p = col
                    .as_any()
                    .downcast_ref::<PrimitiveArray<T::Arrow>>()
                    .ok_or_else(wrong)?;
                Ok((p.values(), 1))
            }
            _ => Err(wrong()),
        }
    }
}

impl std::fmt::Debug for SharedFrame {
    /// A summary (segment or file, rows, schema, mapped bytes), never the values.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let schema: Vec<String> = self
            .schema()
            .fields()
            .iter()
            .map(|c| format!("{}: {}", c.name(), c.data_type()))
            .collect();
        let mut d = f.debug_struct("SharedFrame");
        match &self.inner.loc {
            Loc::Segment(name) => d.field("segment", name),
            Loc::File(p) => d.field("file", p),
        };
        d.field("rows", &self.num_rows())
            .field("schema", &schema)
            .field("mapped_bytes", &self.mapped_len())
            .finish()
    }
}
