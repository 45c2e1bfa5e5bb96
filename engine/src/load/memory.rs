//! In-memory data into frames: record batches, `ndarray` views and slices, each copied once
//! into a segment.

use std::sync::Arc;

use arrow_array::{ArrayRef, FixedSizeListArray, RecordBatch, make_array};
use arrow_buffer::Buffer;
use arrow_data::ArrayDataBuilder;
use arrow_schema::{DataType, Field, Schema};
use shmframe_ipc::arrow::{ColumnPlan, plan_layout};
use shmframe_ipc::{
    CreateOptions, SegmentDir, SegmentMut, SegmentName, SegmentRw, matrix, parallel_share,
};

use super::NPY_COLUMN;
use crate::coordinator::Engine;
use crate::error::EngineError;
use crate::frame::{Element, SharedFrame};

/// Builds the one-column batch of a matrix (`FixedSizeList`) or vector from a values buffer.
pub(crate) fn matrix_batch(
    values: Buffer,
    dt: DataType,
    rows: usize,
    cols: Option<usize>,
) -> Result<RecordBatch, EngineError> {
    let n = rows * cols.unwrap_or(1);
    let data = ArrayDataBuilder::new(dt.clone())
        .len(n)
        .add_buffer(values)
        .build()
        .map_err(|e| EngineError::Input {
            what: "matrix".into(),
            reason: e.to_string(),
        })?;
    let values: ArrayRef = make_array(data);
    let (field, col): (Field, ArrayRef) = match cols {
        Some(c) => {
            let f = matrix::matrix_field(NPY_COLUMN, dt.clone(), c, false);
            let item = Arc::new(Field::new("item", dt, false));
            (
                f,
                Arc::new(FixedSizeListArray::new(item, c as i32, values, None)),
            )
        }
        None => (Field::new(NPY_COLUMN, dt, false), values),
    };
    RecordBatch::try_new(Arc::new(Schema::new(vec![field])), vec![col]).map_err(|e| {
        EngineError::Input {
            what: "matrix".into(),
            reason: e.to_string(),
        }
    })
}

/// A frame made by [`Engine::empty_matrix`]: a published segment holding the matrix column
/// `x`, plus a writable mapping of its values so the caller can produce data straight into
/// shared memory, with no copy at all.
///
/// The values start as zeros (fresh tmpfs pages). Everything else in the segment (header,
/// Arrow schema, footer) stays read-only for everyone; only the values can change. Values
/// may be written at any time, also after jobs have read the frame: a job reads whatever
/// the values are when its workers get to them, so write before you run, as with numpy
/// arrays shared between threads. Any bit pattern is a valid `f32`/`f64`, so a write that
/// races a job gives that job mixed values, never undefined structure.
pub struct WritableMatrix<T: Element> {
    frame: SharedFrame,
    values: SegmentRw,
    at: std::ops::Range<usize>,
    rows: usize,
    cols: usize,
    _t: std::marker::PhantomData<T>,
}

impl<T: Element> WritableMatrix<T> {
    /// The frame: pass it to jobs; clones keep the segment alive.
    pub fn frame(&self) -> &SharedFrame {
        &self.frame
    }

    /// `(rows, cols)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// The values, row-major, writable.
    pub fn values_mut(&mut self) -> &mut [T] {
        let (body, base) = self.values.body_mut();
        bytemuck::cast_slice_mut(&mut body[self.at.start - base..self.at.end - base])
    }
}

impl<T: Element> std::fmt::Debug for WritableMatrix<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WritableMatrix")
            .field("frame", &self.frame)
            .field("shape", &(self.rows, self.cols))
            .finish()
    }
}

