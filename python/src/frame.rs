//! `Frame`: a shared frame, and read-only numpy views of its columns.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use shmframe::SharedFrame;

use crate::errors::IntoPy;

/// A frame in shared memory (or a mapped file). Arrays taken from it keep it alive (their
/// `base` is a [`ColumnView`] holding the frame).
#[pyclass(module = "shmframe._shmframe", frozen)]
pub(crate) struct Frame {
    inner: SharedFrame,
}

impl Frame {
    pub(crate) fn new(inner: SharedFrame) -> Self {
        Self { inner }
    }

    pub(crate) fn shared(&self) -> &SharedFrame {
        &self.inner
    }
}

/// What numpy reads a column through: `__array_interface__` (version 3) with the address of
/// the values in the frame's mapping, marked read-only, and the frame itself, which the view
/// holds so the mapping lives as long as any array made from it (numpy sets the array's
/// `base` to this object). numpy dereferences the address; this crate has no `unsafe`.
#[pyclass(module = "shmframe._shmframe", frozen)]
pub(crate) struct ColumnView {
    frame: Py<Frame>,
    interface: Py<PyDict>,
}

#[pymethods]
impl ColumnView {
    /// The numpy array interface of the column.
    #[getter]
    fn __array_interface__(&self, py: Python<'_>) -> Py<PyDict> {
        self.interface.clone_ref(py)
    }

    /// The frame whose memory the view shows.
    #[getter]
    fn frame(&self, py: Python<'_>) -> Py<Frame> {
        self.frame.clone_ref(py)
    }
}

/// A read-only numpy array over `values` (`rows x width`, or 1-D when `width` is `None`),
/// its base a [`ColumnView`] holding `owner`.
fn view<'py, T: shmframe::Element>(
    owner: &Bound<'py, Frame>,
    values: &[T],
    width: Option<usize>,
    typestr: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let py = owner.py();
    let shape = match width {
        None => PyTuple::new(py, [values.len()])?,
        Some(w) => PyTuple::new(py, [values.len().checked_div(w).unwrap_or(0), w])?,
    };
    let interface = PyDict::new(py);
    interface.set_item("version", 3)?;
    interface.set_item("shape", shape)?;
    interface.set_item("typestr", typestr)?;
    // (address, read-only): numpy makes the array non-writeable, and with a base that
    // offers no writable buffer it cannot be made writeable again.
    interface.set_item("data", (values.as_ptr() as usize, true))?;
    let holder = ColumnView {
        frame: owner.clone().unbind(),
        interface: interface.unbind(),
    };
    py.import("numpy")?.call_method1("asarray", (holder,))
}

/// The writable values of a frame made by `Engine.empty`: numpy reads its
/// `__array_interface__` (the values' address in a second, read-write mapping of the segment)
/// and keeps this object, and so the mapping and the frame, alive as the array's `base`. Only
/// the values are reachable; the segment's Arrow metadata stays read-only.
#[pyclass(module = "shmframe._shmframe", frozen)]
pub(crate) struct WritableView {
    values: Writable,
    address: usize,
    shape: (usize, usize),
    typestr: &'static str,
}

/// The writable mapping, of either float type.
pub(crate) enum Writable {
    F32(shmframe::WritableMatrix<f32>),
    F64(shmframe::WritableMatrix<f64>),
}

/// What [`WritableView::new`] takes.
pub(crate) trait IntoWritable {
    /// Wraps the matrix; returns it with its values' address and numpy type string.
    fn wrap(self) -> (Writable, usize, (usize, usize), &'static str);
}

impl IntoWritable for shmframe::WritableMatrix<f64> {
    fn wrap(mut self) -> (Writable, usize, (usize, usize), &'static str) {
        let address = self.values_mut().as_mut_ptr() as usize;
        let shape = self.shape();
        (Writable::F64(self), address, shape, "<f8")
    }
}

impl IntoWritable for shmframe::WritableMatrix<f32> {
    fn wrap(mut self) -> (Writable, usize, (usize, usize), &'static str) {
        let address = self.values_mut().as_mut_ptr() as usize;
        let shape = self.shape();
        (Writable::F32(self), address, shape, "<f4")
    }
}

impl WritableView {
    pub(crate) fn new(m: impl IntoWritable) -> Self {
        let (values, address, shape, typestr) = m.wrap();
        Self {
            values,
            address,
            shape,
            typestr,
        }
    }
}

#[pymethods]
impl WritableView {
    /// The numpy array interface of the values (writable).
    #[getter]
    fn __array_interface__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("version", 3)?;
        d.set_item("shape", self.shape)?;
        d.set_item("typestr", self.typestr)?;
        d.set_item("data", (self.address, false))?;
        Ok(d)
    }

