//! The built-in row kernels ([`RowKernel`]): norms, statistics, dot and cosine with a query,
//! and L2 normalisation, over one matrix column (`f32`, `f64`, or `u8` widened to `f64`) or
//! across several primitive columns (`f64` out).

use std::sync::Arc;

use arrow_array::{ArrayRef, Float32Array, Float64Array, RecordBatch};
use arrow_buffer::NullBuffer;
use arrow_schema::{DataType, Field};
use serde::{Deserialize, Serialize};
use shmframe_ipc::matrix;

use super::input::{
    ColumnRef, MatrixInput, MatrixRef, matrix_column, primitive_columns, require_columns,
};
use super::{Chunk, JobSpec, Mapped, Operation, PlanCtx, Planned, Prepare, WorkerError, cast_mut};
use crate::coordinator::RunOptions;
use crate::error::EngineError;
use crate::frame::SharedFrame;
use crate::kernels::{
    Accumulate, ColumnSlice, Float, RowKernel, apply_columns, apply_rows, normalize_rows,
};
use crate::protocol::{BufRef, Dtype, with_dtype};
use crate::tuning::WIDEN_BLOCK_ELEMENTS;

/// What a row-kernel job reads.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum RowInput {
    /// One matrix column.
    Matrix(MatrixRef),
    /// Several primitive columns, a row across them.
    Columns(Vec<ColumnRef>),
}

/// The descriptor of a row-kernel job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RowOp {
    /// The kernel.
    pub(crate) kernel: RowKernel,
    /// Accumulator precision for `f32` input.
    pub(crate) acc: Accumulate,
    /// What the job reads.
    pub(crate) input: RowInput,
    /// The query vector of `dot` and `cosine`, in the input's element type (`f64` for columns).
    pub(crate) query: Option<BufRef>,
}

/// Plans `kernel` over `columns` of `frame`.
pub(crate) fn plan(
    cx: &PlanCtx<'_>,
    kernel: RowKernel,
    frame: &SharedFrame,
    columns: &[&str],
    query: Option<&[f64]>,
    opts: &RunOptions,
) -> Result<Planned<SharedFrame>, EngineError> {
    require_columns(columns)?;
    if kernel.needs_query() != query.is_some() {
        return Err(EngineError::Input {
            what: format!("kernel {}", kernel.name()),
            reason: if kernel.needs_query() {
                "needs a query vector".into()
            } else {
                "takes no query vector".into()
            },
        });
    }
    let acc = if opts.native_accumulation {
        Accumulate::Native
    } else {
        Accumulate::F64
    };
    let rows = frame.num_rows();
    let takes = "row kernels take f32, f64 or u8; user kernels f32 or f64";
    let allowed = |d| matches!(d, Dtype::F32 | Dtype::F64 | Dtype::U8);
    let shape = match matrix_column(frame, columns, allowed, takes)? {
        Some(m) => matrix_shape(&kernel, m, columns[0], query, opts)?,
        None => columns_shape(&kernel, frame, columns, query, opts)?,
    };
    let query_frame = query
        .map(|q| query_frame(q, shape.query_dtype, cx.dir))
        .transpose()?;
    let query_ref = query_frame
        .as_ref()
        .map(|f| {
            let arr = f.batch().column(0).to_data();
            f.buf_ref(arr.buffers()[0].as_slice(), "query")
        })
        .transpose()?;
    let (output, pending, reused) = cx.outputs.plan(
        shape.field,
        rows,
        shape.nulls.as_ref(),
        shape.out_dtype,
        shape.row_width,
        cx.dir,
    )?;
    Ok(Planned {
        job: JobSpec {
            op: RowOp {
                kernel,
                acc,
                input: shape.input,
                query: query_ref,
            }
            .into(),
            rows,
            chunk_rows: None,
            output: Some(output),
            input_bytes: shape.input_bytes,
            output_reused: reused,
        },
        finish: Box::new(move |_| {
            // The query segment lives until every worker is done with it.
            drop(query_frame);
            pending.finish()
        }),
    })
}

/// What a row job reads and writes, as the plan half works it out.
struct Shape {
    input: RowInput,
    nulls: Option<NullBuffer>,
    input_bytes: usize,
    /// The query's element type: the matrix's (`f64` for `u8` and for columns).
    query_dtype: Dtype,
    out_dtype: Dtype,
    row_width: usize,
    field: Field,
}

