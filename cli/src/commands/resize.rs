//! `shmframe resize`: a folder of images resized by the worker pool.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use shmframe::image::{Alpha, EncodeSpec, Filter, Fit, ImageFormat, ResizeSpec, list_image_files};
use shmframe::{Progress, RunOptions, SegmentDir};

use super::pool_engine;
use crate::cli::{FilterArg, FitArg, FormatArg, ResizeArgs};
use crate::errors::{SomeImagesFailed, bad_input};
use crate::output::write_batch;

fn parse_size(s: &str) -> Result<(u32, u32)> {
    let bad = || bad_input(format!("--size {s}: expected WIDTHxHEIGHT, e.g. 256x256"));
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    let w: u32 = w.trim().parse().map_err(|_| bad())?;
    let h: u32 = h.trim().parse().map_err(|_| bad())?;
    if w == 0 || h == 0 || w > 16384 || h > 16384 {
        return Err(bad_input(format!(
            "--size {s}: width and height must be 1 to 16384"
        )));
    }
    Ok((w, h))
}

/// A progress bar drawn on stderr when it is a terminal, redrawn from the coordinator's wait
/// loop (no ticker thread: the engine may fork a replacement worker at any time).
fn progress(images: usize) -> ProgressBar {
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) || images < 32 {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::with_draw_target(Some(images as u64), ProgressDrawTarget::stderr());
    pb.set_style(
        ProgressStyle::with_template(
            "{bar:40} {pos}/{len} images  {per_sec}  ETA {eta}  ({elapsed})",
        )
        .expect("valid template"),
    );
    pb
}

/// Runs the command.
pub(crate) fn run(a: &ResizeArgs, dir: &SegmentDir, started: Instant) -> Result<()> {
    let (width, height) = parse_size(&a.size)?;
    if !a.in_dir.is_dir() {
        return Err(bad_input(format!(
            "input folder {} does not exist or is not a folder",
            a.in_dir.display()
        )));
    }
    if a.pool.workers == Some(0) {
        return Err(bad_input("--workers must be at least 1"));
    }
    if !(1..=100).contains(&a.quality) {
        return Err(bad_input(format!(
            "--quality {}: must be 1 to 100",
            a.quality
        )));
    }
    for (flag, value) in [
        ("--oversample", a.oversample),
        ("--progressive-oversample", a.progressive_oversample),
    ] {
        if !value.is_finite() || value < 0.0 {
            return Err(bad_input(format!("{flag} {value}: must be a number >= 0")));
        }
    }
    if let Some(t) = &a.tensor_out {
        let ext = t.extension().and_then(|e| e.to_str()).unwrap_or("");
        if !["arrow", "feather", "ipc"].contains(&ext) {
            return Err(bad_input(format!(
                "--tensor-out {}: expected an .arrow file",
                t.display()
            )));
        }
    }
    let files = list_image_files(&a.in_dir, a.recursive)?;
    let spec = ResizeSpec {
        fit: match a.fit {
            FitArg::Exact => Fit::Exact,
            FitArg::Contain => Fit::Contain,
            FitArg::Cover => Fit::Cover,
        },
        filter: match a.filter {
            FilterArg::Lanczos3 => Filter::Lanczos3,
            FilterArg::Bicubic => Filter::Bicubic,
            FilterArg::Bilinear => Filter::Bilinear,
            FilterArg::Nearest => Filter::Nearest,
        },
        alpha: if a.keep_alpha {
            Alpha::Keep
        } else {
            Alpha::Flatten
        },
        max_pixels: a.max_pixels,
        min_oversample: a.oversample,
        progressive_oversample: if a.no_progressive_shortcut {
            0.0
        } else {
            a.progressive_oversample
        },
        ..ResizeSpec::new(width, height)
    };
    let encode = EncodeSpec {
        dir: a.out_dir.clone(),
        format: match a.format {
            FormatArg::Jpeg => ImageFormat::Jpeg { quality: a.quality },
            FormatArg::Png => ImageFormat::Png,
            FormatArg::Webp => ImageFormat::WebP,
        },
        strip_prefix: Some(a.in_dir.clone()),
        keep_extension: a.keep_extension,
    };
    std::fs::create_dir_all(&a.out_dir)
        .with_context(|| format!("cannot create output folder {}", a.out_dir.display()))?;

    // The engine forks its workers now, while this process is still single-threaded.
    let engine = pool_engine(&a.pool, dir)?;
    let pb = progress(files.len());
    let bar = pb.clone();
    let opts = RunOptions {
        deadline: a.pool.deadline_ms.map(Duration::from_millis),
        test_chunk_sleep: a.pool.test_chunk_sleep_ms.map(Duration::from_millis),
        progress: Some(Progress(Arc::new(move |done, _| {
            bar.set_position(done as u64)
        }))),
        ..RunOptions::default()
    };
    let out = engine
        .resize_paths(&files, &spec, Some(&encode), &opts)
        .with_context(|| format!("resizing {} failed", a.in_dir.display()))?;
    pb.finish_and_clear();
    if let Some(t) = &a.tensor_out {
        write_batch(out.frame.batch(), t)?;
    }
    for f in &out.failed {
        eprintln!("shmframe: {}: {}", f.path, f.error);
    }
    let images = out.images();
    let per_s = if out.stats.seconds > 0.0 {
        images as f64 / out.stats.seconds
    } else {
        0.0
    };
    let st = &out.stages;
    if a.json {
        let v = serde_json::json!({
            "images": images,
            "failed": out.failed.iter().map(|f| serde_json::json!({"path": f.path, "error": f.error})).collect::<Vec<_>>(),
            "seconds": out.stats.seconds,
            "images_per_s": per_s,
            "total_seconds": started.elapsed().as_secs_f64(),
            "load_seconds": st.read,
            "workers": engine.workers(),
            "input_bytes": out.stats.input_bytes,
            "worker_deaths": out.stats.worker_deaths,
            "out_dir": a.out_dir.display().to_string(),
            "tensor": a.tensor_out.as_ref().map(|p| p.display().to_string()),
            "stages": {"read": st.read, "decode": st.decode, "resize": st.resize, "encode": st.encode, "write": st.write},
        });
        println!("{v}");
    } else {
        println!(
            "resized {} of {images} images from {} to {width}x{height} into {} with {} workers",
            images - out.failed.len(),
            a.in_dir.display(),
            a.out_dir.display(),
            engine.workers()
        );
        let busy = st.decode + st.resize + st.encode + st.write;
        let pct = |x: f64| if busy > 0.0 { 100.0 * x / busy } else { 0.0 };
        println!(
            "job {:.3} s ({per_s:.1} images/s over {}), read {:.3} s, total {:.3} s",
            out.stats.seconds,
            shmframe_ipc::human_bytes(out.stats.input_bytes as u64),
            st.read,
            started.elapsed().as_secs_f64()
        );
        println!(
            "worker time: decode {:.0}%, resize {:.0}%, encode {:.0}%, write {:.0}%",
            pct(st.decode),
            pct(st.resize),
            pct(st.encode),
            pct(st.write)
        );
        if let Some(t) = &a.tensor_out {
            println!("wrote {}", t.display());
        }
    }
    if !out.failed.is_empty() {
        return Err(SomeImagesFailed {
            failed: out.failed.len(),
            images,
        }
        .into());
    }
    Ok(())
}