/// The bytes of a `rows x cols` matrix of `T`, or why it cannot be one column: no column, a
/// width beyond Arrow's `i32` list size, or a size that does not fit in memory at all.
fn matrix_bytes<T: Element>(rows: usize, cols: usize, what: &str) -> Result<usize, EngineError> {
    let refuse = |reason: String| EngineError::Input {
        what: what.into(),
        reason: format!("{rows} x {cols}: {reason}"),
    };
    if cols == 0 {
        return Err(refuse("a matrix needs at least one column".into()));
    }
    if i32::try_from(cols).is_err() {
        return Err(refuse(format!("at most {} columns", i32::MAX)));
    }
    rows.checked_mul(cols)
        .and_then(|n| n.checked_mul(std::mem::size_of::<T>()))
        .filter(|&b| b <= isize::MAX as usize)
        .ok_or_else(|| refuse("too large to address".into()))
}

/// Copies raw row-major values into a new segment laid out as a one-column Arrow file.
pub(crate) fn matrix_into_segment(
    raw: &[u8],
    dt: DataType,
    rows: usize,
    cols: Option<usize>,
    dir: &SegmentDir,
    label: &str,
) -> Result<SharedFrame, EngineError> {
    if let Some(c) = cols
        && i32::try_from(c).is_err()
    {
        return Err(EngineError::Input {
            what: label.into(),
            reason: format!("{rows} x {c}: at most {} columns", i32::MAX),
        });
    }
    let field = match cols {
        Some(c) => matrix::matrix_field(NPY_COLUMN, dt, c, false),
        None => Field::new(NPY_COLUMN, dt, false),
    };
    let schema = Schema::new(vec![field]);
    let opts = CreateOptions {
        dir: dir.clone(),
        ..Default::default()
    };
    let mut planned = plan_layout(
        SegmentName::owned(label)?,
        &opts,
        &schema,
        rows,
        &[ColumnPlan::default()],
    )?;
    let v = planned.columns[0].values.clone();
    if v.len() != raw.len() {
        return Err(EngineError::Input {
            what: label.into(),
            reason: format!(
                "{} bytes do not fill the {} value bytes of {rows} rows",
                raw.len(),
                v.len()
            ),
        });
    }
    fill(&mut planned.segment, v, raw);
    SharedFrame::from_segment(planned.segment.publish()?)
}

/// Copies `raw` into the absolute byte range `at` of `seg`. A large copy is split over
/// [`parallel_share`] scoped threads, which first map their pages in one call each
/// (`MADV_POPULATE_WRITE`) and then copy: on tmpfs with 4 KiB pages the page faults, not the
/// bytes, are most of the cost, and both halves scale with cores (docs/BENCHMARKS.md,
/// "Python package").
fn fill(seg: &mut SegmentMut, at: std::ops::Range<usize>, raw: &[u8]) {
    let threads = parallel_share(raw.len());
    let step = raw.len().div_ceil(threads).next_multiple_of(4096).max(4096);
    if threads > 1 {
        let shared = &*seg;
        std::thread::scope(|s| {
            for lo in (at.start..at.end).step_by(step) {
                s.spawn(move || shared.populate_write(lo..(lo + step).min(at.end)));
            }
        });
    }
    let (body, base) = seg.body_mut();
    let dst = &mut body[at.start - base..at.end - base];
    if threads > 1 {
        std::thread::scope(|s| {
            for (d, r) in dst.chunks_mut(step).zip(raw.chunks(step)) {
                s.spawn(move || d.copy_from_slice(r));
            }
        });
    } else {
        dst.copy_from_slice(raw);
    }
}

