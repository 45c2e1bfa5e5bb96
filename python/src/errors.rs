//! One conversion from engine errors to the package's exceptions. The classes are defined in
//! pure Python (`shmframe/_errors.py`) because each derives from `shmframe.Error` and from
//! the built-in a Python user would catch (`ValueError`, `TimeoutError`, …), which PyO3 cannot
//! declare under the limited API.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyType;
use shmframe::EngineError;
use shmframe_ipc::{ArrowSegmentError, SegmentError};

/// The exception class named `name` in `shmframe._errors` (errors are not a hot path: the
/// module comes from Python's import cache).
fn class<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyType>> {
    Ok(py
        .import("shmframe._errors")?
        .getattr(name)?
        .cast_into::<PyType>()?)
}

/// The exception for an engine error: its class by what failed, its message the engine's.
pub(crate) fn to_py(py: Python<'_>, e: EngineError) -> PyErr {
    use shmframe::EngineError as E;
    let msg = e.to_string();
    let name = match &e {
        E::Deadline { .. } => "Timeout",
        E::WorkersDied { .. } | E::ChunkKillsWorkers { .. } => "WorkerDied",
        E::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => "NotFound",
        E::Segment(SegmentError::NoSpace { .. })
        | E::Arrow(ArrowSegmentError::Segment(SegmentError::NoSpace { .. })) => "SegmentSpace",
        E::Segment(SegmentError::NotFound { .. }) => "NotFound",
        E::Input { .. } | E::NoColumn { .. } | E::ColumnType { .. } | E::Name(_) | E::Arrow(_) => {
            "InvalidInput"
        }
        _ => "Error",
    };
    match class(py, name) {
        Ok(ty) => PyErr::from_type(ty, msg),
        Err(import) => PyRuntimeError::new_err(format!("{msg} (and {import})")),
    }
}

/// `Result<T, EngineError>` into `PyResult<T>`.
pub(crate) trait IntoPy<T> {
    /// Converts the error with [`to_py`].
    fn py_err(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> IntoPy<T> for Result<T, EngineError> {
    fn py_err(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| to_py(py, e))
    }
}
