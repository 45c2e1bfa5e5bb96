//! Loading data into shared frames: `.npy` (mapped in place when aligned), Arrow IPC /
//! Feather (mapped in place), Parquet and CSV (decoded once into a segment), and in-memory
//! matrices.

use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, FixedSizeListArray, RecordBatch, make_array};
use arrow_buffer::Buffer;
use arrow_data::ArrayDataBuilder;
use arrow_schema::{DataType, Field, Schema};
use shmframe_ipc::arrow::{ColumnPlan, plan_layout};
use shmframe_ipc::{CreateOptions, MappedFile, SegmentDir, SegmentName, matrix};

use crate::coordinator::Engine;
use crate::error::EngineError;
use crate::frame::{Element, SharedFrame};
use crate::npy::{NpyDtype, parse_header};
use crate::protocol::Loc;

fn npy_arrow_type(d: NpyDtype) -> DataType {
    match d {
        NpyDtype::F32 => DataType::Float32,
        NpyDtype::F64 => DataType::Float64,
        NpyDtype::I32 => DataType::Int32,
        NpyDtype::I64 => DataType::Int64,
        NpyDtype::U8 => DataType::UInt8,
    }
}

/// The column every `.npy` frame has: `x`.
pub(crate) const NPY_COLUMN: &str = "x";

fn input_err(path: &Path, reason: impl ToString) -> EngineError {
    EngineError::Input {
        what: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Builds the one-column batch of a matrix (`FixedSizeList`) or vector from a values buffer.
fn matrix_batch(
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
    /// A `.npy` file (C order, little-endian f32/f64/i32/i64/u8, 1-D or 2-D) as a frame with
    /// one column `x` (a `FixedSizeList` matrix for 2-D). Mapped in place when its data is
    /// aligned (no load step); otherwise copied once into a segment.
    pub fn frame_from_npy(&self, path: impl AsRef<Path>) -> Result<SharedFrame, EngineError> {
        let path = path.as_ref();
        let mapped = MappedFile::open(path)?;
        let header = parse_header(mapped.bytes()).map_err(|e| input_err(path, e))?;
        header
            .check_file_len(mapped.bytes().len() as u64)
            .map_err(|e| input_err(path, e))?;
        let dt = npy_arrow_type(header.dtype);
        let (rows, cols) = match header.shape.as_slice() {
            [n] => (*n, None),
            [r, c] => (*r, Some(*c)),
            s => return Err(input_err(path, format!("shape {s:?} is not 1-D or 2-D"))),
        };
        let off = header.data_offset;
        let len = header.data_len;
        if off.is_multiple_of(64) {
            let base = Buffer::from(bytes::Bytes::from_owner(mapped));
            let values = base.slice_with_length(off, len);
            let batch = matrix_batch(values, dt, rows, cols)?;
            return Ok(SharedFrame::from_mapped(
                batch,
                base,
                Loc::File(path.to_path_buf()),
                path.to_path_buf(),
            ));
        }
        tracing::info!(file = %path.display(), offset = off, "npy data not 64-byte aligned: copying once into a segment");
        matrix_into_segment(
            &mapped.bytes()[off..off + len],
            dt,
            rows,
            cols,
            &self.segment_dir(),
            "npy",
        )
    }

    /// An Arrow IPC file (Feather v2): mapped in place when it holds one record batch with
    /// aligned buffers; otherwise decoded and copied once into a segment.
    pub fn frame_from_arrow_file(
        &self,
        path: impl AsRef<Path>,
    ) -> Result<SharedFrame, EngineError> {
        let path = path.as_ref();
        match SharedFrame::map_arrow_file(path) {
            Ok(f) => Ok(f),
            Err(EngineError::Segment(e)) => Err(EngineError::Segment(e)),
            Err(first) => {
                tracing::info!(file = %path.display(), reason = %first, "cannot map in place; decoding into a segment");
                let file = std::fs::File::open(path).map_err(|e| EngineError::Io {
                    path: path.display().to_string(),
                    source: e,
                })?;
                let reader = arrow_ipc::reader::FileReader::try_new(file, None)
                    .map_err(|e| input_err(path, e))?;
                let schema = reader.schema();
                let batches = reader
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| input_err(path, e))?;
                SharedFrame::from_batches(schema, &batches, &self.segment_dir(), "arrow")
            }
        }
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

    /// A Parquet file, decoded once into a segment.
    pub fn frame_from_parquet(&self, path: impl AsRef<Path>) -> Result<SharedFrame, EngineError> {
        let path = path.as_ref();
        let file = std::fs::File::open(path).map_err(|e| EngineError::Io {
            path: path.display().to_string(),
            source: e,
        })?;
        let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| input_err(path, e))?;
        let schema = builder.schema().clone();
        let reader = builder
            .with_batch_size(64 * 1024)
            .build()
            .map_err(|e| input_err(path, e))?;
        let batches = reader
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| input_err(path, e))?;
        SharedFrame::from_batches(schema, &batches, &self.segment_dir(), "parquet")
    }

    /// A CSV file with a header row (types inferred from the first 1000 rows), decoded once
    /// into a segment.
    pub fn frame_from_csv(&self, path: impl AsRef<Path>) -> Result<SharedFrame, EngineError> {
        let path = path.as_ref();
        let io = |e| EngineError::Io {
            path: path.display().to_string(),
            source: e,
        };
        let mut file = std::fs::File::open(path).map_err(io)?;
        let format = arrow_csv::reader::Format::default().with_header(true);
        let (schema, _) = format
            .infer_schema(&mut file, Some(1000))
            .map_err(|e| input_err(path, e))?;
        use std::io::Seek;
        file.rewind().map_err(io)?;
        let schema = Arc::new(schema);
        let reader = arrow_csv::ReaderBuilder::new(schema.clone())
            .with_header(true)
            .build(file)
            .map_err(|e| input_err(path, e))?;
        let batches = reader
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| input_err(path, e))?;
        SharedFrame::from_batches(schema, &batches, &self.segment_dir(), "csv")
    }

    /// Any supported file, by extension: `.npy`, `.arrow`/`.feather`/`.ipc`, `.parquet`,
    /// `.csv`; or `shm:NAME` for a named segment.
    pub fn frame_from_source(&self, src: &str) -> Result<SharedFrame, EngineError> {
        if let Some(name) = src.strip_prefix("shm:") {
            return SharedFrame::attach(&SegmentName::from_user_input(name)?, &self.segment_dir());
        }
        let path = Path::new(src);
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        match ext.as_str() {
            "npy" => self.frame_from_npy(path),
            "arrow" | "feather" | "ipc" | "arrows" => self.frame_from_arrow_file(path),
            "parquet" | "pq" => self.frame_from_parquet(path),
            "csv" => self.frame_from_csv(path),
            _ => Err(input_err(
                path,
                "unknown file type (expected .npy, .arrow, .feather, .parquet, .csv or shm:NAME)",
            )),
        }
    }
}