impl Engine {
    /// A new frame of `rows x cols` zeros (the matrix column `x`) whose values the caller can
    /// write in place: data produced straight into shared memory, never copied. See
    /// [`WritableMatrix`] for when writes are seen.
    ///
    /// ```no_run
    /// let engine = shmframe::Engine::builder().workers(2).build()?;
    /// let mut m = engine.empty_matrix::<f64>(1000, 3)?;
    /// for (i, row) in m.values_mut().chunks_exact_mut(3).enumerate() {
    ///     row.copy_from_slice(&[i as f64, 0.0, 1.0]);
    /// }
    /// let norms = engine.run(shmframe::RowKernel::L2, m.frame(), "x")?;
    /// # Ok::<(), shmframe::EngineError>(())
    /// ```
    pub fn empty_matrix<T: Element>(
        &self,
        rows: usize,
        cols: usize,
    ) -> Result<WritableMatrix<T>, EngineError> {
        let bytes = matrix_bytes::<T>(rows, cols, "empty matrix")?;
        let schema = Schema::new(vec![matrix::matrix_field(
            NPY_COLUMN,
            T::DATA_TYPE,
            cols,
            false,
        )]);
        let dir = self.segment_dir();
        let opts = CreateOptions {
            dir: dir.clone(),
            ..Default::default()
        };
        let planned = plan_layout(
            SegmentName::owned("empty")?,
            &opts,
            &schema,
            rows,
            &[ColumnPlan::default()],
        )?;
        let at = planned.columns[0].values.clone();
        if at.len() != bytes {
            return Err(EngineError::Input {
                what: "empty matrix".into(),
                reason: format!(
                    "{rows} x {cols}: the layout holds {} value bytes, not {bytes}",
                    at.len()
                ),
            });
        }
        let segment = planned.segment.publish()?;
        // A second mapping, read-write, of the values' object: the published handle stays
        // read-only (and unlinks the segment when the last clone of the frame goes).
        let values = SegmentRw::attach(segment.name(), &dir)?;
        Ok(WritableMatrix {
            frame: SharedFrame::from_segment(segment)?,
            values,
            at,
            rows,
            cols,
            _t: std::marker::PhantomData,
        })
    }

    /// Record batches, copied once into a segment.
    pub fn frame_from_batches(&self, batches: &[RecordBatch]) -> Result<SharedFrame, EngineError> {
        let schema = batches
            .first()
            .map(|b| b.schema())
            .ok_or_else(|| EngineError::Input {
                what: "batches".into(),
                reason: "no batch given".into(),
            })?;
        SharedFrame::from_batches(schema, batches, &self.segment_dir(), "batch")
    }

    /// A 2-D `ndarray` view of any [`Element`] type, copied once into a segment as the matrix
    /// column `x` (`FixedSizeList` of `cols` values). A view that is not in standard (C) order
    /// is copied into that order first.
    ///
    /// ```no_run
    /// let engine = shmframe::Engine::builder().workers(2).build()?;
    /// let m = ndarray::Array2::<f32>::ones((1000, 16));
    /// let frame = engine.frame_from_ndarray(m.view())?;
    /// # Ok::<(), shmframe::EngineError>(())
    /// ```
    pub fn frame_from_ndarray<T: Element>(
        &self,
        m: ndarray::ArrayView2<'_, T>,
    ) -> Result<SharedFrame, EngineError> {
        let (rows, cols) = m.dim();
        let owned;
        let slice = match m.as_slice() {
            Some(s) => s,
            None => {
                owned = m.iter().copied().collect::<Vec<T>>();
                &owned
            }
        };
        matrix_into_segment(
            bytemuck::cast_slice(slice),
            T::DATA_TYPE,
            rows,
            Some(cols),
            &self.segment_dir(),
            "ndarray",
        )
    }

    /// Row-major values of any [`Element`] type, `cols` per row, copied once into a segment
    /// as the matrix column `x`.
    pub fn frame_from_slice<T: Element>(
        &self,
        values: &[T],
        cols: usize,
    ) -> Result<SharedFrame, EngineError> {
        if cols == 0 || !values.len().is_multiple_of(cols) {
            return Err(EngineError::Input {
                what: "values".into(),
                reason: format!("{} values do not make rows of {cols}", values.len()),
            });
        }
        matrix_into_segment(
            bytemuck::cast_slice(values),
            T::DATA_TYPE,
            values.len() / cols,
            Some(cols),
            &self.segment_dir(),
            "slice",
        )
    }
}
