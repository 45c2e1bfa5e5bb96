//! `Engine`: the pool of worker processes, frames in, results out.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use numpy::{PyArray2, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use shmframe::{Interrupt, Kernel, RowKernel, RunOptions, SegmentDir, StartMethod};

use crate::errors::IntoPy;
use crate::frame::{Frame, WritableView};

/// An engine: its worker processes, started as `program args…` (a Python interpreter that
/// loads this module and calls `_worker_main`), never forked from the interpreter.
#[pyclass(module = "shmframe._shmframe", frozen)]
pub(crate) struct Engine {
    inner: Mutex<Option<shmframe::Engine>>,
    /// The process that made it: after `os.fork()` the child's copy refuses to run jobs
    /// (the workers and the control segment are the parent's).
    owner: u32,
}

impl Engine {
    /// Runs `f` on the engine with the GIL released; an error once closed.
    pub(crate) fn with<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&shmframe::Engine) -> Result<T, shmframe::EngineError> + Send,
    ) -> PyResult<T> {
        if std::process::id() != self.owner {
            return Err(PyRuntimeError::new_err(format!(
                "this engine belongs to process {} (this is a child made by os.fork()): make a \
                 new Engine here; arrays and frames from before the fork stay readable",
                self.owner
            )));
        }
        // Locking and the work both happen detached: a thread waiting for another's job
        // never holds the GIL (PyO3/pyo3#4764).
        let r = py.detach(|| {
            let guard = self
                .inner
                .lock()
                .map_err(|_| "the engine's lock is poisoned")?;
            let engine = guard.as_ref().ok_or("the engine is closed")?;
            Ok(f(engine))
        });
        r.map_err(|e: &str| PyRuntimeError::new_err(e))?.py_err(py)
    }
}

#[pymethods]
impl Engine {
    /// Starts `workers` worker processes (default: the available cores).
    #[new]
    #[pyo3(signature = (program, args, workers=None, segment_dir=None))]
    fn new(
        py: Python<'_>,
        program: PathBuf,
        args: Vec<String>,
        workers: Option<usize>,
        segment_dir: Option<PathBuf>,
    ) -> PyResult<Self> {
        let mut builder = shmframe::Engine::builder().start_method(StartMethod::Command {
            program,
            args: args.into_iter().map(OsString::from).collect(),
        });
        if let Some(n) = workers {
            builder = builder.workers(n);
        }
        if let Some(d) = segment_dir {
            builder = builder.segment_dir(SegmentDir::from_path(d));
        }
        let engine = py.detach(|| builder.build()).py_err(py)?;
        Ok(Self {
            inner: Mutex::new(Some(engine)),
            owner: std::process::id(),
        })
    }

    /// Stops the workers and removes the engine's segments (frames and results already made
    /// stay valid). Idempotent.
    fn close(&self, py: Python<'_>) {
        let engine = py.detach(|| self.inner.lock().ok().and_then(|mut g| g.take()));
        py.detach(move || drop(engine));
    }

    /// Whether `close` has been called.
    #[getter]
    fn closed(&self) -> bool {
        self.inner.lock().map(|g| g.is_none()).unwrap_or(true)
    }

    /// The number of worker processes.
    #[getter]
    fn workers(&self, py: Python<'_>) -> PyResult<usize> {
        self.with(py, |e| Ok(e.workers()))
    }

    /// The pids of the live workers.
    fn worker_pids(&self, py: Python<'_>) -> PyResult<Vec<u32>> {
        self.with(py, |e| Ok(e.worker_pids()))
    }

    /// A frame holding a copy of a C-contiguous 2-D float32 or float64 numpy array (the
    /// matrix column `x`), copied once into shared memory with the GIL released.
    fn frame_from_numpy(&self, py: Python<'_>, array: &Bound<'_, PyAny>) -> PyResult<Frame> {
        let untyped = array
            .cast::<PyUntypedArray>()
            .map_err(|_| PyValueError::new_err("expected a numpy array"))?;
        if untyped.ndim() != 2 {
            return Err(PyValueError::new_err(format!(
                "expected a 2-D array, got {} dimensions",
                untyped.ndim()
            )));
        }
        if !untyped.is_c_contiguous() {
            return Err(PyValueError::new_err("expected a C-contiguous array"));
        }
        let cols = untyped.shape()[1];
        if let Ok(a) = array.cast::<PyArray2<f64>>() {
            return self.copy_in(py, a, cols);
        }
        if let Ok(a) = array.cast::<PyArray2<f32>>() {
            return self.copy_in(py, a, cols);
        }
        Err(PyValueError::new_err(format!(
            "expected float32 or float64, got {}",
            untyped.dtype()
        )))
    }

