//! `shmframe run`: one kernel over one input with the worker pool.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use arrow_schema::DataType;
use shmframe::npy::{NpyDtype, NpyFile};
use shmframe::{Kernel, RowKernel, RunOptions, SegmentDir, SharedFrame};

use super::{check_source, pool_builder, type_name};
use crate::cli::RunArgs;
use crate::errors::bad_input;
use crate::output::{first_float_values, write_batch};

/// Reads a query vector: a 1-D (or 1 x n) f64 or f32 `.npy`.
fn read_query(path: &Path) -> Result<Vec<f64>> {
    if !path.exists() {
        return Err(bad_input(format!(
            "query file {} does not exist",
            path.display()
        )));
    }
    let f = NpyFile::open(path)?;
    let shape = f.shape();
    if shape.len() == 2 && shape[0] != 1 {
        return Err(bad_input(format!(
            "query {} has shape {shape:?}; expected a vector",
            path.display()
        )));
    }
    let bytes = f.data_bytes();
    Ok(match f.dtype() {
        NpyDtype::F64 => bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect(),
        NpyDtype::F32 => bytes
            .chunks_exact(4)
            .map(|c| f64::from(f32::from_le_bytes(c.try_into().expect("4 bytes"))))
            .collect(),
        d => {
            return Err(bad_input(format!(
                "query {} has dtype {d}; expected f32 or f64",
                path.display()
            )));
        }
    })
}

/// The default columns ([`SharedFrame::default_columns`]), or an error listing the columns.
pub(crate) fn default_columns(frame: &SharedFrame) -> Result<Vec<String>> {
    let columns = frame.default_columns();
    if columns.is_empty() {
        return Err(bad_input(format!(
            "nothing to compute on: the input has no matrix column (`x` or a FixedSizeList) \
             and no numeric column (columns: {}); name them with --column or --columns",
            frame.column_names().join(", ")
        )));
    }
    Ok(columns)
}

/// Width and element type of the selected input columns.
fn shape_of(frame: &SharedFrame, columns: &[String]) -> Result<(usize, String)> {
    let mut types = Vec::new();
    for c in columns {
        let col = frame.column(c)?;
        let t = match col.data_type() {
            DataType::FixedSizeList(f, w) if columns.len() == 1 => {
                return Ok((*w as usize, type_name(f.data_type())));
            }
            t => type_name(t),
        };
        if !types.contains(&t) {
            types.push(t);
        }
    }
    Ok((columns.len(), types.join(",")))
}

/// Runs the command.
pub(crate) fn run(a: &RunArgs, dir: &SegmentDir, started: Instant) -> Result<()> {
    // Validate everything that needs no engine first: bad input fails fast with exit 2.
    let kernel: RowKernel = a.kernel.parse()?;
    check_source(&a.input)?;
    if let Some(out) = &a.out {
        let ext = out.extension().and_then(|e| e.to_str()).unwrap_or("");
        if !["npy", "arrow", "feather", "ipc", "parquet", "pq"].contains(&ext) {
            return Err(bad_input(format!(
                "output {}: unknown file type (expected .npy, .arrow or .parquet)",
                out.display()
            )));
        }
    }
    let query = a.query.as_deref().map(read_query).transpose()?;
    if kernel.needs_query() && query.is_none() {
        return Err(bad_input(format!(
            "kernel {kernel} needs a query vector: pass --query FILE.npy"
        )));
    }
    if !kernel.needs_query() && query.is_some() {
        return Err(bad_input(format!("kernel {kernel} takes no --query")));
    }
    if a.pool.workers == Some(0) {
        return Err(bad_input("--workers must be at least 1"));
    }
    if a.chunk_rows == Some(0) {
        return Err(bad_input("--chunk-rows must be at least 1"));
    }

    // The engine forks its workers now, while this process is still single-threaded.
    let mut builder = pool_builder(&a.pool, dir);
    if let Some(limit) = a.load_limit {
        builder = builder.load_limit(limit);
    }
    let engine = builder.build().context("cannot start the worker pool")?;

    let frame = engine
        .frame_from_source(&a.input)
        .with_context(|| format!("cannot load {}", a.input))?;
    let columns: Vec<String> = match (&a.columns, &a.column) {
        (Some(cs), _) => cs.iter().map(|c| c.trim().to_string()).collect(),
        (None, Some(c)) => vec![c.clone()],
        (None, None) => default_columns(&frame)?,
    };
    let (cols, dtype) = shape_of(&frame, &columns)?;
    if let Some(q) = &query
        && q.len() != cols
    {
        return Err(bad_input(format!(
            "wrong query length: the query has {} values but the input rows have {cols}",
            q.len()
        )));
    }
    let opts = RunOptions {
        chunk_rows: a.chunk_rows,
        deadline: a.pool.deadline_ms.map(Duration::from_millis),
        test_chunk_sleep: a.pool.test_chunk_sleep_ms.map(Duration::from_millis),
        ..RunOptions::default()
    };
    let names: Vec<&str> = columns.iter().map(String::as_str).collect();
    let (out, stats) = engine
        .run_full(
            Kernel::Row(kernel.clone()),
            &frame,
            &names,
            query.as_deref(),
            &opts,
        )
        .with_context(|| format!("{kernel} on {} failed", a.input))?;
    if let Some(path) = &a.out {
        write_batch(out.batch(), path)?;
    }
    let gbps = if stats.seconds > 0.0 {
        stats.input_bytes as f64 / stats.seconds / 1e9
    } else {
        0.0
    };
    if a.json {
        let v = serde_json::json!({
            "kernel": kernel.name(),
            "rows": stats.rows,
            "cols": cols,
            "dtype": dtype,
            "workers": engine.workers(),
            "seconds": stats.seconds,
            "total_seconds": started.elapsed().as_secs_f64(),
            "gb_per_s": gbps,
            "out": a.out.as_ref().map(|p| p.display().to_string()),
        });
        println!("{v}");
    } else {
        println!(
            "{kernel} on {} [{}]: {} rows x {cols} {dtype}, {} workers, {} chunks",
            a.input,
            columns.join(","),
            stats.rows,
            engine.workers(),
            stats.chunks
        );
        if let Some((vals, width, total)) = first_float_values(out.batch().column(0), 5) {
            let shown: Vec<String> = vals.iter().map(|v| format!("{v:.6}")).collect();
            let what = if width == 1 {
                "first values"
            } else {
                "first row starts"
            };
            let more = if total > vals.len() { ", …" } else { "" };
            println!("{what}: [{}{more}]", shown.join(", "));
        }
        println!(
            "job {:.4} s ({gbps:.2} GB/s over {}), total {:.3} s",
            stats.seconds,
            shmframe_ipc::human_bytes(stats.input_bytes as u64),
            started.elapsed().as_secs_f64()
        );
        if let Some(p) = &a.out {
            println!("wrote {}", p.display());
        }
    }
    Ok(())
}
