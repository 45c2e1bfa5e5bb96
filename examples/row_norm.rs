//! Row L2 norms of a `.npy` matrix with the library API, written back as `.npy`.
//!
//! ```sh
//! cargo run --release -p shmframe --example row_norm -- IN.npy OUT.npy [WORKERS]
//! ```
//! Without arguments it makes a small random matrix in a temporary directory first.

use std::path::PathBuf;

use arrow_array::{Array, Float32Array, Float64Array};
use shmframe::{Engine, RowKernel, npy};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Spawn-mode workers re-execute this binary: let them in first.
    if let Some(code) = shmframe::spawned_worker_main(&shmframe::KernelRegistry::new()) {
        std::process::exit(code);
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let workers = args.get(2).and_then(|w| w.parse().ok()).unwrap_or(2);
    // The pool is forked before anything else starts a thread.
    let engine = Engine::builder().workers(workers).build()?;
    let (input, output) = match (args.first(), args.get(1)) {
        (Some(i), Some(o)) => (PathBuf::from(i), PathBuf::from(o)),
        _ => {
            let dir =
                std::env::temp_dir().join(format!("shmframe-row-norm-{}", std::process::id()));
            std::fs::create_dir_all(&dir)?;
            let x: Vec<f64> = (0..100_000u64 * 8)
                .map(|i| ((i * 7919) % 1000) as f64 / 100.0 - 5.0)
                .collect();
            npy::write_npy_f64(dir.join("x.npy"), 100_000, 8, &x)?;
            (dir.join("x.npy"), dir.join("norms.npy"))
        }
    };
    let frame = engine.frame_from_npy(&input)?; // mapped in place when aligned: no load step
    let norms = engine.run(RowKernel::L2, &frame, shmframe::MATRIX_COLUMN)?;
    let col = norms.batch().column(0);
    if let Some(v) = col.as_any().downcast_ref::<Float64Array>() {
        npy::write_npy_typed(&output, &[v.len()], v.values())?;
    } else if let Some(v) = col.as_any().downcast_ref::<Float32Array>() {
        npy::write_npy_typed(&output, &[v.len()], v.values())?;
    }
    println!(
        "{} rows -> {} (norms were computed in {})",
        norms.num_rows(),
        output.display(),
        norms.path().display()
    );
    Ok(())
}
