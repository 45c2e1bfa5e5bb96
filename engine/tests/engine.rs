//! Engine tests with real forked workers and real segments.
//!
//! `harness = false`: libtest runs tests on threads, and the engine (rightly) refuses to fork
//! a multi-threaded process. main() lists every test in `common::tests!`, which runs them in
//! order on the main thread through libtest-mimic (filters and `--list` work as under libtest).
//! A test function left out of that list is dead code, denied below.

#![deny(dead_code)]

mod common;

use common::{TestResult, our_segments};
use std::time::Duration;

use arrow_array::{Array, FixedSizeListArray, Float32Array, Float64Array, Int32Array, RecordBatch};
use shmframe::kernels::{Accumulate, apply_rows, normalize_rows};
use shmframe::{
    Engine, EngineError, Kernel, RowBlock, RowKernel, RunOptions, SharedFrame, StartMethod,
    UserKernel,
};

fn lcg(seed: u64) -> impl FnMut() -> f64 {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 11) as f64 / (1u64 << 53) as f64) * 4.0 - 2.0
    }
}

fn matrix(rows: usize, cols: usize, seed: u64) -> Vec<f64> {
    let mut r = lcg(seed);
    (0..rows * cols).map(|_| r()).collect()
}

fn out_f64(f: &SharedFrame) -> Vec<f64> {
    let a = f.batch().column(0);
    a.as_any()
        .downcast_ref::<Float64Array>()
        .expect("f64 column")
        .values()
        .to_vec()
}

fn out_f32(f: &SharedFrame) -> Vec<f32> {
    let a = f.batch().column(0);
    a.as_any()
        .downcast_ref::<Float32Array>()
        .expect("f32 column")
        .values()
        .to_vec()
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= rel * a.abs().max(b.abs()).max(1e-300)
}

fn all_kernels() -> Vec<RowKernel> {
    vec![
        RowKernel::L1,
        RowKernel::L2,
        RowKernel::LInf,
        RowKernel::Sum,
        RowKernel::Mean,
        RowKernel::Min,
        RowKernel::Max,
        RowKernel::Var { ddof: 0 },
        RowKernel::Std { ddof: 1 },
        RowKernel::Dot,
        RowKernel::Cosine,
        RowKernel::NormalizeL2,
    ]
}

fn check_all_kernels(
    engine: &Engine,
    rows: usize,
    cols: usize,
    chunk: Option<usize>,
) -> TestResult {
    let x = matrix(rows, cols, rows as u64 * 31 + cols as u64);
    let q: Vec<f64> = matrix(1, cols, 7);
    let f64_frame = engine
        .frame_from_slice(&x, cols)
        .map_err(|e| e.to_string())?;
    let x32: Vec<f32> = x.iter().map(|v| *v as f32).collect();
    let a32 = ndarray::ArrayView2::from_shape((rows, cols), &x32[..]).unwrap();
    let f32_frame = engine.frame_from_ndarray(a32).map_err(|e| e.to_string())?;
    let q32: Vec<f32> = q.iter().map(|v| *v as f32).collect();
    let opts = RunOptions {
        chunk_rows: chunk,
        ..Default::default()
    };
    for k in all_kernels() {
        let query = k.needs_query().then_some(&q[..]);
        let (out, _) = engine
            .run_full(Kernel::Row(k.clone()), &f64_frame, &["x"], query, &opts)
            .map_err(|e| format!("{} f64: {e}", k.name()))?;
        let width = if k.output_is_matrix() { cols } else { 1 };
        let mut want = vec![0.0; rows * width];
        if k.output_is_matrix() {
            normalize_rows(&x, cols, &mut want).unwrap();
            let list = out
                .batch()
                .column(0)
                .as_any()
                .downcast_ref::<FixedSizeListArray>()
                .unwrap()
                .clone();
            let got = list
                .values()
                .as_any()
                .downcast_ref::<Float64Array>()
                .unwrap()
                .values()
                .to_vec();
            if got.len() != want.len() || got.iter().zip(&want).any(|(a, b)| !close(*a, *b, 1e-12))
            {
                return Err(format!("normalize f64 differs ({rows}x{cols})"));
            }
        } else {
            apply_rows(&k, Accumulate::F64, &x, cols, query, &mut want).unwrap();
            let got = out_f64(&out);
            if got.len() != rows || got.iter().zip(&want).any(|(a, b)| !close(*a, *b, 1e-12)) {
                return Err(format!(
                    "{} f64 differs ({rows}x{cols}): {:?} vs {:?}",
                    k.name(),
                    &got[..got.len().min(3)],
                    &want[..want.len().min(3)]
                ));
            }
        }
        let (out32, _) = engine
            .run_full(Kernel::Row(k.clone()), &f32_frame, &["x"], query, &opts)
            .map_err(|e| format!("{} f32: {e}", k.name()))?;
        if !k.output_is_matrix() {
            let mut want32 = vec![0f32; rows];
            apply_rows(
                &k,
                Accumulate::F64,
                &x32,
                cols,
                k.needs_query().then_some(&q32[..]),
                &mut want32,
            )
            .unwrap();
            let got = out_f32(&out32);
            if got
                .iter()
                .zip(&want32)
                .any(|(a, b)| !close(*a as f64, *b as f64, 1e-6))
            {
                return Err(format!("{} f32 differs ({rows}x{cols})", k.name()));
            }
        }
    }
    Ok(())
}

