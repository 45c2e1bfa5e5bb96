//! The engine's own benchmark (issue 3): row L2 norm against the machine's memory-read
//! bandwidth, empty-job round trip, pool start, and the workers' private memory during a job.
//!
//! Run: `cargo bench -p shmframe --bench pool` (`-- --quick` for a short run; `-- --rows N
//! --cols D` for another f64 shape; `-- --json` adds one JSON line of the medians, for
//! scripts such as `benches/cli_e2e.sh`). Prints one table; every figure is a median over
//! repetitions measured side by side in this run.
//!
//! `harness = false` and no threads before the pool is forked: the engine refuses to fork a
//! multi-threaded process.

use std::time::Instant;

use shmframe::kernels::{Accumulate, apply_rows};
use shmframe::{Engine, JobStats, Kernel, RowKernel, RunOptions, SharedFrame};

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// Sum of squares over `x` with `threads` threads: the read-bandwidth probe.
fn probe(x: &[f64], threads: usize) -> f64 {
    let per = x.len().div_ceil(threads);
    std::thread::scope(|s| {
        let hs: Vec<_> = x
            .chunks(per)
            .map(|c| {
                s.spawn(move || {
                    let mut acc = [0.0f64; 8];
                    for w in c.chunks_exact(8) {
                        for i in 0..8 {
                            acc[i] += w[i] * w[i];
                        }
                    }
                    acc.iter().sum::<f64>()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum()
    })
}

/// Private dirty memory of `pid` outside shared-memory mappings. (smaps counts a page of a
/// MAP_SHARED segment as "private" while only one process maps it, e.g. the output rows a
/// worker just wrote into shared memory; those are not copies, so they are excluded.)
fn private_dirty_kb(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/smaps")).ok()?;
    let mut total = 0;
    let mut shm = false;
    for l in s.lines() {
        let first = l.split_whitespace().next().unwrap_or("");
        if first.contains('-')
            && first.chars().next().is_some_and(|c| c.is_ascii_hexdigit())
            && !first.ends_with(':')
        {
            shm = l.contains("/dev/shm/") || l.contains("/memfd:");
        } else if let Some(v) = l.strip_prefix("Private_Dirty:")
            && !shm
        {
            total += v
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Some(total)
}

/// One L2 job through `engine.run_full`: the call's wall time, the job's statistics, and the
/// result's values (the output frame is dropped before returning, so a recycling engine gets
/// its segment back for the next job).
fn timed_job(engine: &Engine, frame: &SharedFrame) -> (f64, JobStats, Vec<f64>) {
    let t = Instant::now();
    let (out, stats) = engine
        .run_full(
            Kernel::Row(RowKernel::L2),
            frame,
            &["x"],
            None,
            &RunOptions::default(),
        )
        .unwrap();
    let wall = t.elapsed().as_secs_f64();
    let values = out
        .batch()
        .column(0)
        .as_any()
        .downcast_ref::<arrow_array::Float64Array>()
        .unwrap()
        .values()
        .to_vec();
    (wall, stats, values)
}

/// The value after `--flag` on the command line.
fn arg(flag: &str) -> Option<usize> {
    let args: Vec<String> = std::env::args().collect();
    let i = args.iter().position(|a| a == flag)?;
    let v = args
        .get(i + 1)
        .unwrap_or_else(|| panic!("{flag} needs a number"));
    Some(
        v.parse()
            .unwrap_or_else(|_| panic!("{flag} {v}: not a number")),
    )
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let json = std::env::args().any(|a| a == "--json");
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let (rows, cols) = if quick { (1 << 19, 16) } else { (1 << 21, 16) }; // 64 / 256 MiB of f64
    let (rows, cols) = (arg("--rows").unwrap_or(rows), arg("--cols").unwrap_or(cols));
    let reps = if quick { 5 } else { 15 };

    // Pool start, before anything else (fork needs a single-threaded process).
    let mut starts = Vec::new();
    for _ in 0..if quick { 5 } else { 20 } {
        let t = Instant::now();
        let e = Engine::builder().workers(workers).build().expect("engine");
        starts.push(t.elapsed().as_secs_f64());
        drop(e);
    }
    let engine = Engine::builder().workers(workers).build().expect("engine");
    // The same job with every output in a fresh segment (what a one-off job, such as one
    // `shmframe run` command, gets): no recycling.
    let fresh = Engine::builder()
        .workers(workers)
        .recycle_outputs(0)
        .build()
        .expect("engine");

    let mut x = vec![0.0f64; rows * cols];
    let mut s = 0x9E3779B97F4A7C15u64;
    for v in x.iter_mut() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        *v = (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
    }
    let frame = engine.frame_from_slice(&x, cols).expect("frame");
    drop(x);
    let bytes = (rows * cols * 8) as f64;
    // The probe reads the very bytes the job reads: the frame's values, in shared memory.
    let list = frame
        .batch()
        .column(0)
        .as_any()
        .downcast_ref::<arrow_array::FixedSizeListArray>()
        .unwrap()
        .clone();
    let vals = list
        .values()
        .as_any()
        .downcast_ref::<arrow_array::Float64Array>()
        .unwrap()
        .clone();
    let data: &[f64] = vals.values();

    // Warm up: page tables of the workers' mappings, caches.
    let mut want = vec![0.0; rows];
    apply_rows(&RowKernel::L2, Accumulate::F64, data, cols, None, &mut want).unwrap();
    for _ in 0..2 {
        engine.run(RowKernel::L2, &frame, "x").unwrap();
        fresh.run(RowKernel::L2, &frame, "x").unwrap();
    }
    // Interleaved repetitions: probe(1), probe(N), single-process kernel, engine job.
    let (mut p1, mut pn, mut single, mut job) = (vec![], vec![], vec![], vec![]);
    let (mut run_wall, mut fresh_job, mut fresh_wall) = (vec![], vec![], vec![]);
    let mut reused = 0;
    let mut dirty_kb = 0u64;
    for _ in 0..reps {
        let t = Instant::now();
        std::hint::black_box(probe(data, 1));
        p1.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        std::hint::black_box(probe(data, workers));
        pn.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        apply_rows(&RowKernel::L2, Accumulate::F64, data, cols, None, &mut want).unwrap();
        single.push(t.elapsed().as_secs_f64());
        let (wall, stats, got) = timed_job(&engine, &frame);
        run_wall.push(wall);
        job.push(stats.seconds);
        reused += usize::from(stats.output_reused);
        dirty_kb = dirty_kb.max(
            engine
                .worker_pids()
                .iter()
                .filter_map(|p| private_dirty_kb(*p))
                .sum(),
        );
        assert_eq!(
            got, want,
            "engine result differs from the single-process kernel"
        );
        let (wall, stats, got) = timed_job(&fresh, &frame);
        fresh_wall.push(wall);
        fresh_job.push(stats.seconds);
        assert!(!stats.output_reused);
        assert_eq!(got, want, "fresh-output result differs");
    }
    drop(fresh);

    // Empty-job round trip on the warm pool.
    let n_rt = if quick { 5_000 } else { 50_000 };
    let mut rt = Vec::with_capacity(n_rt);
    for _ in 0..200 {
        engine.run_empty().unwrap();
    }
    for _ in 0..n_rt {
        let t = Instant::now();
        engine.run_empty().unwrap();
        rt.push(t.elapsed().as_secs_f64());
    }

    let gb = |secs: f64| bytes / secs / 1e9;
    let (mp1, mpn, ms, mj) = (
        median(&mut p1),
        median(&mut pn),
        median(&mut single),
        median(&mut job),
    );
    println!(
        "shmframe pool benchmark: {workers} workers, matrix {rows} x {cols} f64 ({:.0} MiB) in shared memory, {reps} reps",
        bytes / 1048576.0
    );
    println!();
    println!("| measure | median | GB/s | vs probe({workers} thr) |");
    println!("|---|---|---|---|");
    println!(
        "| read-bandwidth probe, 1 thread | {:.2} ms | {:.2} | {:.0}% |",
        mp1 * 1e3,
        gb(mp1),
        100.0 * mpn / mp1
    );
    println!(
        "| read-bandwidth probe, {workers} threads | {:.2} ms | {:.2} | 100% |",
        mpn * 1e3,
        gb(mpn)
    );
    println!(
        "| L2 norm, single process | {:.2} ms | {:.2} | {:.0}% |",
        ms * 1e3,
        gb(ms),
        100.0 * mpn / ms
    );
    let row = |what: &str, secs: f64| {
        println!(
            "| L2 norm, shmframe {workers} workers ({what}) | {:.2} ms | {:.2} | {:.0}% |",
            secs * 1e3,
            gb(secs),
            100.0 * mpn / secs
        );
    };
    let (mw, mfj, mfw) = (
        median(&mut run_wall),
        median(&mut fresh_job),
        median(&mut fresh_wall),
    );
    row("job: post to done; recycled output", mj);
    row(
        "`run` call: output segment, job, frame; recycled output",
        mw,
    );
    row("job: post to done; fresh output segment", mfj);
    row("`run` call: output segment, job, frame; fresh output", mfw);
    println!();
    let (rt50, rt99) = (pct(&mut rt, 0.5), pct(&mut rt, 0.99));
    println!("| pool | median | p99 |");
    println!("|---|---|---|");
    println!(
        "| empty-job round trip ({n_rt} jobs) | {:.1} us | {:.1} us |",
        rt50 * 1e6,
        rt99 * 1e6
    );
    let sm = median(&mut starts);
    println!(
        "| pool start ({workers} workers forked and ready) | {:.2} ms | {:.2} ms |",
        sm * 1e3,
        pct(&mut starts, 0.99) * 1e3
    );
    println!();
    println!(
        "recycled output: {reused} of {reps} jobs wrote into the previous job's output segment"
    );
    let dirty_pct = 100.0 * dirty_kb as f64 * 1024.0 / bytes;
    println!(
        "workers' Private_Dirty after the jobs: {dirty_kb} KiB in total = {dirty_pct:.3}% of the {:.0} MiB input",
        bytes / 1048576.0
    );
    if json {
        println!(
            "{{\"rows\":{rows},\"cols\":{cols},\"workers\":{workers},\"probe1_s\":{mp1},\"proben_s\":{mpn},\"single_s\":{ms},\"job_s\":{mj},\"run_s\":{mw},\"fresh_job_s\":{mfj},\"fresh_run_s\":{mfw},\"rt_median_s\":{rt50},\"rt_p99_s\":{rt99},\"start_s\":{sm},\"private_dirty_pct\":{dirty_pct}}}"
        );
    }
}
