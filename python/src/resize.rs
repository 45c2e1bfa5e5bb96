//! Image resizing: files in, a `uint8` tensor frame and written files out.

use std::path::PathBuf;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use shmframe::RunOptions;
use shmframe::image::{Alpha, EncodeSpec, Filter, Fit, ImageFormat, ResizeSpec};

use crate::engine::Engine;
use crate::errors::IntoPy;
use crate::frame::Frame;

/// What [`resize`] gives Python: the tensor frame, `(path, reason)` of each failure, and the
/// job's seconds.
type Resized = (Frame, Vec<(String, String)>, f64);

/// The files of `dir` (below it too with `recursive`), sorted, hidden ones skipped: the
/// images `shmframe resize` would take.
#[pyfunction]
pub(crate) fn list_image_files(
    py: Python<'_>,
    dir: PathBuf,
    recursive: bool,
) -> PyResult<Vec<PathBuf>> {
    py.detach(|| shmframe::image::list_image_files(&dir, recursive))
        .py_err(py)
}

/// The fits, filters and output formats by the names Python and the command use.
pub(crate) const FITS: [(&str, Fit); 3] = [
    ("exact", Fit::Exact),
    ("contain", Fit::Contain),
    ("cover", Fit::Cover),
];
/// See [`FITS`].
pub(crate) const FILTERS: [(&str, Filter); 4] = [
    ("lanczos3", Filter::Lanczos3),
    ("bicubic", Filter::Bicubic),
    ("bilinear", Filter::Bilinear),
    ("nearest", Filter::Nearest),
];
/// See [`FITS`]; JPEG's quality is set apart.
pub(crate) const FORMATS: [&str; 3] = ["jpeg", "png", "webp"];

/// The format named `name` (JPEG at `quality`).
fn image_format(name: &str, quality: u8) -> PyResult<ImageFormat> {
    let formats = [
        ImageFormat::Jpeg { quality },
        ImageFormat::Png,
        ImageFormat::WebP,
    ];
    let table: Vec<(&str, ImageFormat)> = FORMATS.into_iter().zip(formats).collect();
    choice("format", name, &table)
}

/// The file a resize job writes for each of `paths` into `out_dir` (names relative to
/// `strip_prefix`, the format's extension), as [`resize`] would; two inputs with one output
/// are refused with the job's own error.
#[pyfunction]
#[pyo3(signature = (paths, out_dir, format="jpeg", strip_prefix=None, keep_extension=false))]
pub(crate) fn resize_outputs(
    py: Python<'_>,
    paths: Vec<String>,
    out_dir: PathBuf,
    format: &str,
    strip_prefix: Option<PathBuf>,
    keep_extension: bool,
) -> PyResult<Vec<PathBuf>> {
    let enc = EncodeSpec {
        dir: out_dir,
        format: image_format(format, 90)?,
        strip_prefix,
        keep_extension,
    };
    enc.output_paths(&paths).py_err(py)
}

/// The temporary file a resize job coordinated by process `coordinator` writes `dest`
/// through (left behind when a worker dies between the write and the rename).
#[pyfunction]
pub(crate) fn resize_temporary_path(dest: PathBuf, coordinator: u32) -> PathBuf {
    shmframe::image::temporary_path(&dest, coordinator)
}

fn choice<T: Copy>(what: &str, value: &str, options: &[(&str, T)]) -> PyResult<T> {
    options
        .iter()
        .find(|(name, _)| *name == value)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
            PyValueError::new_err(format!(
                "unknown {what} {value:?} (one of: {})",
                names.join(", ")
            ))
        })
}

/// Resizes image files with `engine`'s workers; returns the tensor frame (`image`: `uint8`
/// `[height, width, channels]` per row, null for a failed image), the failures as
/// `(path, reason)`, and the job's seconds. With `out_dir`, each image is also written
/// there in `format`.
#[pyfunction]
#[pyo3(signature = (
        engine, paths, width, height, fit="exact", filter="lanczos3", keep_alpha=false,
        max_pixels=100_000_000, out_dir=None, format="jpeg", quality=90, strip_prefix=None,
        keep_extension=false
    ))]
#[allow(clippy::too_many_arguments)] // the Python keyword arguments, one each
pub(crate) fn resize(
    py: Python<'_>,
    engine: &Engine,
    paths: Vec<PathBuf>,
    width: u32,
    height: u32,
    fit: &str,
    filter: &str,
    keep_alpha: bool,
    max_pixels: u64,
    out_dir: Option<PathBuf>,
    format: &str,
    quality: u8,
    strip_prefix: Option<PathBuf>,
    keep_extension: bool,
) -> PyResult<Resized> {
    if width == 0 || height == 0 {
        return Err(PyValueError::new_err(format!(
            "size must be positive, got {width}x{height}"
        )));
    }
    if !(1..=100).contains(&quality) {
        return Err(PyValueError::new_err(format!(
            "quality must be 1-100, got {quality}"
        )));
    }
    let spec = ResizeSpec {
        fit: choice("fit", fit, &FITS)?,
        filter: choice("filter", filter, &FILTERS)?,
        alpha: if keep_alpha {
            Alpha::Keep
        } else {
            Alpha::Flatten
        },
        max_pixels,
        ..ResizeSpec::new(width, height)
    };
    let format = image_format(format, quality)?;
    let encode = out_dir.map(|dir| EncodeSpec {
        dir,
        format,
        strip_prefix,
        keep_extension,
    });
    let out = engine.with(py, move |e| {
        e.resize_paths(&paths, &spec, encode.as_ref(), &RunOptions::default())
    })?;
    let failed = out
        .failed
        .iter()
        .map(|f| (f.path.clone(), f.error.clone()))
        .collect();
    Ok((Frame::new(out.frame), failed, out.stats.seconds))
}
