//! The empty job: no rows, no output. Every worker wakes for it, joins and leaves: the
//! round trip of the pool itself (`Engine::run_empty`).

use serde::{Deserialize, Serialize};

use super::{Chunk, JobSpec, Operation, Planned, Prepare, WorkerError};

/// The descriptor of the empty job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Empty;

/// Plans the empty job.
pub(crate) fn plan() -> Planned<()> {
    Planned {
        job: JobSpec {
            op: Empty.into(),
            rows: 0,
            chunk_rows: Some(1),
            output: None,
            input_bytes: 0,
            output_reused: false,
        },
        finish: Box::new(|_| Ok(())),
    }
}

impl Operation for Empty {
    type Prepared = ();

    fn name(&self) -> String {
        "empty".into()
    }

    fn prepare(&self, _: &mut Prepare<'_>) -> Result<(), WorkerError> {
        Ok(())
    }

    fn execute(&self, _: &(), _: &Chunk<'_>, _: &mut [u8]) -> Result<(), WorkerError> {
        Ok(())
    }
}
