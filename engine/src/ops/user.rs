//! User kernels ([`crate::UserKernel`]): registered by name, run on one `f32` or `f64`
//! matrix column, `output_cols` `f64` values per row.

use arrow_schema::{DataType, Field};
use serde::{Deserialize, Serialize};
use shmframe_ipc::matrix;

use super::input::{MatrixRef, matrix_column};
use super::row::output_name;
use super::{Chunk, JobSpec, Mapped, Operation, PlanCtx, Planned, Prepare, WorkerError, cast_mut};
use crate::coordinator::RunOptions;
use crate::error::EngineError;
use crate::frame::SharedFrame;
use crate::kernels::Float;
use crate::protocol::Dtype;
use crate::user::{RowBlock, UserKernel};

/// The descriptor of a user-kernel job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct UserOp {
    /// The registered name.
    pub(crate) name: String,
    /// The matrix it reads.
    pub(crate) input: MatrixRef,
}

/// Plans user kernel `name` over the matrix column `columns[0]` of `frame`.
pub(crate) fn plan(
    cx: &PlanCtx<'_>,
    name: &str,
    frame: &SharedFrame,
    columns: &[&str],
    opts: &RunOptions,
) -> Result<Planned<SharedFrame>, EngineError> {
    let kernel = cx.registry.get(name).ok_or_else(|| EngineError::Input {
        what: format!("kernel {name}"),
        reason: format!(
            "not registered (registered: {})",
            cx.registry.names().collect::<Vec<_>>().join(", ")
        ),
    })?;
    let m = matrix_column(
        frame,
        columns,
        |d| matches!(d, Dtype::F32 | Dtype::F64),
        "row kernels take f32, f64 or u8; user kernels f32 or f64",
    )?
    .ok_or_else(|| EngineError::Input {
        what: format!("kernel {name}"),
        reason: "runs on one matrix column (FixedSizeList or fixed_shape_tensor)".into(),
    })?;
    let width = kernel.output_cols(m.matrix.cols);
    let out_name = output_name(name, opts);
    let field = if width == 1 {
        Field::new(out_name, DataType::Float64, true)
    } else {
        matrix::matrix_field(&out_name, DataType::Float64, width, true)
    };
    let rows = frame.num_rows();
    let (output, pending, reused) =
        cx.outputs
            .plan(field, rows, m.nulls.as_ref(), Dtype::F64, width, cx.dir)?;
    Ok(Planned {
        job: JobSpec {
            input_bytes: m.bytes(),
            op: UserOp {
                name: name.to_string(),
                input: m.matrix,
            }
            .into(),
            rows,
            chunk_rows: None,
            output: Some(output),
            output_reused: reused,
        },
        finish: Box::new(move |_| pending.finish()),
    })
}

/// A user-kernel job mapped in a worker.
pub(crate) struct Prepared {
    kernel: std::sync::Arc<dyn UserKernel>,
    input: Mapped,
}

impl Operation for UserOp {
    type Prepared = Prepared;

    fn name(&self) -> String {
        self.name.clone()
    }

    fn prepare(&self, cx: &mut Prepare<'_>) -> Result<Prepared, WorkerError> {
        let kernel = cx
            .registry
            .get(&self.name)
            .ok_or_else(|| WorkerError::NotRegistered(self.name.clone()))?
            .clone();
        Ok(Prepared {
            kernel,
            input: cx.maps.map(&self.input.values)?,
        })
    }

    fn execute(&self, job: &Prepared, cx: &Chunk<'_>, out: &mut [u8]) -> Result<(), WorkerError> {
        match self.input.dtype {
            Dtype::F64 => self.rows::<f64>(job, cx, out),
            Dtype::F32 => self.rows::<f32>(job, cx, out),
            other => Err(WorkerError::Unsupported(format!(
                "user kernels take f32 or f64 matrices, not {other:?}"
            ))),
        }
    }
}

impl UserOp {
    /// The one path for `f32` and `f64` matrices.
    fn rows<T: Float + bytemuck::Pod>(
        &self,
        job: &Prepared,
        cx: &Chunk<'_>,
        out: &mut [u8],
    ) -> Result<(), WorkerError>
    where
        for<'a> RowBlock<'a>: From<(&'a [T], usize)>,
    {
        let cols = self.input.cols;
        let x = &job.input.typed::<T>("input")?[cx.rows.start * cols..cx.rows.end * cols];
        let width = job.kernel.output_cols(cols);
        let o = cast_mut::<f64>(out, "output")?;
        cx.par_rows(o, width, |lo, hi, o| {
            job.kernel
                .run(RowBlock::from((&x[lo * cols..hi * cols], cols)), o)
                .map_err(WorkerError::User)
        })
    }
}