    /// A frame from any object that speaks the Arrow PyCapsule stream interface
    /// (`__arrow_c_stream__`: a pyarrow Table or RecordBatchReader, a polars DataFrame, …):
    /// its record batches, concatenated and copied once into a segment.
    fn frame_from_arrow(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<Frame> {
        use arrow_array::ffi_stream::RecordBatchStreamReader;
        use arrow_pyarrow::FromPyArrow;
        let reader = RecordBatchStreamReader::from_pyarrow_bound(data)?;
        let schema = arrow_array::RecordBatchReader::schema(&reader);
        let mut batches = reader
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| PyValueError::new_err(format!("reading the Arrow stream: {e}")))?;
        if batches.is_empty() {
            batches.push(arrow_array::RecordBatch::new_empty(schema));
        }
        let frame = self.with(py, move |e| e.frame_from_batches(&batches))?;
        Ok(Frame::new(frame))
    }

    /// A frame from any object that speaks the Arrow PyCapsule array interface
    /// (`__arrow_c_array__`: a pyarrow Array or RecordBatch, …), copied once into a segment: a
    /// struct array's fields become the columns, any other array the one column `x`.
    fn frame_from_arrow_array(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<Frame> {
        use arrow_array::{Array, RecordBatch, StructArray, make_array};
        use arrow_pyarrow::FromPyArrow;
        let array = make_array(arrow_data::ArrayData::from_pyarrow_bound(data)?);
        let invalid = |e: arrow_schema::ArrowError| {
            PyValueError::new_err(format!("reading the Arrow array: {e}"))
        };
        let batch = match array.as_any().downcast_ref::<StructArray>() {
            Some(s) => RecordBatch::from(s.clone()),
            None => {
                let field = arrow_schema::Field::new(
                    shmframe::MATRIX_COLUMN,
                    array.data_type().clone(),
                    array.null_count() > 0,
                );
                RecordBatch::try_new(
                    std::sync::Arc::new(arrow_schema::Schema::new(vec![field])),
                    vec![array],
                )
                .map_err(invalid)?
            }
        };
        let frame = self.with(py, move |e| e.frame_from_batches(&[batch]))?;
        Ok(Frame::new(frame))
    }

    /// A frame from a file (`.npy`, Arrow IPC, Parquet, CSV: the format from its content), or
    /// from a named segment (`shm:NAME`).
    fn frame_from_source(&self, py: Python<'_>, source: String) -> PyResult<Frame> {
        let frame = self.with(py, move |e| e.frame_from_source(&source))?;
        Ok(Frame::new(frame))
    }

    /// A new frame of `rows x cols` zeros of `dtype` (`"float32"` or `"float64"`) and the
    /// writable view of its values that numpy wraps.
    fn empty(
        &self,
        py: Python<'_>,
        rows: usize,
        cols: usize,
        dtype: &str,
    ) -> PyResult<(Frame, WritableView)> {
        let (frame, view) = match dtype {
            "float64" => {
                let m = self.with(py, |e| e.empty_matrix::<f64>(rows, cols))?;
                (m.frame().clone(), WritableView::new(m))
            }
            "float32" => {
                let m = self.with(py, |e| e.empty_matrix::<f32>(rows, cols))?;
                (m.frame().clone(), WritableView::new(m))
            }
            other => {
                return Err(PyValueError::new_err(format!(
                    "expected dtype float32 or float64, got {other}"
                )));
            }
        };
        Ok((Frame::new(frame), view))
    }

    /// The empty job: every worker wakes, joins and leaves; returns the job's seconds as the
    /// engine measured them.
    fn ping(&self, py: Python<'_>) -> PyResult<f64> {
        self.with(py, |e| e.run_empty()).map(|stats| stats.seconds)
    }

    /// Runs a row kernel (`l2-norm`, `sum`, `cosine`, …) over `columns` of `frame` (default:
    /// the frame's default columns); returns the result frame.
    #[pyo3(signature = (
        kernel, frame, columns=None, query=None, chunk_rows=None, deadline=None,
        _test_chunk_sleep_ms=None
    ))]
    #[allow(clippy::too_many_arguments)] // the Python keyword arguments, one each
    fn run(
        &self,
        py: Python<'_>,
        kernel: &str,
        frame: &Frame,
        columns: Option<Vec<String>>,
        query: Option<Vec<f64>>,
        chunk_rows: Option<usize>,
        deadline: Option<f64>,
        _test_chunk_sleep_ms: Option<u64>,
    ) -> PyResult<Frame> {
        let kernel = parse_kernel(kernel)?;
        let f = frame.shared().clone();
        let columns = columns.unwrap_or_else(|| f.default_columns());
        // Ctrl-C: every wait slice (10 ms) the job's wait loop takes the GIL for a moment and
        // asks the interpreter for pending signals; a KeyboardInterrupt stops the job (the
        // workers leave it, the pool stays usable) and is raised once the call returns.
        let raised: Arc<Mutex<Option<PyErr>>> = Arc::default();
        let stash = raised.clone();
        let interrupt = Interrupt(Arc::new(move || {
            Python::attach(|py| match py.check_signals() {
                Ok(()) => false,
                Err(e) => {
                    if let Ok(mut slot) = stash.lock() {
                        *slot = Some(e);
                    }
                    true
                }
            })
        }));
        let opts = RunOptions {
            chunk_rows,
            deadline: deadline.map(std::time::Duration::from_secs_f64),
            interrupt: Some(interrupt),
            test_chunk_sleep: _test_chunk_sleep_ms.map(std::time::Duration::from_millis),
            ..RunOptions::default()
        };
        let result = self.with(py, move |e| {
            let names: Vec<&str> = columns.iter().map(String::as_str).collect();
            e.run_full(Kernel::Row(kernel), &f, &names, query.as_deref(), &opts)
        });
        if let Some(e) = raised.lock().ok().and_then(|mut slot| slot.take()) {
            return Err(e);
        }
        Ok(Frame::new(result?.0))
    }
}

