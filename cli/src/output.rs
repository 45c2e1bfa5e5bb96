//! Writing a result frame to a file (`.npy`, `.arrow`, `.parquet`) and reading its values.

use std::path::Path;

use anyhow::{Context, Result};
use arrow_array::{Array, ArrayRef, FixedSizeListArray, Float32Array, Float64Array, RecordBatch};
use arrow_schema::DataType;

use crate::errors::bad_input;

/// The values of a float column (a vector, or the flat values of a FixedSizeList matrix) as
/// f64, with the row width.
pub(crate) fn float_values(col: &ArrayRef) -> Option<(Vec<f64>, usize)> {
    first_float_values(col, usize::MAX).map(|(v, width, _)| (v, width))
}

/// The first `n` of [`float_values`], the row width and how many values there are in all:
/// what a summary shows, without copying a large result.
pub(crate) fn first_float_values(col: &ArrayRef, n: usize) -> Option<(Vec<f64>, usize, usize)> {
    let (values, width) = match col.data_type() {
        DataType::FixedSizeList(_, w) => {
            let fsl = col.as_any().downcast_ref::<FixedSizeListArray>()?;
            let start = fsl.offset() * *w as usize;
            let vals = fsl.values().slice(start, fsl.len() * *w as usize);
            (vals, *w as usize)
        }
        _ => (col.clone(), 1),
    };
    let total = values.len();
    let values = values.slice(0, n.min(total));
    let v = if let Some(a) = values.as_any().downcast_ref::<Float64Array>() {
        a.values().to_vec()
    } else if let Some(a) = values.as_any().downcast_ref::<Float32Array>() {
        a.values().iter().map(|&x| f64::from(x)).collect()
    } else {
        return None;
    };
    Some((v, width, total))
}

/// Writes the first column of `batch` as `.npy` (1-D for a vector, 2-D for a matrix).
fn write_npy(batch: &RecordBatch, path: &Path) -> Result<()> {
    let col = batch.column(0);
    let rows = col.len();
    let (values, shape): (ArrayRef, Vec<usize>) = match col.data_type() {
        DataType::FixedSizeList(_, w) => {
            let fsl = col
                .as_any()
                .downcast_ref::<FixedSizeListArray>()
                .context("FixedSizeList column")?;
            let w = *w as usize;
            let vals = fsl.values().slice(fsl.offset() * w, rows * w);
            (vals, vec![rows, w])
        }
        _ => (col.clone(), vec![rows]),
    };
    let width = shape.get(1).copied().unwrap_or(1);
    if let Some(a) = values.as_any().downcast_ref::<Float64Array>() {
        let v = nan_for_nulls(col, a.values(), width, f64::NAN);
        shmframe::npy::write_npy_typed(path, &shape, &v)?;
    } else if let Some(a) = values.as_any().downcast_ref::<Float32Array>() {
        let v = nan_for_nulls(col, a.values(), width, f32::NAN);
        shmframe::npy::write_npy_typed(path, &shape, &v)?;
    } else {
        anyhow::bail!("cannot write a {} column as .npy", col.data_type());
    }
    Ok(())
}

/// `.npy` has no nulls: the values of null rows (`width` per row) become NaN. Borrows when
/// there is no null row.
fn nan_for_nulls<'a, T: Copy>(
    col: &ArrayRef,
    values: &'a [T],
    width: usize,
    nan: T,
) -> std::borrow::Cow<'a, [T]> {
    let Some(nulls) = col.logical_nulls().filter(|n| n.null_count() > 0) else {
        return std::borrow::Cow::Borrowed(values);
    };
    let mut v = values.to_vec();
    for row in nulls
        .iter()
        .enumerate()
        .filter(|(_, valid)| !valid)
        .map(|(r, _)| r)
    {
        v[row * width..(row + 1) * width].fill(nan);
    }
    std::borrow::Cow::Owned(v)
}

/// Writes `batch` to `path`, the format chosen by the extension.
pub(crate) fn write_batch(batch: &RecordBatch, path: &Path) -> Result<()> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let create =
        || std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()));
    match ext.as_str() {
        "npy" => write_npy(batch, path),
        "arrow" | "feather" | "ipc" => {
            let mut w = arrow_ipc::writer::FileWriter::try_new(create()?, &batch.schema())?;
            w.write(batch)?;
            w.finish()?;
            Ok(())
        }
        "parquet" | "pq" => {
            let mut w = parquet::arrow::ArrowWriter::try_new(create()?, batch.schema(), None)?;
            w.write(batch)?;
            w.close()?;
            Ok(())
        }
        _ => Err(bad_input(format!(
            "output {}: unknown file type (expected .npy, .arrow or .parquet)",
            path.display()
        ))),
    }
    .with_context(|| format!("cannot write {}", path.display()))
}
