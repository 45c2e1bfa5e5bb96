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
        fit: choice(
            "fit",
            fit,
            &[
                ("exact", Fit::Exact),
                ("contain", Fit::Contain),
                ("cover", Fit::Cover),
            ],
        )?,
        filter: choice(
            "filter",
            filter,
            &[
                ("lanczos3", Filter::Lanczos3),
                ("bicubic", Filter::Bicubic),
                ("bilinear", Filter::Bilinear),
                ("nearest", Filter::Nearest),
            ],
        )?,
        alpha: if keep_alpha {
            Alpha::Keep
        } else {
            Alpha::Flatten
        },
        max_pixels,
        ..ResizeSpec::new(width, height)
    };
    let format = choice(
        "format",
        format,
        &[
            ("jpeg", ImageFormat::Jpeg { quality }),
            ("png", ImageFormat::Png),
            ("webp", ImageFormat::WebP),
        ],
    )?;
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