/// The row kernel named `name`, or a `ValueError` listing the kernels.
fn parse_kernel(name: &str) -> PyResult<RowKernel> {
    name.parse()
        .map_err(|e: shmframe::kernels::ParseRowKernelError| PyValueError::new_err(e.to_string()))
}

/// A row kernel over a C-contiguous 2-D float32 or float64 numpy array, computed in this
/// process with the GIL released, by the workers' own code (`row_results`): for arrays too
/// small for the pool to win. Returns a new numpy array (1-D, or 2-D for `normalize`).
#[pyfunction]
#[pyo3(signature = (kernel, array, query=None))]
pub(crate) fn run_inline<'py>(
    py: Python<'py>,
    kernel: &str,
    array: &Bound<'py, PyAny>,
    query: Option<Vec<f64>>,
) -> PyResult<Bound<'py, PyAny>> {
    let kernel = parse_kernel(kernel)?;
    if kernel.needs_query() != query.is_some() {
        return Err(PyValueError::new_err(format!(
            "kernel {} {}",
            kernel.name(),
            if kernel.needs_query() {
                "needs a query vector"
            } else {
                "takes no query vector"
            }
        )));
    }
    if let Ok(a) = array.cast::<PyArray2<f64>>() {
        return inline::<f64>(py, &kernel, a, query);
    }
    if let Ok(a) = array.cast::<PyArray2<f32>>() {
        return inline::<f32>(py, &kernel, a, query);
    }
    Err(PyValueError::new_err(
        "expected a 2-D float32 or float64 numpy array",
    ))
}

fn inline<'py, T: shmframe::kernels::Float + numpy::Element>(
    py: Python<'py>,
    kernel: &RowKernel,
    array: &Bound<'py, PyArray2<T>>,
    query: Option<Vec<f64>>,
) -> PyResult<Bound<'py, PyAny>> {
    let ro = array
        .try_readonly()
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    let (rows, cols) = (ro.shape()[0], ro.shape()[1]);
    let values = ro
        .as_slice()
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    let out = py
        .detach(|| shmframe::kernels::row_results(kernel, values, cols, query.as_deref()))
        .map_err(|e| PyValueError::new_err(format!("kernel {}: {e}", kernel.name())))?;
    let flat = numpy::PyArray1::from_vec(py, out);
    if kernel.output_is_matrix() {
        Ok(flat.reshape([rows, cols])?.into_any())
    } else {
        Ok(flat.into_any())
    }
}

impl Engine {
    /// Copies a C-contiguous 2-D array of `cols` columns into a new frame.
    fn copy_in<T: shmframe::Element + numpy::Element>(
        &self,
        py: Python<'_>,
        array: &Bound<'_, PyArray2<T>>,
        cols: usize,
    ) -> PyResult<Frame> {
        let ro = array
            .try_readonly()
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        let values = ro
            .as_slice()
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        if cols == 0 {
            return Err(PyValueError::new_err("expected at least one column"));
        }
        let frame = self.with(py, |e| e.frame_from_slice(values, cols))?;
        Ok(Frame::new(frame))
    }
}
