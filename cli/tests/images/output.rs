//! Reading a job's output frame, and running a job with the checks every job must hold.

use crate::common::TestResult;
use crate::metrics::max_diff;
use crate::s;
use std::path::PathBuf;

use arrow_array::{Array, FixedSizeListArray, StringArray, UInt8Array, UInt32Array};
use shmframe::image::{EncodeSpec, ResizeOutput, ResizeSpec, resize_image};
use shmframe::{Engine, RunOptions, SharedFrame};

// Reading a job's output frame.

/// The rows of an output frame: pixels (None for a null row) and source sizes. Checks the
/// tensor column's type and `arrow.fixed_shape_tensor` metadata against `spec` on the way.
pub(crate) struct Rows {
    pub(crate) pixels: Vec<Option<Vec<u8>>>,
    pub(crate) sources: Vec<(u32, u32)>,
    pub(crate) paths: Option<Vec<String>>,
}

pub(crate) fn tensor_shape(frame: &SharedFrame) -> Result<Vec<usize>, String> {
    let schema = frame.schema();
    let field = schema.field_with_name("image").map_err(s)?;
    let md = field.metadata();
    ensure!(
        md.get("ARROW:extension:name").map(String::as_str) == Some("arrow.fixed_shape_tensor"),
        "image field metadata lacks the tensor extension name: {md:?}"
    );
    let meta: serde_json::Value = serde_json::from_str(
        md.get("ARROW:extension:metadata")
            .ok_or("no ARROW:extension:metadata")?,
    )
    .map_err(s)?;
    meta["shape"]
        .as_array()
        .ok_or_else(|| format!("no shape in {meta}"))?
        .iter()
        .map(|d| d.as_u64().map(|d| d as usize).ok_or("shape entry"))
        .collect::<Result<_, _>>()
        .map_err(s)
}

pub(crate) fn rows_of(out: &ResizeOutput, spec: &ResizeSpec) -> Result<Rows, String> {
    let want = vec![spec.height as usize, spec.width as usize, spec.channels()];
    let shape = tensor_shape(&out.frame)?;
    ensure!(shape == want, "tensor shape {shape:?}, want {want:?}");
    let col = out.frame.column("image").map_err(s)?;
    let list = col
        .as_any()
        .downcast_ref::<FixedSizeListArray>()
        .ok_or_else(|| format!("image column is {}", col.data_type()))?;
    ensure!(
        list.value_length() as usize == spec.image_bytes(),
        "list size {} for {} bytes per image",
        list.value_length(),
        spec.image_bytes()
    );
    let values = list
        .values()
        .as_any()
        .downcast_ref::<UInt8Array>()
        .ok_or("tensor values are not uint8")?;
    let per = spec.image_bytes();
    let flat = values.values();
    let pixels = (0..list.len())
        .map(|r| {
            list.is_valid(r)
                .then(|| flat[(list.offset() + r) * per..(list.offset() + r + 1) * per].to_vec())
        })
        .collect();
    let u32col = |name: &str| -> Result<Vec<u32>, String> {
        Ok(out
            .frame
            .column(name)
            .map_err(s)?
            .as_any()
            .downcast_ref::<UInt32Array>()
            .ok_or_else(|| format!("{name} is not uint32"))?
            .values()
            .to_vec())
    };
    let (sw, sh) = (u32col("source_width")?, u32col("source_height")?);
    let paths = match out.frame.column("path") {
        Ok(c) => Some(
            c.as_any()
                .downcast_ref::<StringArray>()
                .ok_or("path is not utf8")?
                .iter()
                .map(|v| v.unwrap_or("").to_string())
                .collect(),
        ),
        Err(_) => None,
    };
    Ok(Rows {
        pixels,
        sources: sw.into_iter().zip(sh).collect(),
        paths,
    })
}

/// Runs a job over `files` and checks what every job must hold: one row per file in order,
/// nulls exactly for the failures, null count, failures in row order, paths.
pub(crate) fn run_job(
    engine: &Engine,
    files: &[PathBuf],
    spec: &ResizeSpec,
    encode: Option<&EncodeSpec>,
    opts: &RunOptions,
) -> Result<(ResizeOutput, Rows), String> {
    let out = engine
        .resize_paths(files, spec, encode, opts)
        .map_err(|e| format!("resize_paths: {e}"))?;
    let rows = rows_of(&out, spec)?;
    ensure!(
        out.images() == files.len() && rows.pixels.len() == files.len(),
        "{} rows for {} files",
        out.images(),
        files.len()
    );
    let failed_rows: Vec<usize> = out.failed.iter().map(|f| f.row).collect();
    let null_rows: Vec<usize> = (0..files.len())
        .filter(|&r| rows.pixels[r].is_none())
        .collect();
    ensure!(
        failed_rows == null_rows,
        "failed rows {failed_rows:?} but null rows {null_rows:?}"
    );
    let col = out.frame.column("image").map_err(s)?;
    ensure!(
        col.null_count() == out.failed.len(),
        "null_count {} for {} failures",
        col.null_count(),
        out.failed.len()
    );
    for f in &out.failed {
        ensure!(
            f.path == files[f.row].display().to_string(),
            "failure of row {} names {}",
            f.row,
            f.path
        );
        ensure!(
            rows.sources[f.row] == (0, 0),
            "failed row {} has a source size",
            f.row
        );
    }
    let paths = rows.paths.as_ref().ok_or("no path column")?;
    for (r, p) in files.iter().enumerate() {
        ensure!(
            paths[r] == p.display().to_string(),
            "row {r} path {}",
            paths[r]
        );
    }
    Ok((out, rows))
}

/// Each row done by the workers must be byte-identical to the same image through
/// `resize_image` in this process: the job path is the library path.
pub(crate) fn same_as_library(files: &[PathBuf], rows: &Rows, spec: &ResizeSpec) -> TestResult {
    for (r, f) in files.iter().enumerate() {
        let Some(got) = &rows.pixels[r] else { continue };
        let bytes = std::fs::read(f).map_err(s)?;
        let (want, source) = resize_image(&bytes, spec)
            .map_err(|e| format!("{}: library path failed: {e}", f.display()))?;
        ensure!(
            got == &want,
            "{}: job pixels differ from resize_image (max diff {})",
            f.display(),
            max_diff(got, &want)
        );
        ensure!(
            rows.sources[r] == source,
            "{}: source {:?} vs {:?}",
            f.display(),
            rows.sources[r],
            source
        );
    }
    Ok(())
}
