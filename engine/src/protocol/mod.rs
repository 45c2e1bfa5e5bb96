//! The protocol between the coordinator and its workers: the control segment's words, the
//! parts of a job descriptor, and a worker's start arguments. Knows nothing of any particular
//! operation.

mod control;
mod desc;
mod worker_env;

pub use control::MAX_WORKERS;
pub(crate) use control::{CONTROL_LEN, ChunkState, Control, DESC_MAX, MAX_CHUNKS};
pub(crate) use desc::{BufRef, Dtype, Failure, Hooks, Loc, OutputDesc, with_dtype};
pub(crate) use worker_env::{JanitorArgs, WorkerArgs, WorkerRole};
