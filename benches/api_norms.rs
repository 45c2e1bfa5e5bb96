//! The Rust API's row-L2 job over a frame another process made, for
//! `benches/compare/package.py`, which compares it side by side with the same job called from
//! Python on the same segment:
//!
//! ```sh
//! cargo bench -p shmframe --bench api_norms -- shm:NAME [REPS] [WORKERS]
//! ```
//!
//! Attaches the frame (`shm:NAME`, or a file), runs one warm-up job, then REPS jobs (default 5)
//! with WORKERS workers (default 2), dropping each result before the next (so outputs are
//! recycled, as the Python caller's are), and prints one line per job: the call's seconds and
//! the job's own seconds. Without a source it prints this usage and exits 0 (so a plain
//! `cargo bench` passes through it).

use std::time::Instant;

use shmframe::{Engine, Kernel, KernelRegistry, RowKernel, RunOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if let Some(code) = shmframe::spawned_worker_main(&KernelRegistry::new()) {
        std::process::exit(code);
    }
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let Some(source) = args.first() else {
        eprintln!(
            "usage: api_norms shm:NAME|FILE [REPS] [WORKERS] (see benches/compare/package.py)"
        );
        return Ok(());
    };
    let reps: usize = args.get(1).map_or(Ok(5), |s| s.parse())?;
    let workers: usize = args.get(2).map_or(Ok(2), |s| s.parse())?;
    let engine = Engine::builder().workers(workers).build()?;
    let frame = engine.frame_from_source(source)?;
    let columns = frame.default_columns();
    let names: Vec<&str> = columns.iter().map(String::as_str).collect();
    let opts = RunOptions::default();
    let job = || engine.run_full(Kernel::Row(RowKernel::L2), &frame, &names, None, &opts);
    drop(job()?);
    for _ in 0..reps {
        let t = Instant::now();
        let (out, stats) = job()?;
        let call = t.elapsed().as_secs_f64();
        drop(out);
        println!("{call:.9} {:.9}", stats.seconds);
    }
    Ok(())
}