fn kernels_match_reference() -> TestResult {
    let engine = Engine::builder()
        .workers(3)
        .build()
        .map_err(|e| e.to_string())?;
    for (rows, cols, chunk) in [
        (0, 4, None),
        (1, 3, None),
        (63, 5, Some(64)),
        (64, 5, Some(64)),
        (65, 5, Some(64)),
        (20_000, 17, None),
        (1000, 1, Some(7)),
    ] {
        check_all_kernels(&engine, rows, cols, chunk)?;
    }
    Ok(())
}

fn killed_worker_still_exact() -> TestResult {
    let engine = Engine::builder()
        .workers(2)
        .build()
        .map_err(|e| e.to_string())?;
    let (rows, cols) = (50_000, 8);
    let x = matrix(rows, cols, 99);
    let frame = engine
        .frame_from_slice(&x, cols)
        .map_err(|e| e.to_string())?;
    let pids_before = engine.worker_pids();
    let opts = RunOptions {
        chunk_rows: Some(500),
        test_kill_worker_after_chunks: Some((1, 3)),
        test_chunk_sleep: Some(Duration::from_micros(300)),
        ..Default::default()
    };
    let (out, stats) = engine
        .run_full(Kernel::Row(RowKernel::L2), &frame, &["x"], None, &opts)
        .map_err(|e| e.to_string())?;
    let mut want = vec![0.0; rows];
    apply_rows(&RowKernel::L2, Accumulate::F64, &x, cols, None, &mut want).unwrap();
    if out_f64(&out) != want {
        return Err("result differs after a worker was killed".into());
    }
    let deaths = engine.worker_deaths();
    if stats.worker_deaths != 1 || deaths.len() != 1 || !deaths[0].how.contains("SIGKILL") {
        return Err(format!(
            "expected one SIGKILL death, got {deaths:?} / stats {stats:?}"
        ));
    }
    let pids_after = engine.worker_pids();
    if pids_after.len() != 2 || pids_after == pids_before {
        return Err(format!(
            "worker not replaced: {pids_before:?} -> {pids_after:?}"
        ));
    }
    // The pool goes on.
    let again = engine
        .run(RowKernel::Sum, &frame, "x")
        .map_err(|e| e.to_string())?;
    if again.num_rows() != rows {
        return Err("next job failed".into());
    }
    Ok(())
}

struct Panicky;
impl UserKernel for Panicky {
    fn name(&self) -> &str {
        "panicky"
    }
    fn run(&self, rows: RowBlock<'_>, out: &mut [f64]) -> Result<(), String> {
        let mut buf = Vec::new();
        for (i, o) in out.iter_mut().enumerate().take(rows.rows()) {
            rows.row_f64(i, &mut buf);
            if buf[0] > 1.9 {
                panic!("value too large");
            }
            *o = buf.iter().sum();
        }
        Ok(())
    }
}

struct RowRange;
impl UserKernel for RowRange {
    fn name(&self) -> &str {
        "range"
    }
    fn output_cols(&self, _: usize) -> usize {
        2
    }
    fn run(&self, rows: RowBlock<'_>, out: &mut [f64]) -> Result<(), String> {
        let mut buf = Vec::new();
        for i in 0..rows.rows() {
            rows.row_f64(i, &mut buf);
            let lo = buf.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = buf.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            out[2 * i] = lo;
            out[2 * i + 1] = hi;
        }
        Ok(())
    }
}

fn user_kernels_and_panics() -> TestResult {
    let engine = Engine::builder()
        .workers(2)
        .register(Panicky)
        .register(RowRange)
        .build()
        .map_err(|e| e.to_string())?;
    let x = matrix(10_000, 4, 5);
    let frame = engine.frame_from_slice(&x, 4).map_err(|e| e.to_string())?;
    match engine.run(Kernel::User("panicky".into()), &frame, "x") {
        Err(EngineError::Kernel {
            kernel, message, ..
        }) if kernel == "panicky" && message.contains("value too large") => {}
        other => return Err(format!("expected a kernel error, got {other:?}")),
    }
    let out = engine
        .run(Kernel::User("range".into()), &frame, "x")
        .map_err(|e| e.to_string())?;
    let list = out
        .batch()
        .column(0)
        .as_any()
        .downcast_ref::<FixedSizeListArray>()
        .unwrap()
        .clone();
    let v = list
        .values()
        .as_any()
        .downcast_ref::<Float64Array>()
        .unwrap()
        .values()
        .to_vec();
    for r in [0, 5000, 9999] {
        let row = &x[r * 4..r * 4 + 4];
        if v[2 * r] != row.iter().copied().fold(f64::INFINITY, f64::min) {
            return Err(format!("range kernel row {r} wrong"));
        }
    }
    Ok(())
}

