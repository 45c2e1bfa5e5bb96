//! A pipeline of jobs chained through shared frames, no copies: normalise the rows, take the
//! cosine similarity against a query, keep the top rows.
//!
//! ```sh
//! cargo run --release -p shmframe --example pipeline
//! ```

use arrow_array::{Array, Float64Array};
use shmframe::{Engine, RowKernel};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if let Some(code) = shmframe::spawned_worker_main(&shmframe::KernelRegistry::new()) {
        std::process::exit(code);
    }
    let engine = Engine::builder().workers(2).build()?;
    let (rows, cols) = (200_000, 64);
    // A reproducible pseudo-random matrix (xorshift).
    let mut s = 0x2545F4914F6CDD1Du64;
    let x: Vec<f64> = (0..rows * cols)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        })
        .collect();
    let frame = engine.frame_from_slice(&x, cols)?;
    drop(x);
    // 1. Unit rows: a shared matrix, input of the next job.
    let unit = engine.run(RowKernel::NormalizeL2, &frame, "x")?;
    // 2. Cosine against a query (on unit rows this is a dot product; cosine is used to show it).
    let query: Vec<f64> = (0..cols)
        .map(|j| if j % 2 == 0 { 1.0 } else { -1.0 })
        .collect();
    let cos = engine.run_with_query(RowKernel::Cosine, &unit, "x", &query)?;
    // 3. The top rows, read straight from the shared output column.
    let scores = cos
        .batch()
        .column(0)
        .as_any()
        .downcast_ref::<Float64Array>()
        .expect("f64 scores")
        .clone();
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|a, b| scores.value(*b).total_cmp(&scores.value(*a)));
    println!("top 5 rows by cosine similarity:");
    for i in idx.iter().take(5) {
        println!("  row {i:>7}  {:+.4}", scores.value(*i));
    }
    println!(
        "frames: {} -> {} -> {}",
        frame.path().display(),
        unit.path().display(),
        cos.path().display()
    );
    Ok(())
}
