//! `shmframe gen matrix`: reproducible random matrices, generated in parallel with rayon.
//!
//! No engine is built here, so a rayon pool is allowed (see the fork rule in `main.rs`).

use std::io::IsTerminal;
use std::sync::Arc;

use anyhow::{Context, Result};
use arrow_array::{ArrayRef, FixedSizeListArray, Float32Array, Float64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use clap::ValueEnum;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;

use crate::cli::{Dtype, GenMatrixArgs};
use crate::errors::bad_input;
use crate::rng::MatrixRng;

/// Elements per parallel task.
const TASK: usize = 1 << 16;

/// A progress bar on stderr when it is a terminal and the job is big enough to wait for.
fn progress(total_bytes: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() || total_bytes < (64 << 20) {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{msg} [{bar:40}] {bytes}/{total_bytes} ({eta})")
    {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message("generating");
    pb
}

fn fill_f64(rng: &MatrixRng, first: usize, out: &mut [f64]) {
    out.par_chunks_mut(TASK)
        .enumerate()
        .for_each(|(k, c)| rng.fill_f64((first + k * TASK) as u64, c));
}

fn fill_f32(rng: &MatrixRng, first: usize, out: &mut [f32]) {
    out.par_chunks_mut(TASK)
        .enumerate()
        .for_each(|(k, c)| rng.fill_f32((first + k * TASK) as u64, c));
}

/// Runs the command.
pub(crate) fn run(a: &GenMatrixArgs) -> Result<()> {
    if a.cols == 0 {
        return Err(bad_input("--cols must be at least 1"));
    }
    let n = a
        .rows
        .checked_mul(a.cols)
        .ok_or_else(|| bad_input("--rows x --cols overflows"))?;
    let item = match a.dtype {
        Dtype::F32 => 4,
        Dtype::F64 => 8,
    };
    let ext = a
        .out
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let rng = MatrixRng::new(a.seed, a.dist);
    let pb = progress((n * item) as u64);
    let shape = [a.rows, a.cols];
    match ext.as_str() {
        "npy" => {
            let res = match a.dtype {
                Dtype::F64 => shmframe::npy::write_npy_typed_with(&a.out, &shape, |first, b| {
                    fill_f64(&rng, first, b);
                    pb.inc((b.len() * 8) as u64);
                }),
                Dtype::F32 => shmframe::npy::write_npy_typed_with(&a.out, &shape, |first, b| {
                    fill_f32(&rng, first, b);
                    pb.inc((b.len() * 4) as u64);
                }),
            };
            res.with_context(|| format!("cannot write {}", a.out.display()))?;
        }
        "arrow" | "feather" | "ipc" => {
            let (values, dt): (ArrayRef, DataType) = match a.dtype {
                Dtype::F64 => {
                    let mut v = vec![0.0f64; n];
                    fill_f64(&rng, 0, &mut v);
                    (Arc::new(Float64Array::from(v)), DataType::Float64)
                }
                Dtype::F32 => {
                    let mut v = vec![0.0f32; n];
                    fill_f32(&rng, 0, &mut v);
                    (Arc::new(Float32Array::from(v)), DataType::Float32)
                }
            };
            pb.inc((n * item) as u64);
            let item_field = Arc::new(Field::new("item", dt, false));
            let cols = i32::try_from(a.cols).map_err(|_| bad_input("--cols is too large"))?;
            let list = FixedSizeListArray::try_new(item_field.clone(), cols, values, None)?;
            let schema = Arc::new(Schema::new(vec![Field::new(
                shmframe::MATRIX_COLUMN,
                DataType::FixedSizeList(item_field, cols),
                false,
            )]));
            let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(list)])?;
            let file = std::fs::File::create(&a.out)
                .with_context(|| format!("cannot create {}", a.out.display()))?;
            let mut w =
                arrow_ipc::writer::FileWriter::try_new(std::io::BufWriter::new(file), &schema)?;
            w.write(&batch)?;
            w.finish()?;
        }
        _ => {
            return Err(bad_input(format!(
                "output {}: unknown file type (expected .npy or .arrow)",
                a.out.display()
            )));
        }
    }
    pb.finish_and_clear();
    let name = |v: Option<clap::builder::PossibleValue>| {
        v.map(|p| p.get_name().to_string()).unwrap_or_default()
    };
    eprintln!(
        "wrote {} ({} x {} {}, seed {}, {})",
        a.out.display(),
        a.rows,
        a.cols,
        name(a.dtype.to_possible_value()),
        a.seed,
        name(a.dist.to_possible_value())
    );
    Ok(())
}