/// A kernel over one matrix column `name`.
fn matrix_shape(
    kernel: &RowKernel,
    m: MatrixInput,
    name: &str,
    query: Option<&[f64]>,
    opts: &RunOptions,
) -> Result<Shape, EngineError> {
    let cols = m.matrix.cols;
    if let Some(q) = query
        && q.len() != cols
    {
        return Err(EngineError::Input {
            what: "query".into(),
            reason: format!("has {} values, rows of column {name} have {cols}", q.len()),
        });
    }
    // u8 matrices (image tensors) are widened to f64 by the workers.
    let out_dtype = match m.matrix.dtype {
        Dtype::U8 => Dtype::F64,
        d => d,
    };
    let (row_width, field) = if kernel.output_is_matrix() {
        let n = opts.output_name.clone().unwrap_or_else(|| name.to_string());
        let f = matrix::matrix_field(&n, out_dtype.to_arrow(), cols, true);
        (cols, f)
    } else {
        let n = output_name(kernel.name(), opts);
        (1, Field::new(n, out_dtype.to_arrow(), true))
    };
    Ok(Shape {
        input_bytes: m.bytes(),
        query_dtype: m.matrix.dtype,
        input: RowInput::Matrix(m.matrix),
        nulls: m.nulls,
        out_dtype,
        row_width,
        field,
    })
}

/// A scalar kernel across several primitive columns: `f64` out.
fn columns_shape(
    kernel: &RowKernel,
    frame: &SharedFrame,
    columns: &[&str],
    query: Option<&[f64]>,
    opts: &RunOptions,
) -> Result<Shape, EngineError> {
    if kernel.output_is_matrix() {
        return Err(EngineError::Input {
            what: format!("kernel {}", kernel.name()),
            reason: "runs on one matrix column (FixedSizeList or fixed_shape_tensor)".into(),
        });
    }
    let c = primitive_columns(frame, columns)?;
    if let Some(q) = query
        && q.len() != columns.len()
    {
        return Err(EngineError::Input {
            what: "query".into(),
            reason: format!("has {} values for {} columns", q.len(), columns.len()),
        });
    }
    Ok(Shape {
        input: RowInput::Columns(c.columns),
        nulls: c.nulls,
        input_bytes: c.bytes,
        query_dtype: Dtype::F64,
        out_dtype: Dtype::F64,
        row_width: 1,
        field: Field::new(output_name(kernel.name(), opts), DataType::Float64, true),
    })
}

/// The output column's name: `opts.output_name`, else the kernel's name with `_` for `-`.
pub(super) fn output_name(kernel: &str, opts: &RunOptions) -> String {
    opts.output_name
        .clone()
        .unwrap_or_else(|| kernel.replace('-', "_"))
}

/// The query vector in its own small segment, in the input's element type.
fn query_frame(
    q: &[f64],
    dtype: Dtype,
    dir: &shmframe_ipc::SegmentDir,
) -> Result<SharedFrame, EngineError> {
    let arr: ArrayRef = match dtype {
        Dtype::F32 => Arc::new(Float32Array::from_iter_values(q.iter().map(|v| *v as f32))),
        _ => Arc::new(Float64Array::from_iter_values(q.iter().copied())),
    };
    let batch = RecordBatch::try_from_iter([("query", arr)]).map_err(|e| EngineError::Input {
        what: "query".into(),
        reason: e.to_string(),
    })?;
    SharedFrame::from_batches(batch.schema(), &[batch], dir, "query")
}

/// A row-kernel job mapped in a worker.
pub(crate) struct Prepared {
    input: Vec<Mapped>,
    query: Option<Mapped>,
}

impl Prepared {
    /// The query vector as elements of `T`, if the kernel takes one.
    fn query<T: bytemuck::Pod>(&self) -> Result<Option<&[T]>, WorkerError> {
        self.query
            .as_ref()
            .map(|q| q.typed::<T>("query"))
            .transpose()
    }
}

impl Operation for RowOp {
    type Prepared = Prepared;

    fn name(&self) -> String {
        self.kernel.name().to_string()
    }

    fn prepare(&self, cx: &mut Prepare<'_>) -> Result<Prepared, WorkerError> {
        let input = match &self.input {
            RowInput::Matrix(m) => vec![cx.maps.map(&m.values)?],
            RowInput::Columns(cols) => cols
                .iter()
                .map(|c| cx.maps.map(&c.values))
                .collect::<Result<_, _>>()?,
        };
        let query = self.query.as_ref().map(|q| cx.maps.map(q)).transpose()?;
        Ok(Prepared { input, query })
    }