fn nulls_and_columns() -> TestResult {
    let engine = Engine::builder()
        .workers(2)
        .build()
        .map_err(|e| e.to_string())?;
    let a = Int32Array::from(vec![Some(3), None, Some(1), Some(0)]);
    let b = Float64Array::from(vec![Some(4.0), Some(1.0), None, Some(2.0)]);
    let batch = RecordBatch::try_from_iter([
        ("a", std::sync::Arc::new(a) as _),
        ("b", std::sync::Arc::new(b) as _),
    ])
    .unwrap();
    let frame = engine
        .frame_from_batches(&[batch])
        .map_err(|e| e.to_string())?;
    let out = engine
        .run_columns(RowKernel::L2, &frame, &["a", "b"])
        .map_err(|e| e.to_string())?;
    let col = out.batch().column(0);
    let got: Vec<Option<f64>> = col
        .as_any()
        .downcast_ref::<Float64Array>()
        .unwrap()
        .iter()
        .collect();
    if got != vec![Some(5.0), None, None, Some(2.0)] {
        return Err(format!("columns l2 with nulls: {got:?}"));
    }
    // Null rows of a matrix give null results.
    let item = std::sync::Arc::new(arrow_schema::Field::new(
        "item",
        arrow_schema::DataType::Float64,
        false,
    ));
    let vals = Float64Array::from(vec![3.0, 4.0, 1.0, 1.0, 0.0, 2.0]);
    let nulls = arrow_buffer::NullBuffer::from(vec![true, false, true]);
    let list = FixedSizeListArray::new(item, 2, std::sync::Arc::new(vals), Some(nulls));
    let batch = RecordBatch::try_from_iter([("x", std::sync::Arc::new(list) as _)]).unwrap();
    let frame = engine
        .frame_from_batches(&[batch])
        .map_err(|e| e.to_string())?;
    let out = engine
        .run(RowKernel::L2, &frame, "x")
        .map_err(|e| e.to_string())?;
    let got: Vec<Option<f64>> = out
        .batch()
        .column(0)
        .as_any()
        .downcast_ref::<Float64Array>()
        .unwrap()
        .iter()
        .collect();
    if got != vec![Some(5.0), None, Some(2.0)] {
        return Err(format!("matrix l2 with null rows: {got:?}"));
    }
    Ok(())
}

