//! The coordinator's reading of a row job's input: one matrix column (`FixedSizeList` or
//! `arrow.fixed_shape_tensor`) or several primitive columns, as buffer references that
//! workers map. Shared by the operations that compute row-wise.

use arrow_array::{Array, FixedSizeListArray};
use arrow_buffer::NullBuffer;
use arrow_schema::DataType;
use serde::{Deserialize, Serialize};

use crate::error::EngineError;
use crate::frame::SharedFrame;
use crate::protocol::{BufRef, Dtype};

/// A row-major matrix as workers find it: `rows * cols` elements.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct MatrixRef {
    /// The values.
    pub(crate) values: BufRef,
    /// Element type.
    pub(crate) dtype: Dtype,
    /// Values per row.
    pub(crate) cols: usize,
}

/// One primitive column as workers find it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ColumnRef {
    /// The values.
    pub(crate) values: BufRef,
    /// Element type.
    pub(crate) dtype: Dtype,
}

/// Refuses an empty column list.
pub(crate) fn require_columns(columns: &[&str]) -> Result<(), EngineError> {
    if columns.is_empty() {
        return Err(EngineError::Input {
            what: "columns".into(),
            reason: "no column given".into(),
        });
    }
    Ok(())
}

/// A matrix column read from a frame.
pub(crate) struct MatrixInput {
    /// What workers map.
    pub(crate) matrix: MatrixRef,
    /// Null rows.
    pub(crate) nulls: Option<NullBuffer>,
}

impl MatrixInput {
    /// Bytes the job reads.
    pub(crate) fn bytes(&self) -> usize {
        self.matrix.values.len
    }
}

/// The one column of a job's input, when it is a matrix: `Ok(None)` when it is not one
/// (several columns, or a primitive column). `allowed` says which element types the
/// operation takes, and `takes` how to say so in the error.
pub(crate) fn matrix_column(
    frame: &SharedFrame,
    columns: &[&str],
    allowed: impl Fn(Dtype) -> bool,
    takes: &str,
) -> Result<Option<MatrixInput>, EngineError> {
    require_columns(columns)?;
    let name = columns[0];
    let first = frame.column(name)?;
    if columns.len() != 1 || !matches!(first.data_type(), DataType::FixedSizeList(..)) {
        return Ok(None);
    }
    let list = first
        .as_any()
        .downcast_ref::<FixedSizeListArray>()
        .expect("a FixedSizeList column is a FixedSizeListArray");
    let cols = list.value_length() as usize;
    let values = list.values();
    let dtype = Dtype::from_arrow(values.data_type())
        .filter(|d| allowed(*d))
        .ok_or_else(|| EngineError::Input {
            what: format!("column {name}"),
            reason: format!("matrix of {} ({takes})", values.data_type()),
        })?;
    if values.null_count() > 0 {
        return Err(EngineError::Input {
            what: format!("column {name}"),
            reason: "null values inside rows are not supported (null rows are)".into(),
        });
    }
    let rows = frame.num_rows();
    let data = values.to_data();
    let w = dtype.width();
    let start = (data.offset() + list.offset() * cols) * w;
    let bytes = &data.buffers()[0].as_slice()[start..start + rows * cols * w];
    Ok(Some(MatrixInput {
        matrix: MatrixRef {
            values: frame.buf_ref(bytes, &format!("column {name}"))?,
            dtype,
            cols,
        },
        nulls: list.nulls().cloned(),
    }))
}

/// Several primitive columns, a row across them.
pub(crate) struct ColumnsInput {
    /// What workers map, in the order given.
    pub(crate) columns: Vec<ColumnRef>,
    /// Rows null in any column.
    pub(crate) nulls: Option<NullBuffer>,
    /// Bytes the job reads.
    pub(crate) bytes: usize,
}

/// The primitive columns `columns` of `frame`.
pub(crate) fn primitive_columns(
    frame: &SharedFrame,
    columns: &[&str],
) -> Result<ColumnsInput, EngineError> {
    let rows = frame.num_rows();
    let mut refs = Vec::with_capacity(columns.len());
    let mut nulls: Option<NullBuffer> = None;
    let mut bytes_read = 0;
    for &name in columns {
        let arr = frame.column(name)?;
        let dtype = Dtype::from_arrow(arr.data_type()).ok_or_else(|| EngineError::Input {
            what: format!("column {name}"),
            reason: format!(
                "type {} is not a primitive number or a matrix",
                arr.data_type()
            ),
        })?;
        let data = arr.to_data();
        let w = dtype.width();
        let bytes = &data.buffers()[0].as_slice()[data.offset() * w..(data.offset() + rows) * w];
        refs.push(ColumnRef {
            values: frame.buf_ref(bytes, &format!("column {name}"))?,
            dtype,
        });
        nulls = NullBuffer::union(nulls.as_ref(), arr.nulls());
        bytes_read += rows * w;
    }
    Ok(ColumnsInput {
        columns: refs,
        nulls,
        bytes: bytes_read,
    })
}