    fn execute(&self, job: &Prepared, cx: &Chunk<'_>, out: &mut [u8]) -> Result<(), WorkerError> {
        match &self.input {
            RowInput::Matrix(m) => match m.dtype {
                Dtype::F64 => self.floats::<f64>(job, m.cols, cx, out),
                Dtype::F32 => self.floats::<f32>(job, m.cols, cx, out),
                Dtype::U8 => self.widened_u8(job, m.cols, cx, out),
                other => Err(WorkerError::Unsupported(format!(
                    "row kernels take f32, f64 or u8 matrices, not {other:?}"
                ))),
            },
            RowInput::Columns(cols) => self.across_columns(job, cols, cx, out),
        }
    }
}

impl RowOp {
    /// Values per output row for rows of `cols` values.
    fn width(&self, cols: usize) -> usize {
        if self.kernel.output_is_matrix() {
            cols
        } else {
            1
        }
    }

    /// The one path for `f32` and `f64` matrices.
    fn floats<T: Float + bytemuck::Pod>(
        &self,
        job: &Prepared,
        cols: usize,
        cx: &Chunk<'_>,
        out: &mut [u8],
    ) -> Result<(), WorkerError> {
        let x = &job.input[0].typed::<T>("input")?[cx.rows.start * cols..cx.rows.end * cols];
        let q = job.query::<T>()?;
        let o = cast_mut::<T>(out, "output")?;
        cx.par_rows(o, self.width(cols), |lo, hi, o| {
            row_kernel(&self.kernel, self.acc, &x[lo * cols..hi * cols], cols, q, o)
        })
    }

    /// `u8` matrices (image tensors): widened to `f64` a block of rows at a time.
    fn widened_u8(
        &self,
        job: &Prepared,
        cols: usize,
        cx: &Chunk<'_>,
        out: &mut [u8],
    ) -> Result<(), WorkerError> {
        let x = &job.input[0].bytes()[cx.rows.start * cols..cx.rows.end * cols];
        let q = job.query::<f64>()?;
        let o = cast_mut::<f64>(out, "output")?;
        let width = self.width(cols);
        let step = (WIDEN_BLOCK_ELEMENTS / cols.max(1)).max(1);
        cx.par_rows(o, width, |lo, hi, o| {
            let mut buf = Vec::with_capacity(step.min(hi - lo) * cols);
            for b in (lo..hi).step_by(step) {
                let e = (b + step).min(hi);
                buf.clear();
                buf.extend(x[b * cols..e * cols].iter().map(|&v| f64::from(v)));
                let ob = &mut o[(b - lo) * width..(e - lo) * width];
                row_kernel(&self.kernel, Accumulate::F64, &buf, cols, q, ob)?;
            }
            Ok(())
        })
    }

    /// A scalar kernel across primitive columns of any element type: `f64` out.
    fn across_columns(
        &self,
        job: &Prepared,
        cols: &[ColumnRef],
        cx: &Chunk<'_>,
        out: &mut [u8],
    ) -> Result<(), WorkerError> {
        let (r0, r1) = (cx.rows.start, cx.rows.end);
        let raw = cols
            .iter()
            .zip(&job.input)
            .map(|(c, m)| {
                let w = c.dtype.width();
                (c.dtype, &m.bytes()[r0 * w..r1 * w])
            })
            .collect::<Vec<_>>();
        let q = job.query::<f64>()?;
        let o = cast_mut::<f64>(out, "output")?;
        cx.par_rows(o, 1, |lo, hi, o| {
            let sub = raw
                .iter()
                .map(|(dt, b)| column_slice(*dt, &b[lo * dt.width()..hi * dt.width()]))
                .collect::<Result<Vec<ColumnSlice<'_>>, _>>()?;
            Ok(apply_columns(&self.kernel, &sub, q, o)?)
        })
    }
}

fn row_kernel<T: Float>(
    kernel: &RowKernel,
    acc: Accumulate,
    x: &[T],
    cols: usize,
    q: Option<&[T]>,
    o: &mut [T],
) -> Result<(), WorkerError> {
    if kernel.output_is_matrix() {
        Ok(normalize_rows(x, cols, o)?)
    } else {
        Ok(apply_rows(kernel, acc, x, cols, q, o)?)
    }
}

fn column_slice(dt: Dtype, b: &[u8]) -> Result<ColumnSlice<'_>, WorkerError> {
    with_dtype!(dt, T => Ok(ColumnSlice::from(super::cast::<T>(b, "input")?)))
}
