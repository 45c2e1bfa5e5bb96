//! In-memory data into frames: record batches, `ndarray` views and slices, each copied once
//! into a segment.

use std::sync::Arc;

use arrow_array::{ArrayRef, FixedSizeListArray, RecordBatch, make_array};
use arrow_buffer::Buffer;
use arrow_data::ArrayDataBuilder;
use arrow_schema::{DataType, Field, Schema};
use shmframe_ipc::arrow::{ColumnPlan, plan_layout};
use shmframe_ipc::{CreateOptions, SegmentDir, SegmentName, matrix};

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

/// Copies raw row-major values into a new segment laid out as a one-column Arrow file.
pub(crate) fn matrix_into_segment(
    raw: &[u8],
    dt: DataType,
    rows: usize,
    cols: Option<usize>,
    dir: &SegmentDir,
    label: &str,
) -> Result<SharedFrame, EngineError> {
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
    let (body, base) = planned.segment.body_mut();
    body[v.start - base..v.end - base].copy_from_slice(raw);
    SharedFrame::from_segment(planned.segment.publish()?)
}

impl Engine {
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
