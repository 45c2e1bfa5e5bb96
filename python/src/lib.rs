//! `shmframe._shmframe`: the native module of the `shmframe` Python package. It stays small:
//! an engine handle, frames, jobs, and errors mapped to the package's exception classes. The
//! numpy conveniences, argument checks and documentation live in the Python layer
//! (`python/shmframe/`).

use pyo3::prelude::*;

mod engine;
mod errors;
mod frame;
mod resize;

/// Runs this process as an engine worker when it was started as one (the package starts its
/// workers as `python -I -S -c …`, which loads this module by path and calls this); returns
/// the exit code, or `None` when the process is not a worker.
#[pyfunction]
fn _worker_main(py: Python<'_>) -> Option<i32> {
    let registry = shmframe::KernelRegistry::new();
    py.detach(|| shmframe::spawned_worker_main(&registry))
}

/// Removes the segments in `dir` whose owning process is gone (what `shmframe gc` does): never
/// one of a live process, never one of `shmframe load`. Returns the names removed.
#[pyfunction]
fn sweep_stale(py: Python<'_>, dir: std::path::PathBuf) -> PyResult<Vec<String>> {
    use errors::IntoPy;
    let dir = shmframe::SegmentDir::from_path(dir);
    let removed = py
        .detach(|| shmframe_ipc::sweep::sweep_stale(&dir))
        .map_err(shmframe::EngineError::from)
        .py_err(py)?;
    Ok(removed.into_iter().map(|i| i.name.to_string()).collect())
}

/// The module.
#[pymodule]
fn _shmframe(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<engine::Engine>()?;
    m.add_class::<frame::Frame>()?;
    m.add_class::<frame::ColumnView>()?;
    m.add_class::<frame::WritableView>()?;
    m.add_function(wrap_pyfunction!(engine::run_inline, m)?)?;
    m.add_function(wrap_pyfunction!(_worker_main, m)?)?;
    m.add_function(wrap_pyfunction!(sweep_stale, m)?)?;
    m.add_function(wrap_pyfunction!(resize::list_image_files, m)?)?;
    m.add_function(wrap_pyfunction!(resize::resize, m)?)?;
    m.add_function(wrap_pyfunction!(resize::resize_outputs, m)?)?;
    m.add_function(wrap_pyfunction!(resize::resize_temporary_path, m)?)?;
    m.add("RESIZE_FITS", resize::FITS.map(|(n, _)| n).to_vec())?;
    m.add("RESIZE_FILTERS", resize::FILTERS.map(|(n, _)| n).to_vec())?;
    m.add("RESIZE_FORMATS", resize::FORMATS.to_vec())?;
    m.add("WORKER_ENV", shmframe::WORKER_ENV)?;
    m.add("KERNELS", shmframe::RowKernel::NAMES.to_vec())?;
    Ok(())
}
