//! `shmframe demo`: the pool against a single process on one matrix, cross-checked.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use shmframe::kernels::{Accumulate, apply_rows};
use shmframe::npy::NpyFile;
use shmframe::{Engine, Kernel, RowKernel, RunOptions, SegmentDir};

use crate::cli::DemoArgs;
use crate::output::float_values;

const DEFAULT_ROWS: usize = 2_000_000;
const DEFAULT_COLS: usize = 32;
const SEED: u64 = 42;
const TIMED_RUNS: usize = 5;
const BASELINE_RUNS: usize = 3;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn dataset_path(rows: usize, cols: usize) -> PathBuf {
    let name = if rows == DEFAULT_ROWS && cols == DEFAULT_COLS {
        "default-f64-2Mx32.npy".to_string()
    } else {
        format!("demo-f64-{rows}x{cols}.npy")
    };
    PathBuf::from("datasets").join(name)
}

/// Generates the dataset in a child process (`shmframe gen matrix`): its rayon threads stay
/// out of this process, which has forked a pool and must stay single-threaded.
fn generate(path: &PathBuf, rows: usize, cols: usize) -> Result<()> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    eprintln!(
        "generating {} ({rows} x {cols} f64, seed {SEED})…",
        path.display()
    );
    let exe = std::env::current_exe().context("cannot find the shmframe executable")?;
    let status = Command::new(exe)
        .args(["gen", "matrix", "--dtype", "f64", "--dist", "gaussian"])
        .args(["--rows", &rows.to_string(), "--cols", &cols.to_string()])
        .args(["--seed", &SEED.to_string(), "--out"])
        .arg(path)
        .env_remove(shmframe::WORKER_ENV)
        .status()
        .context("cannot run `shmframe gen matrix`")?;
    if !status.success() {
        bail!("`shmframe gen matrix` failed ({status})");
    }
    Ok(())
}

/// Runs the command.
pub(crate) fn run(a: &DemoArgs, dir: &SegmentDir) -> Result<()> {
    let rows = a.rows.unwrap_or(DEFAULT_ROWS);
    let cols = a.cols.unwrap_or(DEFAULT_COLS);
    // The pool first, while this process has one thread.
    let mut builder = Engine::builder().segment_dir(dir.clone());
    if let Some(n) = a.workers {
        builder = builder.workers(n);
    }
    let engine = builder.build().context("cannot start the worker pool")?;
    let workers = engine.workers();

    let path = dataset_path(rows, cols);
    if !path.exists() {
        generate(&path, rows, cols)?;
    }
    let frame = engine
        .frame_from_npy(&path)
        .with_context(|| format!("cannot load {}", path.display()))?;
    let kernel = RowKernel::L2;

    // Pool: one warm-up, then the median of TIMED_RUNS.
    let mut times = Vec::new();
    let mut input_bytes = 0;
    let mut result = None;
    for i in 0..=TIMED_RUNS {
        let (out, stats) = engine
            .run_full(
                Kernel::Row(kernel.clone()),
                &frame,
                &[shmframe::MATRIX_COLUMN],
                None,
                &RunOptions::default(),
            )
            .context("the pool job failed")?;
        if i > 0 {
            times.push(stats.seconds);
        }
        input_bytes = stats.input_bytes;
        result = Some(out);
    }
    let pool_s = median(times);
    let pooled = result
        .as_ref()
        .and_then(|f| float_values(f.batch().column(0)))
        .map(|(v, _)| v)
        .context("unexpected output type")?;

    // Single process: the same kernel over the whole matrix, here, no pool.
    let npy = NpyFile::open(&path)?;
    let (rows, cols) = (npy.rows(), npy.cols());
    let data = npy
        .as_f64()
        .with_context(|| format!("{} is not an aligned f64 matrix", path.display()))?;
    let mut single = vec![0.0f64; rows];
    let mut base_times = Vec::new();
    for i in 0..=BASELINE_RUNS {
        let t = Instant::now();
        apply_rows(&kernel, Accumulate::F64, data, cols, None, &mut single)?;
        if i > 0 {
            base_times.push(t.elapsed().as_secs_f64());
        }
    }
    let single_s = median(base_times);

    let max_rel = pooled
        .iter()
        .zip(&single)
        .map(|(p, s)| {
            let d = (p - s).abs();
            if d == 0.0 {
                0.0
            } else {
                d / s.abs().max(p.abs())
            }
        })
        .fold(0.0f64, f64::max);
    if pooled.len() != single.len() || max_rel > 1e-12 {
        bail!(
            "results disagree: pool {} rows, single {} rows, max relative difference {max_rel:e}",
            pooled.len(),
            single.len()
        );
    }

    let gb = input_bytes as f64 / 1e9;
    println!("shmframe demo: {kernel} on {}", path.display());
    println!("  rows                 {rows}");
    println!("  cols                 {cols}");
    println!(
        "  bytes                {input_bytes} ({})",
        shmframe_ipc::human_bytes(input_bytes as u64)
    );
    println!(
        "  shmframe, {workers} workers   {:>9.4} s  {:>7.2} GB/s  (median of {TIMED_RUNS} after 1 warm-up)",
        pool_s,
        gb / pool_s
    );
    println!(
        "  single process       {:>9.4} s  {:>7.2} GB/s  (median of {BASELINE_RUNS} after 1 warm-up)",
        single_s,
        gb / single_s
    );
    println!("  speedup              {:>9.2}x", single_s / pool_s);
    println!("  max relative diff    {max_rel:.2e} (results agree)");
    Ok(())
}
