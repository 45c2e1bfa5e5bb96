//! Operations: one module per kind of job, each with two halves.
//!
//! * **Plan** (coordinator): check the inputs, lay out the output segment, and write the
//!   operation's descriptor: a function of the module that returns a [`Planned`] job, whose
//!   `finish` turns the written output into the caller's result.
//! * **Execute** (worker): the [`Operation`] impl of the descriptor: `prepare` maps what the
//!   job reads, once per job in each worker; `execute` computes one claimed chunk of rows into
//!   that chunk's rows of the output.
//!
//! Everything between the halves (posting the job, claiming chunks, a dead worker's chunks
//! redone, deadlines, cancellation, recycled outputs) is shared: `crate::coordinator::job`
//! and `crate::worker` know nothing about any particular operation. Adding one means a module
//! here and one line in [`operations!`] below (plus, for a public entry point, a method in
//! `crate::coordinator::api`).

mod context;
mod count_nonzero;
mod empty;
mod input;
mod output;
#[cfg(feature = "image")]
pub(crate) mod resize;
mod row;
mod user;

use std::fmt;

use serde::{Deserialize, Serialize};

pub(crate) use context::{Chunk, Locals, Mapped, Mappings, Prepare, WorkerError, cast, cast_mut};
pub(crate) use count_nonzero::plan as plan_count_nonzero;
pub(crate) use empty::plan as plan_empty;
pub(crate) use input::require_columns;
pub(crate) use output::RowOutputs;
pub(crate) use row::plan as plan_row;
pub(crate) use user::plan as plan_user;

use crate::JobStats;
use crate::error::EngineError;
use crate::protocol::{Hooks, OutputDesc};

/// The worker half of an operation: its descriptor, sent to every worker as itself.
pub(crate) trait Operation:
    fmt::Debug + Clone + Serialize + for<'de> Deserialize<'de>
{
    /// What a worker maps and checks once per job.
    type Prepared;

    /// The name failures carry (a kernel's name, `resize`).
    fn name(&self) -> String;

    /// Maps what the job reads; runs once per job in each worker, before its first chunk.
    fn prepare(&self, cx: &mut Prepare<'_>) -> Result<Self::Prepared, WorkerError>;

    /// Computes the chunk's rows `cx.rows` into `out`, the chunk's rows of the output (empty
    /// for an operation without output). Writes nothing else.
    fn execute(
        &self,
        job: &Self::Prepared,
        cx: &Chunk<'_>,
        out: &mut [u8],
    ) -> Result<(), WorkerError>;
}

/// A prepared job, whatever its operation.
pub(crate) trait PreparedJob {
    /// [`Operation::execute`] for one chunk.
    fn execute(&self, cx: &Chunk<'_>, out: &mut [u8]) -> Result<(), WorkerError>;
}

struct Bound<'a, O: Operation> {
    op: &'a O,
    prepared: O::Prepared,
}

impl<O: Operation> PreparedJob for Bound<'_, O> {
    fn execute(&self, cx: &Chunk<'_>, out: &mut [u8]) -> Result<(), WorkerError> {
        self.op.execute(&self.prepared, cx, out)
    }
}

/// Registers operations: one line each, `Variant => descriptor type`. Makes [`OpDesc`], the
/// descriptor of any operation, and its dispatch.
macro_rules! operations {
    ($($(#[$attr:meta])* $variant:ident => $ty:ty),* $(,)?) => {
        /// The operation of a job: one variant per registered operation.
        #[derive(Debug, Clone, Serialize, Deserialize)]
        pub(crate) enum OpDesc {
            $($(#[$attr])* #[allow(missing_docs)] $variant($ty),)*
        }

        $($(#[$attr])* impl From<$ty> for OpDesc {
            fn from(op: $ty) -> Self {
                OpDesc::$variant(op)
            }
        })*

        impl OpDesc {
            /// The operation's name.
            pub(crate) fn name(&self) -> String {
                match self {
                    $($(#[$attr])* OpDesc::$variant(op) => op.name(),)*
                }
            }

            /// [`Operation::prepare`] of the operation.
            pub(crate) fn prepare<'a>(
                &'a self,
                cx: &mut Prepare<'_>,
            ) -> Result<Box<dyn PreparedJob + 'a>, WorkerError> {
                match self {
                    $($(#[$attr])* OpDesc::$variant(op) => {
                        Ok(Box::new(Bound { op, prepared: op.prepare(cx)? }))
                    })*
                }
            }
        }
    };
}

operations! {
    Empty => empty::Empty,
    Row => row::RowOp,
    User => user::UserOp,
    CountNonzero => count_nonzero::CountNonzero,
    #[cfg(feature = "image")]
    Resize => resize::ResizeOp,
}

/// The job descriptor: the only thing that crosses between processes besides atomics.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct JobDesc {
    /// The job's sequence number (set when posted).
    pub(crate) seq: u32,
    /// Rows of the job.
    pub(crate) rows: usize,
    /// Rows per chunk.
    pub(crate) chunk_rows: usize,
    /// What is computed.
    pub(crate) op: OpDesc,
    /// Where the results go.
    pub(crate) output: Option<OutputDesc>,
    /// Test hooks.
    pub(crate) hooks: Hooks,
}

/// What the coordinator's plan half gives the shared job loop.
pub(crate) struct JobSpec {
    /// The operation's descriptor.
    pub(crate) op: OpDesc,
    /// Rows of the job.
    pub(crate) rows: usize,
    /// Rows per chunk, when the operation has its own default (else the pool's default).
    pub(crate) chunk_rows: Option<usize>,
    /// Where the results go.
    pub(crate) output: Option<OutputDesc>,
    /// Input bytes the job reads (for statistics).
    pub(crate) input_bytes: usize,
    /// The output is a recycled segment (for statistics).
    pub(crate) output_reused: bool,
}

/// What an operation's plan half returns: the job, and what turns its output into the
/// caller's result once every chunk is done.
pub(crate) struct Planned<T> {
    /// The job.
    pub(crate) job: JobSpec,
    /// Runs after a successful job.
    pub(crate) finish: Finish<T>,
}

/// What turns a job's written output into the caller's result.
pub(crate) type Finish<T> = Box<dyn FnOnce(&JobStats) -> Result<T, EngineError>>;

/// What the plan halves need from the engine.
pub(crate) struct PlanCtx<'a> {
    /// Where segments go.
    pub(crate) dir: &'a shmframe_ipc::SegmentDir,
    /// User kernels.
    pub(crate) registry: &'a crate::user::KernelRegistry,
    /// The engine's recycled outputs.
    pub(crate) outputs: &'a RowOutputs,
}
