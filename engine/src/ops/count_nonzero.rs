//! `count_nonzero`: the number of non-zero values in each row of a matrix column, of any
//! primitive element type, as `UInt64` (NaN counts as non-zero, as in numpy). Null rows stay
//! null.
//!
//! The smallest complete operation, and the one to copy: a descriptor, a plan half and an
//! execute half in one file, registered by one line in `ops/mod.rs`.

use arrow_schema::{DataType, Field};
use serde::{Deserialize, Serialize};

use super::input::{MatrixRef, matrix_column};
use super::{Chunk, JobSpec, Mapped, Operation, PlanCtx, Planned, Prepare, WorkerError, cast_mut};
use crate::coordinator::RunOptions;
use crate::error::EngineError;
use crate::frame::SharedFrame;
use crate::protocol::{Dtype, with_dtype};

/// The descriptor of a `count_nonzero` job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CountNonzero {
    /// The matrix it reads.
    pub(crate) input: MatrixRef,
}

/// Plans `count_nonzero` over the matrix column `column` of `frame`.
pub(crate) fn plan(
    cx: &PlanCtx<'_>,
    frame: &SharedFrame,
    column: &str,
    opts: &RunOptions,
) -> Result<Planned<SharedFrame>, EngineError> {
    let m =
        matrix_column(frame, &[column], |_| true, "any primitive number")?.ok_or_else(|| {
            EngineError::Input {
                what: format!("column {column}"),
                reason:
                    "count_nonzero runs on a matrix column (FixedSizeList or fixed_shape_tensor)"
                        .into(),
            }
        })?;
    let name = opts
        .output_name
        .clone()
        .unwrap_or_else(|| "count_nonzero".into());
    let rows = frame.num_rows();
    let (output, pending, reused) = cx.outputs.plan(
        Field::new(name, DataType::UInt64, true),
        rows,
        m.nulls.as_ref(),
        Dtype::U64,
        1,
        cx.dir,
    )?;
    Ok(Planned {
        job: JobSpec {
            input_bytes: m.bytes(),
            op: CountNonzero { input: m.matrix }.into(),
            rows,
            chunk_rows: None,
            output: Some(output),
            output_reused: reused,
        },
        finish: Box::new(move |_| pending.finish()),
    })
}

impl Operation for CountNonzero {
    type Prepared = Mapped;

    fn name(&self) -> String {
        "count_nonzero".into()
    }

    fn prepare(&self, cx: &mut Prepare<'_>) -> Result<Mapped, WorkerError> {
        cx.maps.map(&self.input.values)
    }

    fn execute(&self, input: &Mapped, cx: &Chunk<'_>, out: &mut [u8]) -> Result<(), WorkerError> {
        let cols = self.input.cols;
        let out = cast_mut::<u64>(out, "output")?;
        with_dtype!(self.input.dtype, T => {
            let x = &input.typed::<T>("input")?[cx.rows.start * cols..cx.rows.end * cols];
            cx.par_rows(out, 1, |lo, hi, o| {
                for (r, o) in (lo..hi).zip(o) {
                    let row = &x[r * cols..(r + 1) * cols];
                    *o = row.iter().filter(|v| **v != T::default()).count() as u64;
                }
                Ok(())
            })
        })
    }
}