    /// The frame the values belong to (no copy).
    #[getter]
    fn frame(&self) -> Frame {
        Frame::new(match &self.values {
            Writable::F32(m) => m.frame().clone(),
            Writable::F64(m) => m.frame().clone(),
        })
    }

    /// The address of the first value (to recognise arrays over it).
    #[getter]
    fn address(&self) -> usize {
        self.address
    }
}

#[pymethods]
impl Frame {
    /// Rows.
    #[getter]
    fn num_rows(&self) -> usize {
        self.inner.num_rows()
    }

    /// Column names.
    #[getter]
    fn column_names(&self) -> Vec<String> {
        self.inner.column_names()
    }

    /// The columns a kernel reads when none are named.
    fn default_columns(&self) -> Vec<String> {
        self.inner.default_columns()
    }

    /// The file or segment path holding the data.
    #[getter]
    fn path(&self) -> String {
        self.inner.path().display().to_string()
    }

    /// A read-only numpy view of a column (default: the first): a float/integer column is
    /// 1-D, a matrix column (`FixedSizeList`) 2-D. No copy.
    #[pyo3(signature = (column=None))]
    fn to_numpy<'py>(
        slf: &Bound<'py, Self>,
        column: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let f = &slf.get().inner;
        let name = match column {
            Some(c) => c,
            None => f
                .column_names()
                .into_iter()
                .next()
                .ok_or_else(|| PyValueError::new_err("the frame has no column"))?,
        };
        let col = f.column(&name).py_err(py)?;
        use arrow_schema::DataType as D;
        let contiguous = || PyValueError::new_err(format!("column {name} is not contiguous"));
        match col.data_type().clone() {
            D::FixedSizeList(item, w) => {
                let w = usize::try_from(w).map_err(|_| PyValueError::new_err("bad width"))?;
                match item.data_type() {
                    D::Float64 => {
                        let m = f.matrix::<f64>(&name).py_err(py)?;
                        view(slf, m.to_slice().ok_or_else(contiguous)?, Some(w), "<f8")
                    }
                    D::Float32 => {
                        let m = f.matrix::<f32>(&name).py_err(py)?;
                        view(slf, m.to_slice().ok_or_else(contiguous)?, Some(w), "<f4")
                    }
                    D::UInt8 => {
                        let m = f.matrix::<u8>(&name).py_err(py)?;
                        view(slf, m.to_slice().ok_or_else(contiguous)?, Some(w), "|u1")
                    }
                    other => Err(PyValueError::new_err(format!(
                        "column {name} is a matrix of {other}: not supported yet"
                    ))),
                }
            }
            D::Float64 => view(slf, f.values::<f64>(&name).py_err(py)?, None, "<f8"),
            D::Float32 => view(slf, f.values::<f32>(&name).py_err(py)?, None, "<f4"),
            D::UInt64 => view(slf, f.values::<u64>(&name).py_err(py)?, None, "<u8"),
            D::Int64 => view(slf, f.values::<i64>(&name).py_err(py)?, None, "<i8"),
            D::Int32 => view(slf, f.values::<i32>(&name).py_err(py)?, None, "<i4"),
            other => Err(PyValueError::new_err(format!(
                "column {name} holds {other}: not supported yet"
            ))),
        }
    }

    fn __repr__(&self) -> String {
        format!("{:?}", self.inner)
    }
}
