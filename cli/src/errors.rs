//! Mapping errors to exit codes: 2 for bad usage or bad input, 1 for runtime failures.

use shmframe::EngineError;
use shmframe::kernels::{KernelError, ParseRowKernelError};
use shmframe::npy::NpyError;
use shmframe_ipc::SegmentError;

/// An error in what the user gave (arguments, files, names): exit code 2.
#[derive(Debug)]
pub(crate) struct BadInput(pub(crate) String);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

/// `Err(BadInput)` as an `anyhow::Error`.
pub(crate) fn bad_input(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(BadInput(msg.into()))
}

/// Some images of a resize job failed (each already reported): exit code 3.
#[derive(Debug)]
pub(crate) struct SomeImagesFailed {
    pub(crate) failed: usize,
    pub(crate) images: usize,
}

impl std::fmt::Display for SomeImagesFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} of {} images failed (listed above)",
            self.failed, self.images
        )
    }
}

impl std::error::Error for SomeImagesFailed {}

fn is_input_error(e: &EngineError) -> bool {
    match e {
        EngineError::Arrow(shmframe_ipc::ArrowSegmentError::Segment(s)) => segment_is_input(s),
        EngineError::Input { .. }
        | EngineError::Arrow(_)
        | EngineError::Name(_)
        | EngineError::NoColumn { .. } => true,
        EngineError::Io { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
        EngineError::Segment(s) => segment_is_input(s),
        _ => false,
    }
}

fn segment_is_input(e: &SegmentError) -> bool {
    matches!(
        e,
        SegmentError::NotFound { .. } | SegmentError::Name(_) | SegmentError::Header { .. }
    )
}

/// The exit code of a failed command.
pub(crate) fn exit_code(e: &anyhow::Error) -> u8 {
    if e.is::<SomeImagesFailed>() {
        return 3;
    }
    for cause in e.chain() {
        let input = cause.is::<BadInput>()
            || cause.is::<ParseRowKernelError>()
            || cause.is::<NpyError>()
            || cause.is::<KernelError>()
            || cause.is::<shmframe_ipc::NameError>()
            || cause
                .downcast_ref::<EngineError>()
                .is_some_and(is_input_error)
            || cause
                .downcast_ref::<SegmentError>()
                .is_some_and(segment_is_input);
        if input {
            return 2;
        }
    }
    1
}