/// Row kernels on a `u8` matrix (an image tensor's storage) widen to f64 in the workers:
/// results equal the f64 reference, null rows stay null.
fn u8_matrices_widen_to_f64() -> TestResult {
    let engine = Engine::builder()
        .workers(2)
        .build()
        .map_err(|e| e.to_string())?;
    let (rows, cols) = (1000usize, 777usize);
    let vals: Vec<u8> = (0..rows * cols).map(|i| ((i * 7919) % 251) as u8).collect();
    let item = std::sync::Arc::new(arrow_schema::Field::new(
        "item",
        arrow_schema::DataType::UInt8,
        false,
    ));
    let nulls = arrow_buffer::NullBuffer::from((0..rows).map(|r| r % 10 != 3).collect::<Vec<_>>());
    let list = FixedSizeListArray::new(
        item,
        cols as i32,
        std::sync::Arc::new(arrow_array::UInt8Array::from(vals.clone())),
        Some(nulls),
    );
    let batch = RecordBatch::try_from_iter([("px", std::sync::Arc::new(list) as _)]).unwrap();
    let frame = engine
        .frame_from_batches(&[batch])
        .map_err(|e| e.to_string())?;
    let wide: Vec<f64> = vals.iter().map(|&v| f64::from(v)).collect();
    for kernel in [
        RowKernel::Mean,
        RowKernel::L2,
        RowKernel::Max,
        RowKernel::Std { ddof: 0 },
    ] {
        let (out, _) = engine
            .run_full(
                Kernel::Row(kernel.clone()),
                &frame,
                &["px"],
                None,
                &RunOptions {
                    chunk_rows: Some(64),
                    ..RunOptions::default()
                },
            )
            .map_err(|e| format!("{kernel}: {e}"))?;
        let mut want = vec![0.0; rows];
        apply_rows(&kernel, Accumulate::F64, &wide, cols, None, &mut want)
            .map_err(|e| e.to_string())?;
        let col = out.batch().column(0);
        let got = col
            .as_any()
            .downcast_ref::<Float64Array>()
            .ok_or(format!("{kernel}: output is {}, not f64", col.data_type()))?;
        for (r, w) in want.iter().enumerate() {
            match (r % 10 == 3, got.is_valid(r)) {
                (true, true) => return Err(format!("{kernel}: null row {r} has a result")),
                (false, false) => return Err(format!("{kernel}: row {r} lost its result")),
                (false, true) if !close(got.value(r), *w, 1e-12) => {
                    return Err(format!("{kernel} row {r}: {} vs {w}", got.value(r)));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

fn chained_jobs_and_empty_round_trips() -> TestResult {
    let engine = Engine::builder()
        .workers(2)
        .build()
        .map_err(|e| e.to_string())?;
    let x = matrix(5000, 6, 3);
    let frame = engine.frame_from_slice(&x, 6).map_err(|e| e.to_string())?;
    let unit = engine
        .run(RowKernel::NormalizeL2, &frame, "x")
        .map_err(|e| e.to_string())?;
    let norms = engine
        .run(RowKernel::L2, &unit, "x")
        .map_err(|e| e.to_string())?;
    if out_f64(&norms).iter().any(|n| (n - 1.0).abs() > 1e-12) {
        return Err("normalised rows do not have unit norm".into());
    }
    for _ in 0..2000 {
        engine.run_empty().map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// A matrix frame of `rows` x 2 whose rows `null_rows` are null.
fn frame_with_nulls(
    engine: &Engine,
    rows: usize,
    null_rows: &[usize],
    seed: u64,
) -> Result<SharedFrame, String> {
    let item = std::sync::Arc::new(arrow_schema::Field::new(
        "item",
        arrow_schema::DataType::Float64,
        false,
    ));
    let vals = Float64Array::from(matrix(rows, 2, seed));
    let valid: Vec<bool> = (0..rows).map(|r| !null_rows.contains(&r)).collect();
    let nulls = arrow_buffer::NullBuffer::from(valid);
    let list = FixedSizeListArray::new(item, 2, std::sync::Arc::new(vals), Some(nulls));
    let batch = RecordBatch::try_from_iter([("x", std::sync::Arc::new(list) as _)]).unwrap();
    engine
        .frame_from_batches(&[batch])
        .map_err(|e| e.to_string())
}

/// Recycled outputs: a dropped output is reused by the next job of its shape, every byte of
/// it rewritten (other input, other null rows), published again so a fresh attach reads it;
/// outputs still held, or whose name was asked for, are never reused; `release_recycled`,
/// `recycle_outputs(0)` and dropping the engine leave no segment behind.
fn recycled_outputs() -> TestResult {
    let run = |e: &Engine, f: &SharedFrame| {
        e.run_full(
            Kernel::Row(RowKernel::L2),
            f,
            &["x"],
            None,
            &RunOptions::default(),
        )
        .map_err(|e| e.to_string())
    };
    let norms = |x: &[f64], cols: usize| {
        let mut want = vec![0.0; x.len() / cols];
        apply_rows(&RowKernel::L2, Accumulate::F64, x, cols, None, &mut want).unwrap();
        want
    };
    // Job outputs are the segments labelled `out`.
    let outs = || -> Vec<String> {
        our_segments()
            .into_iter()
            .filter(|n| n.ends_with(".out"))
            .collect()
    };
    let (rows, cols) = (10_000, 8);
    let (a, b) = (matrix(rows, cols, 11), matrix(rows, cols, 12));
    {
        let engine = Engine::builder()
            .workers(2)
            .build()
            .map_err(|e| e.to_string())?;
        let fa = engine
            .frame_from_slice(&a, cols)
            .map_err(|e| e.to_string())?;
        let fb = engine
            .frame_from_slice(&b, cols)
            .map_err(|e| e.to_string())?;
        let (out, stats) = run(&engine, &fa)?;
        let made = outs();
        if stats.output_reused || made.len() != 1 {
            return Err(format!(
                "first job: reused {}, made {made:?}",
                stats.output_reused
            ));
        }
        let col = out.batch().column(0).clone();
        drop(out);
        if outs() != made {
            return Err("an array still held must keep the output".into());
        }
        drop(col);
        // Kept for reuse: still there after every reference is gone.
        if outs() != made {
            return Err(format!("dropped output not kept: {:?}", outs()));
        }
        let (out, stats) = run(&engine, &fb)?;
        if !stats.output_reused || outs() != made {
            return Err(format!(
                "second job of the same shape: reused {}, outputs {:?}",
                stats.output_reused,
                outs()
            ));
        }
        if out_f64(&out) != norms(&b, cols) {
            return Err("recycled output holds wrong values".into());
        }
        // Published again: another handle attaches it and reads the new values.
        let name = shmframe::SegmentName::parse(&made[0]).map_err(|e| e.to_string())?;
        let again = SharedFrame::attach(&name, &engine.segment_dir()).map_err(|e| e.to_string())?;
        if out_f64(&again) != norms(&b, cols) {
            return Err("a fresh attach of the recycled output reads other values".into());
        }
        drop(again);
        // Held: the next job gets a new segment.
        let (held, stats) = run(&engine, &fa)?;
        if stats.output_reused || out_f64(&held) != norms(&a, cols) {
            return Err("an output still held was reused".into());
        }
        drop(out);
        drop(held);
        // Asked for its name: never reused, unlinked on drop.
        let (out, stats) = run(&engine, &fa)?;
        let exposed = out.segment_name().cloned().ok_or("no name")?;
        if !stats.output_reused {
            return Err("a held output was available but not reused".into());
        }
        drop(out);
        if our_segments().contains(&exposed.to_string()) {
            return Err(format!(
                "{exposed} was named to the user but kept for reuse"
            ));
        }
        // Null rows: validity rewritten for another set of null rows of the same count.
        let n1 = frame_with_nulls(&engine, 300, &[0, 7, 299], 5)?;
        let n2 = frame_with_nulls(&engine, 300, &[1, 8, 150], 6)?;
        let (o1, _) = run(&engine, &n1)?;
        drop(o1);
        let (o2, stats) = run(&engine, &n2)?;
        let nulls: Vec<usize> = (0..300)
            .filter(|&r| o2.batch().column(0).is_null(r))
            .collect();
        if !stats.output_reused || nulls != [1, 8, 150] {
            return Err(format!(
                "null rows after reuse: {nulls:?} (reused {})",
                stats.output_reused
            ));
        }
        drop(o2);
        // Chained: a recycled output read as the next job's input, then reused as an output.
        let unit = engine
            .run(RowKernel::NormalizeL2, &fa, "x")
            .map_err(|e| e.to_string())?;
        let n = engine
            .run(RowKernel::L2, &unit, "x")
            .map_err(|e| e.to_string())?;
        drop(unit);
        let unit_b = engine
            .run(RowKernel::NormalizeL2, &fb, "x")
            .map_err(|e| e.to_string())?;
        let mut want = vec![0.0; b.len()];
        normalize_rows(&b, cols, &mut want).unwrap();
        let got = unit_b
            .batch()
            .column(0)
            .as_any()
            .downcast_ref::<FixedSizeListArray>()
            .ok_or("matrix output")?
            .values()
            .as_any()
            .downcast_ref::<Float64Array>()
            .ok_or("f64 values")?
            .values()
            .to_vec();
        if got != want || out_f64(&n).iter().any(|v| (v - 1.0).abs() > 1e-12) {
            return Err("chained jobs through recycled outputs are wrong".into());
        }
        drop((n, unit_b));
        let released = engine.release_recycled();
        if released == 0 || !outs().is_empty() {
            return Err(format!(
                "release_recycled: {released} bytes, outputs left {:?}",
                outs()
            ));
        }
        // An output that outlives its engine is unlinked when dropped.
        let (late, _) = run(&engine, &fa)?;
        drop((fa, fb, n1, n2));
        drop(engine);
        if our_segments().len() != 1 || out_f64(&late) != norms(&a, cols) {
            return Err(format!("output after engine drop: {:?}", our_segments()));
        }
    }
    if !our_segments().is_empty() {
        return Err(format!("segments left: {:?}", our_segments()));
    }
    // Turned off: never reused, dropped outputs unlinked at once.
    let engine = Engine::builder()
        .workers(1)
        .recycle_outputs(0)
        .build()
        .map_err(|e| e.to_string())?;
    let fa = engine
        .frame_from_slice(&a, cols)
        .map_err(|e| e.to_string())?;
    let base = outs().len();
    for _ in 0..3 {
        let (out, stats) = run(&engine, &fa)?;
        if stats.output_reused {
            return Err("recycle_outputs(0) reused an output".into());
        }
        drop(out);
        if outs().len() != base {
            return Err("recycle_outputs(0) kept an output".into());
        }
    }
    Ok(())
}

fn deadline_cancels_and_pool_recovers() -> TestResult {
    let engine = Engine::builder()
        .workers(2)
        .build()
        .map_err(|e| e.to_string())?;
    let x = matrix(20_000, 4, 1);
    let frame = engine.frame_from_slice(&x, 4).map_err(|e| e.to_string())?;
    let opts = RunOptions {
        chunk_rows: Some(64),
        deadline: Some(Duration::from_millis(50)),
        test_chunk_sleep: Some(Duration::from_millis(5)),
        ..Default::default()
    };
    match engine.run_full(Kernel::Row(RowKernel::L2), &frame, &["x"], None, &opts) {
        Err(EngineError::Deadline { .. }) => {}
        other => {
            return Err(format!(
                "expected a deadline error, got {:?}",
                other.map(|(_, s)| s)
            ));
        }
    }
    let out = engine
        .run(RowKernel::L2, &frame, "x")
        .map_err(|e| e.to_string())?;
    let mut want = vec![0.0; 20_000];
    apply_rows(&RowKernel::L2, Accumulate::F64, &x, 4, None, &mut want).unwrap();
    if out_f64(&out) != want {
        return Err("job after a cancelled one is wrong".into());
    }
    Ok(())
}

fn drop_leaves_nothing() -> TestResult {
    let pids;
    {
        let engine = Engine::builder()
            .workers(2)
            .build()
            .map_err(|e| e.to_string())?;
        pids = engine.worker_pids();
        let frame = engine
            .frame_from_slice(&matrix(100, 2, 1), 2)
            .map_err(|e| e.to_string())?;
        let _out = engine
            .run(RowKernel::L2, &frame, "x")
            .map_err(|e| e.to_string())?;
    }
    for p in pids {
        if std::path::Path::new(&format!("/proc/{p}")).exists() {
            return Err(format!("worker {p} still exists after drop"));
        }
    }
    let left = our_segments();
    if !left.is_empty() {
        return Err(format!("segments left after drop: {left:?}"));
    }
    Ok(())
}

fn spawn_mode() -> TestResult {
    // This test binary is its own worker executable: main() starts with spawned_worker_main.
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let engine = Engine::builder()
        .workers(2)
        .start_method(StartMethod::Spawn { exe: Some(exe) })
        .build()
        .map_err(|e| e.to_string())?;
    let x = matrix(10_000, 8, 11);
    let frame = engine.frame_from_slice(&x, 8).map_err(|e| e.to_string())?;
    let out = engine
        .run(RowKernel::L1, &frame, "x")
        .map_err(|e| e.to_string())?;
    let mut want = vec![0.0; 10_000];
    apply_rows(&RowKernel::L1, Accumulate::F64, &x, 8, None, &mut want).unwrap();
    if out_f64(&out) != want {
        return Err("spawn-mode result differs".into());
    }
    Ok(())
}

fn fork_refused_when_threaded() -> TestResult {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let h = std::thread::spawn(move || {
        let _ = rx.recv();
    });
    let r = Engine::builder().workers(1).build();
    tx.send(()).ok();
    h.join().ok();
    match r {
        Err(EngineError::Fork(_)) => Ok(()),
        other => Err(format!("expected a fork refusal, got {other:?}")),
    }
}

struct Hog;
impl UserKernel for Hog {
    fn name(&self) -> &str {
        "hog"
    }
    fn run(&self, rows: RowBlock<'_>, out: &mut [f64]) -> Result<(), String> {
        // Allocate and touch far more than the worker's memory limit.
        let mut keep = Vec::new();
        for _ in 0..64 {
            let mut v = vec![0u8; 256 << 20];
            v[0] = 1;
            keep.push(v);
        }
        out.iter_mut()
            .for_each(|o| *o = keep.len() as f64 + rows.rows() as f64);
        Ok(())
    }
}

fn kill_later(pids: &[u32], signal: &str, delay_ms: u64) -> std::process::Child {
    let list = pids
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(" ");
    // A separate process, not a thread: the coordinator must stay single-threaded to fork
    // replacements.
    std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "sleep {}; kill -{signal} {list}",
            delay_ms as f64 / 1000.0
        ))
        .spawn()
        .expect("sh")
}

fn all_workers_killed_at_once_recovers() -> TestResult {
    let engine = Engine::builder()
        .workers(2)
        .build()
        .map_err(|e| e.to_string())?;
    let (rows, cols) = (40_000, 4);
    let x = matrix(rows, cols, 21);
    let frame = engine
        .frame_from_slice(&x, cols)
        .map_err(|e| e.to_string())?;
    let mut want = vec![0.0; rows];
    apply_rows(&RowKernel::L2, Accumulate::F64, &x, cols, None, &mut want).unwrap();
    for round in 0..3 {
        let mut killer = kill_later(&engine.worker_pids(), "KILL", 30);
        let opts = RunOptions {
            chunk_rows: Some(200),
            test_chunk_sleep: Some(Duration::from_micros(500)),
            ..Default::default()
        };
        let t = std::time::Instant::now();
        let result = engine.run_full(Kernel::Row(RowKernel::L2), &frame, &["x"], None, &opts);
        killer.wait().ok();
        let (out, stats) = result.map_err(|e| format!("round {round}: {e}"))?;
        if out_f64(&out) != want {
            return Err(format!(
                "round {round}: wrong result after all workers were killed"
            ));
        }
        if stats.worker_deaths < 2 {
            return Err(format!(
                "round {round}: expected 2 deaths, saw {} in {:?}",
                stats.worker_deaths,
                t.elapsed()
            ));
        }
    }
    Ok(())
}

fn stopped_worker_hits_deadline_and_is_replaced() -> TestResult {
    let engine = Engine::builder()
        .workers(2)
        .grace(Duration::from_millis(100))
        .build()
        .map_err(|e| e.to_string())?;
    let x = matrix(20_000, 4, 2);
    let frame = engine.frame_from_slice(&x, 4).map_err(|e| e.to_string())?;
    let victim = engine.worker_pids()[0];
    let mut stopper = kill_later(&[victim], "STOP", 20);
    let opts = RunOptions {
        chunk_rows: Some(64),
        deadline: Some(Duration::from_millis(400)),
        test_chunk_sleep: Some(Duration::from_millis(2)),
        ..Default::default()
    };
    let r = engine.run_full(Kernel::Row(RowKernel::L2), &frame, &["x"], None, &opts);
    stopper.wait().ok();
    match r {
        Err(EngineError::Deadline { .. }) => {}
        other => {
            return Err(format!(
                "expected a deadline error, got {:?}",
                other.map(|(_, s)| s)
            ));
        }
    }
    if engine.worker_pids().contains(&victim) {
        return Err("the stopped worker was not replaced".into());
    }
    if std::path::Path::new(&format!("/proc/{victim}")).exists() {
        return Err("the stopped worker still exists".into());
    }
    let out = engine
        .run(RowKernel::L2, &frame, "x")
        .map_err(|e| e.to_string())?;
    let mut want = vec![0.0; 20_000];
    apply_rows(&RowKernel::L2, Accumulate::F64, &x, 4, None, &mut want).unwrap();
    if out_f64(&out) != want {
        return Err("the job after the deadline is wrong".into());
    }
    Ok(())
}

fn memory_hog_fails_the_job_not_the_pool() -> TestResult {
    let engine = Engine::builder()
        .workers(2)
        .register(Hog)
        .worker_memory_limit(1 << 30)
        .build()
        .map_err(|e| e.to_string())?;
    let x = matrix(1000, 4, 3);
    let frame = engine.frame_from_slice(&x, 4).map_err(|e| e.to_string())?;
    match engine.run(Kernel::User("hog".into()), &frame, "x") {
        // Every chunk kills its worker: either the same chunk twice (ChunkKillsWorkers) or
        // too many deaths in the job (WorkersDied) ends it, whichever comes first.
        Err(EngineError::ChunkKillsWorkers { .. } | EngineError::WorkersDied { .. }) => {}
        other => {
            return Err(format!(
                "expected ChunkKillsWorkers or WorkersDied, got {other:?}"
            ));
        }
    }
    let out = engine
        .run(RowKernel::Sum, &frame, "x")
        .map_err(|e| e.to_string())?;
    if out.num_rows() != 1000 {
        return Err("pool unusable after the memory hog".into());
    }
    Ok(())
}

fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn many_small_jobs_do_not_grow() -> TestResult {
    let engine = Engine::builder()
        .workers(2)
        .build()
        .map_err(|e| e.to_string())?;
    let frame = engine
        .frame_from_slice(&matrix(64, 4, 4), 4)
        .map_err(|e| e.to_string())?;
    for _ in 0..1000 {
        engine.run_empty().map_err(|e| e.to_string())?;
        engine
            .run(RowKernel::L2, &frame, "x")
            .map_err(|e| e.to_string())?;
    }
    let (fds, rss, segs) = (fd_count(), rss_kb(), our_segments().len());
    for _ in 0..100_000 {
        engine.run_empty().map_err(|e| e.to_string())?;
    }
    for _ in 0..5_000 {
        engine
            .run(RowKernel::L2, &frame, "x")
            .map_err(|e| e.to_string())?;
    }
    let (fds2, rss2, segs2) = (fd_count(), rss_kb(), our_segments().len());
    if fds2 > fds || segs2 > segs || rss2 > rss + 4096 {
        return Err(format!(
            "growth: fds {fds}->{fds2}, segments {segs}->{segs2}, rss {rss}->{rss2} KiB"
        ));
    }
    Ok(())
}

/// The typed reads of a frame: `values` and `matrix` point into the segment (no copy), a
/// column of another type is refused by name, and `Debug` summarises instead of printing
/// values. Frames from `frame_from_slice` / `frame_from_ndarray` of f32 and f64 agree.
fn typed_reads_and_debug() -> TestResult {
    let engine = Engine::builder()
        .workers(2)
        .build()
        .map_err(|e| e.to_string())?;
    let (rows, cols) = (3000usize, 5usize);
    let x = matrix(rows, cols, 31);
    let frame = engine
        .frame_from_slice(&x, cols)
        .map_err(|e| e.to_string())?;
    let m = frame.matrix::<f64>("x").map_err(|e| e.to_string())?;
    if m.dim() != (rows, cols) || m[[1, 2]] != x[cols + 2] {
        return Err("matrix view differs from the input".into());
    }
    let flat = frame.values::<f64>("x").map_err(|e| e.to_string())?;
    if flat != x.as_slice() {
        return Err("values differ from the input".into());
    }
    // Zero copy: the slice lies inside the frame's mapping.
    let base = frame.batch().column(0).to_data().child_data()[0].buffers()[0].as_ptr() as usize;
    if flat.as_ptr() as usize != base {
        return Err("values are not a view of the segment".into());
    }
    let norms = engine
        .run(RowKernel::L2, &frame, "x")
        .map_err(|e| e.to_string())?;
    let got = norms.values::<f64>("l2_norm").map_err(|e| e.to_string())?;
    if got != out_f64(&norms).as_slice()
        || norms
            .matrix::<f64>("l2_norm")
            .map_err(|e| e.to_string())?
            .dim()
            != (rows, 1)
    {
        return Err("typed read of the output differs from the Arrow downcast".into());
    }
    match norms.values::<f32>("l2_norm") {
        Err(EngineError::ColumnType { column, .. }) if column == "l2_norm" => {}
        other => return Err(format!("a wrong-type read gave {other:?}")),
    }
    let x32: Vec<f32> = x.iter().map(|v| *v as f32).collect();
    let a = engine
        .frame_from_ndarray(ndarray::ArrayView2::from_shape((rows, cols), &x32).unwrap())
        .map_err(|e| e.to_string())?;
    let b = engine
        .frame_from_slice(&x32, cols)
        .map_err(|e| e.to_string())?;
    if a.values::<f32>("x").map_err(|e| e.to_string())?
        != b.values::<f32>("x").map_err(|e| e.to_string())?
    {
        return Err("ndarray and slice frames differ".into());
    }
    let dbg = format!("{frame:?}");
    if !dbg.contains("rows: 3000") || !dbg.contains("segment") || dbg.len() > 300 {
        return Err(format!("Debug is not a summary: {dbg}"));
    }
    Ok(())
}

/// The demonstration operation of the core redesign: `count_nonzero` over f64, f32, u8 and
/// i32 matrices (zeros, -0.0, NaN, chunk edges, a killed worker), null rows kept, a
/// primitive column refused.
fn count_nonzero_operation() -> TestResult {
    let engine = Engine::builder()
        .workers(2)
        .build()
        .map_err(|e| e.to_string())?;
    let (rows, cols) = (5000usize, 7usize);
    let mut r = lcg(21);
    let x: Vec<f64> = (0..rows * cols)
        .map(|i| match i % 11 {
            0 => 0.0,
            3 => -0.0,
            5 => f64::NAN,
            _ if r() < 0.3 => 0.0,
            _ => 1.5,
        })
        .collect();
    let want: Vec<u64> = x
        .chunks(cols)
        .map(|row| row.iter().filter(|v| **v != 0.0).count() as u64)
        .collect();
    let opts = RunOptions {
        chunk_rows: Some(64),
        ..Default::default()
    };
    let f64_frame = engine
        .frame_from_slice(&x, cols)
        .map_err(|e| e.to_string())?;
    let x32: Vec<f32> = x.iter().map(|v| *v as f32).collect();
    let f32_frame = engine
        .frame_from_slice(&x32, cols)
        .map_err(|e| e.to_string())?;
    let xu8: Vec<u8> = x.iter().map(|v| u8::from(*v != 0.0)).collect();
    let u8_frame = engine
        .frame_from_ndarray(ndarray::ArrayView2::from_shape((rows, cols), &xu8).unwrap())
        .map_err(|e| e.to_string())?;
    let xi32: Vec<i32> = x.iter().map(|v| i32::from(*v != 0.0) * -3).collect();
    let i32_frame = engine
        .frame_from_slice(&xi32, cols)
        .map_err(|e| e.to_string())?;
    for (what, frame) in [
        ("f64", &f64_frame),
        ("f32", &f32_frame),
        ("u8", &u8_frame),
        ("i32", &i32_frame),
    ] {
        let (out, stats) = engine
            .count_nonzero(frame, "x", &opts)
            .map_err(|e| e.to_string())?;
        if stats.chunks != rows.div_ceil(64) {
            return Err(format!("{what}: {} chunks", stats.chunks));
        }
        let got = out
            .values::<u64>("count_nonzero")
            .map_err(|e| e.to_string())?;
        if got != want.as_slice() {
            return Err(format!("{what}: counts differ from the reference"));
        }
    }
    // A worker killed mid-job: the counts are still exact.
    // Worker 1 dies after writing its third chunk (both workers get chunks: each sleeps a
    // little after every chunk, as in killed_worker_still_exact).
    let killed = RunOptions {
        chunk_rows: Some(64),
        test_kill_worker_after_chunks: Some((1, 3)),
        test_chunk_sleep: Some(Duration::from_micros(300)),
        ..Default::default()
    };
    let (out, stats) = engine
        .count_nonzero(&f64_frame, "x", &killed)
        .map_err(|e| e.to_string())?;
    if stats.worker_deaths != 1
        || out
            .values::<u64>("count_nonzero")
            .map_err(|e| e.to_string())?
            != want
    {
        return Err(format!(
            "killed worker: {} deaths or wrong counts",
            stats.worker_deaths
        ));
    }
    // Null rows stay null; the typed accessors refuse the wrong type, by name.
    let list = FixedSizeListArray::try_new(
        std::sync::Arc::new(arrow_schema::Field::new(
            "item",
            arrow_schema::DataType::Float64,
            false,
        )),
        2,
        std::sync::Arc::new(Float64Array::from(vec![1.0, 0.0, 0.0, 0.0, 2.0, 3.0])),
        Some(vec![true, true, false].into()),
    )
    .unwrap();
    let batch = RecordBatch::try_from_iter([("m", std::sync::Arc::new(list) as _)]).unwrap();
    let frame = engine
        .frame_from_batches(&[batch])
        .map_err(|e| e.to_string())?;
    let (out, _) = engine
        .count_nonzero(&frame, "m", &RunOptions::default())
        .map_err(|e| e.to_string())?;
    let col = out.batch().column(0);
    if col.null_count() != 1
        || !col.is_null(2)
        || out.values::<u64>("count_nonzero").unwrap()[..2] != [1, 0]
    {
        return Err("null rows not kept".into());
    }
    // Not a matrix: refused with the column named.
    match engine.count_nonzero(&out, "count_nonzero", &RunOptions::default()) {
        Err(EngineError::Input { what, .. }) if what.contains("count_nonzero") => {}
        other => return Err(format!("a primitive column gave {other:?}")),
    }
    Ok(())
}

fn main() {
    if let Some(code) = shmframe::spawned_worker_main(&shmframe::KernelRegistry::new()) {
        std::process::exit(code);
    }
    common::tests![
        kernels_match_reference,
        count_nonzero_operation,
        typed_reads_and_debug,
        killed_worker_still_exact,
        user_kernels_and_panics,
        nulls_and_columns,
        u8_matrices_widen_to_f64,
        chained_jobs_and_empty_round_trips,
        deadline_cancels_and_pool_recovers,
        recycled_outputs,
        drop_leaves_nothing,
        spawn_mode,
        all_workers_killed_at_once_recovers,
        stopped_worker_hits_deadline_and_is_replaced,
        memory_hog_fails_the_job_not_the_pool,
        many_small_jobs_do_not_grow,
        // Last: it starts a thread, after which this process may no longer fork.
        fork_refused_when_threaded,
    ];
}
