//! A user kernel: per-row range (max - min) and mean absolute deviation, two outputs per row.
//! Registered by name, so it runs in fork and in spawn mode.
//!
//! ```sh
//! cargo run --release -p shmframe --example user_kernel
//! ```

use arrow_array::{Array, FixedSizeListArray, Float64Array};
use shmframe::{Engine, Kernel, KernelRegistry, RowBlock, StartMethod, UserKernel};

struct RangeMad;

impl UserKernel for RangeMad {
    fn name(&self) -> &str {
        "range-mad"
    }

    fn output_cols(&self, _input_cols: usize) -> usize {
        2
    }

    fn run(&self, rows: RowBlock<'_>, out: &mut [f64]) -> Result<(), String> {
        let mut row = Vec::new();
        for i in 0..rows.rows() {
            rows.row_f64(i, &mut row);
            if row.is_empty() {
                return Err("rows must have at least one value".into());
            }
            let (lo, hi) = row
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
                    (l.min(*v), h.max(*v))
                });
            let mean = row.iter().sum::<f64>() / row.len() as f64;
            let mad = row.iter().map(|v| (v - mean).abs()).sum::<f64>() / row.len() as f64;
            out[2 * i] = hi - lo;
            out[2 * i + 1] = mad;
        }
        Ok(())
    }
}

fn registry() -> KernelRegistry {
    let mut r = KernelRegistry::new();
    r.register(RangeMad);
    r
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // In spawn mode the workers are this very executable: they need the same registry.
    if let Some(code) = shmframe::spawned_worker_main(&registry()) {
        std::process::exit(code);
    }
    let spawn = std::env::args().any(|a| a == "--spawn");
    let engine = Engine::builder()
        .workers(2)
        .registry(registry())
        .start_method(if spawn {
            StartMethod::Spawn { exe: None }
        } else {
            StartMethod::Fork
        })
        .build()?;
    let x: Vec<f64> = (0..10_000 * 16).map(|i| ((i * 37) % 101) as f64).collect();
    let frame = engine.frame_from_slice(&x, 16)?;
    let out = engine.run(Kernel::User("range-mad".into()), &frame, "x")?;
    let list = out
        .batch()
        .column(0)
        .as_any()
        .downcast_ref::<FixedSizeListArray>()
        .expect("2 values per row")
        .clone();
    let v = list
        .values()
        .as_any()
        .downcast_ref::<Float64Array>()
        .expect("f64")
        .clone();
    println!(
        "{} rows; row 0: range {} mad {:.3}",
        list.len(),
        v.value(0),
        v.value(1)
    );
    Ok(())
}
