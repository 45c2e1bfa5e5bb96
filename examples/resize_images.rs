//! Resize a folder of images with the worker pool, then go on with the pixels: per-image mean
//! brightness and contrast as row kernels over the shared tensor column, no copies.
//!
//! ```sh
//! cargo run --release -p shmframe --example resize_images -- IN_DIR OUT_DIR [SIZE] [WORKERS]
//! ```
//! Without arguments it makes a few images in a temporary folder first.

use std::path::PathBuf;

use arrow_array::{Array, Float64Array, StringArray};
use shmframe::image::{EncodeSpec, ImageFormat, ResizeSpec, encode_image, list_image_files};
use shmframe::{Engine, RowKernel, RunOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if let Some(code) = shmframe::spawned_worker_main(&shmframe::KernelRegistry::new()) {
        std::process::exit(code);
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let size: u32 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(256);
    let workers = args.get(3).and_then(|w| w.parse().ok()).unwrap_or(2);
    // The pool is forked before anything else starts a thread.
    let engine = Engine::builder().workers(workers).build()?;

    let (input, output, scratch) = match (args.first(), args.get(1)) {
        (Some(i), Some(o)) => (PathBuf::from(i), PathBuf::from(o), None),
        _ => {
            let dir = std::env::temp_dir().join(format!("shmframe-resize-{}", std::process::id()));
            let input = dir.join("in");
            std::fs::create_dir_all(&input)?;
            // Gradients of different brightness, 1600x1200, as JPEG.
            let src = ResizeSpec::new(1600, 1200);
            for k in 0..6u32 {
                let px: Vec<u8> = (0..1200u32)
                    .flat_map(|y| {
                        (0..1600u32).flat_map(move |x| {
                            let v = ((x + y) / 12 + 30 * k).min(255) as u8;
                            [v, v / 2, 255 - v]
                        })
                    })
                    .collect();
                let jpg = encode_image(&px, &src, ImageFormat::Jpeg { quality: 92 })?;
                std::fs::write(input.join(format!("gradient-{k}.jpg")), jpg)?;
            }
            (input, dir.join("out"), Some(dir))
        }
    };

    let files = list_image_files(&input, true)?;
    let spec = ResizeSpec::new(size, size);
    let enc = EncodeSpec {
        dir: output.clone(),
        format: ImageFormat::Jpeg { quality: 90 },
        strip_prefix: Some(input.clone()),
        keep_extension: false,
    };
    let out = engine.resize_paths(&files, &spec, Some(&enc), &RunOptions::default())?;
    println!(
        "{} images -> {} ({size}x{size}), {:.1} images/s, {} failed",
        out.images(),
        output.display(),
        out.images() as f64 / out.stats.seconds.max(1e-9),
        out.failed.len()
    );
    for f in &out.failed {
        println!("  failed: {}: {}", f.path, f.error);
    }

    // The tensor frame is shared memory: row kernels read it in place.
    let mean = engine.run(RowKernel::Mean, &out.frame, "image")?;
    let std = engine.run(RowKernel::Std { ddof: 0 }, &out.frame, "image")?;
    let paths = out.frame.column("path")?;
    let paths = paths.as_any().downcast_ref::<StringArray>().expect("utf8");
    let mean = mean.batch().column(0);
    let mean = mean.as_any().downcast_ref::<Float64Array>().expect("f64");
    let std = std.batch().column(0);
    let std = std.as_any().downcast_ref::<Float64Array>().expect("f64");
    let mut rows: Vec<usize> = (0..mean.len()).filter(|&r| mean.is_valid(r)).collect();
    rows.sort_by(|&a, &b| mean.value(b).total_cmp(&mean.value(a)));
    println!("brightest first (mean, std of the {size}x{size}x3 pixels):");
    for r in rows.iter().take(5) {
        println!(
            "  {:7.2} {:6.2}  {}",
            mean.value(*r),
            std.value(*r),
            paths.value(*r)
        );
    }
    println!("tensor frame: {}", out.frame.path().display());
    drop(out);
    if let Some(dir) = scratch {
        std::fs::remove_dir_all(dir)?;
    }
    Ok(())
}
