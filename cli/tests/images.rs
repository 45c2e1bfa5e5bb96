//! Image jobs with real forked workers, real segments and real files: every input format and
//! mode against an expected image, every fit and filter, EXIF orientation, a PSNR guard on
//! the reduced JPEG decode, bad inputs that fail alone, workers killed mid-batch, the tensor
//! frame read back as an Arrow file (and by pyarrow, when `SHMFRAME_PYTHON` is set).
//!
//! Every test image is generated here (the `image` crate's encoders, TurboJPEG, a hand-written
//! palette PNG) into a temporary folder that the test removes; when `SHMFRAME_PYTHON` names a
//! python with numpy and Pillow, Pillow also writes files (every EXIF orientation in every
//! format, transparent pixels) and gives the expected results (`images/pillow.py`).
//!
//! `harness = false`: the engine forks, which it refuses in a multi-threaded process. main()
//! lists every test in `common::tests!`, which runs them in order on the main thread through
//! libtest-mimic; arguments filter tests by name as under libtest:
//! `cargo test -p shmframe-cli --test images -- exif`. A test function left out of that list is
//! dead code, denied below.

#![deny(dead_code)]

#[path = "../../engine/tests/common/mod.rs"]
mod common;

use common::{Rng, TempDir, TestResult, files_below, our_segments, png, webp_lossless};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use arrow_array::{
    Array, ArrayRef, BinaryArray, FixedSizeListArray, LargeBinaryArray, RecordBatch, StringArray,
    UInt8Array,
};
use arrow_schema::DataType;
use shmframe::image::{
    Alpha, EncodeSpec, Filter, Fit, ImageFormat, ResizeSpec, encode_image, list_image_files,
    resize_image,
};
use shmframe::{Engine, EngineError, RunOptions, SharedFrame};

const BIN: &str = env!("CARGO_BIN_EXE_shmframe");
const PY_SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/python/test_pyarrow_reads_tensor.py"
);

fn s(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Fails the test with a message when `cond` is false.
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        let holds: bool = $cond; // a NaN comparison does not hold
        if !holds {
            return Err(format!($($fmt)+));
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Scaffolding: temporary folders, segments of this process, the engine.

fn nanos() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
}

/// Temporary files of the atomic writes (`.NAME.shmframe-tmp.PID`) below `dir`.
fn temp_files(dir: &Path) -> Vec<String> {
    files_below(dir)
        .into_iter()
        .filter(|f| f.contains(".shmframe-tmp."))
        .collect()
}

fn engine(workers: usize) -> Result<Engine, String> {
    Engine::builder().workers(workers).build().map_err(s)
}

// The helpers, in their own files under `images/` (declared after `ensure!`, which they use).
// A crate root finds its modules beside it, hence the paths; `images/` has no `main.rs`, so
// Cargo sees one `images` test.
#[path = "images/generate.rs"]
mod generate;
#[path = "images/metrics.rs"]
mod metrics;
#[path = "images/output.rs"]
mod output;
#[path = "images/pillow.rs"]
mod pillow;

use generate::{
    BANDS, JPEG_444, Jpeg, QUAD, bands, box_down, draw_shapes, flat, gradient, hbands,
    is_progressive, jpeg, orient, over_white, palette_png, png_with_exif, png_with_exif_after_idat,
    png16, quadrants, texture, webp_with_exif, with_exif,
};
use metrics::{at, decode_bytes, decode_file, mae, max_diff, near, psnr};
use output::{Rows, rows_of, run_job, same_as_library, tensor_shape};

// ---------------------------------------------------------------------------------------------
// 1. Every input format and mode round-trips.

struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    /// The image as it should come out at its own size: RGB, and RGBA for `Alpha::Keep`.
    rgb: Vec<u8>,
    rgba: Vec<u8>,
    /// Mean absolute error allowed at its own size (0 for lossless formats).
    mae: f64,
    max: u8,
}

fn rgb_to_rgba(rgb: &[u8]) -> Vec<u8> {
    rgb.chunks_exact(3)
        .flat_map(|p| [p[0], p[1], p[2], 255])
        .collect()
}

fn gray_to_rgb(g: &[u8]) -> Vec<u8> {
    g.iter().flat_map(|&v| [v, v, v]).collect()
}

fn format_cases(w: u32, h: u32) -> Vec<Case> {
    let rgb = gradient(w, h);
    let gray: Vec<u8> = rgb.chunks_exact(3).map(|p| p[0] / 2 + p[1] / 2).collect();
    let n = (w * h) as usize;
    // Straight alpha: a ramp along x, never fully transparent (colours stay meaningful).
    let alpha: Vec<u8> = (0..n)
        .map(|i| (60 + (i as u32 % w) * 195 / (w - 1)) as u8)
        .collect();
    let rgba: Vec<u8> = rgb
        .chunks_exact(3)
        .zip(&alpha)
        .flat_map(|(p, &a)| [p[0], p[1], p[2], a])
        .collect();
    let flattened: Vec<u8> = rgba
        .chunks_exact(4)
        .flat_map(|p| [0, 1, 2].map(|c| over_white(p[c], p[3])))
        .collect();
    let la: Vec<u8> = gray
        .iter()
        .zip(&alpha)
        .flat_map(|(&g, &a)| [g, a])
        .collect();
    let la_rgb: Vec<u8> = gray
        .iter()
        .zip(&alpha)
        .flat_map(|(&g, &a)| [over_white(g, a); 3])
        .collect();
    let la_rgba: Vec<u8> = gray
        .iter()
        .zip(&alpha)
        .flat_map(|(&g, &a)| [g, g, g, a])
        .collect();
    // 16 bits: values that do not survive a plain `>> 8`, so the conversion is checked too.
    let rgb16: Vec<u16> = rgb
        .iter()
        .enumerate()
        .map(|(i, &v)| u16::from(v) * 257 + (i as u16 % 97))
        .collect();
    let rgb16_as8: Vec<u8> = rgb16
        .iter()
        .map(|&v| ((u32::from(v) + 128) / 257) as u8)
        .collect();
    let gray16: Vec<u16> = gray.iter().map(|&v| u16::from(v) * 257 + 100).collect();
    let gray16_as8: Vec<u8> = gray16
        .iter()
        .map(|&v| ((u32::from(v) + 128) / 257) as u8)
        .collect();
    // Palettes: 8-bit indices over 200 colours; 4-bit indices over 16 with tRNS alpha.
    let pal8: Vec<[u8; 3]> = (0..200u32)
        .map(|i| [(i * 5 % 256) as u8, (255 - i) as u8, (i * 37 % 256) as u8])
        .collect();
    let idx8: Vec<u8> = (0..n)
        .map(|i| ((i as u32 % w) * 7 + (i as u32 / w) * 3) as u8 % 200)
        .collect();
    let pal8_rgb: Vec<u8> = idx8.iter().flat_map(|&i| pal8[i as usize]).collect();
    let pal4: Vec<[u8; 3]> = (0..16u8).map(|i| [i * 16, 255 - i * 15, i * 9]).collect();
    let trns4: Vec<u8> = (0..16u8).map(|i| 255 - i * 12).collect();
    let idx4: Vec<u8> = (0..n)
        .map(|i| ((i as u32 % w) / 3 + (i as u32 / w) / 5) as u8 % 16)
        .collect();
    let pal4_rgba: Vec<u8> = idx4
        .iter()
        .flat_map(|&i| {
            let p = pal4[i as usize];
            [p[0], p[1], p[2], trns4[i as usize]]
        })
        .collect();
    let pal4_rgb: Vec<u8> = pal4_rgba
        .chunks_exact(4)
        .flat_map(|p| [0, 1, 2].map(|c| over_white(p[c], p[3])))
        .collect();
    use image::ExtendedColorType as C;
    let opaque = |name, bytes, rgb: &[u8], mae, max| Case {
        name,
        bytes,
        rgb: rgb.to_vec(),
        rgba: rgb_to_rgba(rgb),
        mae,
        max,
    };
    let jpeg_420 = Jpeg {
        quality: 90,
        subsamp: turbojpeg::Subsamp::Sub2x2,
        progressive: false,
    };
    vec![
        opaque(
            "baseline-444.jpg",
            jpeg(&rgb, w, h, 3, JPEG_444),
            &rgb,
            1.5,
            12,
        ),
        opaque(
            "baseline-420.jpg",
            jpeg(&rgb, w, h, 3, jpeg_420),
            &rgb,
            2.5,
            24,
        ),
        opaque(
            "progressive.jpg",
            jpeg(
                &rgb,
                w,
                h,
                3,
                Jpeg {
                    progressive: true,
                    ..jpeg_420
                },
            ),
            &rgb,
            2.5,
            24,
        ),
        opaque(
            "gray.jpg",
            jpeg(&gray, w, h, 1, JPEG_444),
            &gray_to_rgb(&gray),
            1.5,
            12,
        ),
        opaque("rgb8.png", png(&rgb, w, h, C::Rgb8), &rgb, 0.0, 0),
        Case {
            name: "rgba8.png",
            bytes: png(&rgba, w, h, C::Rgba8),
            rgb: flattened.clone(),
            rgba: rgba.clone(),
            mae: 0.0,
            max: 0,
        },
        opaque(
            "gray8.png",
            png(&gray, w, h, C::L8),
            &gray_to_rgb(&gray),
            0.0,
            0,
        ),
        Case {
            name: "gray-alpha.png",
            bytes: png(&la, w, h, C::La8),
            rgb: la_rgb,
            rgba: la_rgba,
            mae: 0.0,
            max: 0,
        },
        // 16-bit samples become 8-bit with rounding (at most 1 off whatever the method).
        opaque(
            "rgb16.png",
            png16(&rgb16, w, h, C::Rgb16),
            &rgb16_as8,
            0.5,
            1,
        ),
        opaque(
            "gray16.png",
            png16(&gray16, w, h, C::L16),
            &gray_to_rgb(&gray16_as8),
            0.5,
            1,
        ),
        opaque(
            "palette8.png",
            palette_png(w, h, 8, &pal8, None, &idx8),
            &pal8_rgb,
            0.0,
            0,
        ),
        Case {
            name: "palette4-trns.png",
            bytes: palette_png(w, h, 4, &pal4, Some(&trns4), &idx4),
            rgb: pal4_rgb,
            rgba: pal4_rgba,
            mae: 0.0,
            max: 0,
        },
        opaque(
            "lossless.webp",
            webp_lossless(&rgb, w, h, C::Rgb8),
            &rgb,
            0.0,
            0,
        ),
        Case {
            name: "lossless-alpha.webp",
            bytes: webp_lossless(&rgba, w, h, C::Rgba8),
            rgb: flattened,
            rgba,
            mae: 0.0,
            max: 0,
        },
    ]
}

/// Every format and mode at its own size (decode exactness), then downscaled (against a box
/// reference), then flat colours in every format, RGB and RGBA out.
fn formats_round_trip() -> TestResult {
    let (w, h) = (48u32, 32u32);
    let t = TempDir::new("formats");
    let cases = format_cases(w, h);
    let files: Vec<PathBuf> = cases.iter().map(|c| t.write(c.name, &c.bytes)).collect();
    ensure!(
        is_progressive(&cases[2].bytes) && !is_progressive(&cases[1].bytes),
        "the progressive case is not progressive"
    );
    let engine = engine(2)?;
    let mut worst = BTreeMap::new();
    for alpha in [Alpha::Flatten, Alpha::Keep] {
        // At its own size the resize is an identity: what comes out is the decode.
        let spec = ResizeSpec {
            alpha,
            ..ResizeSpec::new(w, h)
        };
        let (out, rows) = run_job(&engine, &files, &spec, None, &RunOptions::default())?;
        ensure!(out.failed.is_empty(), "failures: {:?}", out.failed);
        same_as_library(&files, &rows, &spec)?;
        for (r, c) in cases.iter().enumerate() {
            let got = rows.pixels[r].as_ref().unwrap();
            let want = if alpha == Alpha::Keep {
                &c.rgba
            } else {
                &c.rgb
            };
            let (m, x) = (mae(got, want), max_diff(got, want));
            ensure!(
                m <= c.mae && x <= c.max,
                "{} ({alpha:?}): MAE {m:.2} max {x} (allowed {} / {})",
                c.name,
                c.mae,
                c.max
            );
            ensure!(
                rows.sources[r] == (w, h),
                "{}: source {:?}",
                c.name,
                rows.sources[r]
            );
            let e = worst.entry(c.name).or_insert((0.0f64, 0u8));
            *e = (e.0.max(m), e.1.max(x));
        }
        // Halved: against a 2x2 box average of the expected image (Lanczos on smooth content
        // stays within a few levels of it).
        let spec = ResizeSpec {
            alpha,
            ..ResizeSpec::new(w / 2, h / 2)
        };
        let (out, rows) = run_job(&engine, &files, &spec, None, &RunOptions::default())?;
        ensure!(out.failed.is_empty(), "failures: {:?}", out.failed);
        same_as_library(&files, &rows, &spec)?;
        for (r, c) in cases.iter().enumerate() {
            let got = rows.pixels[r].as_ref().unwrap();
            let ch = spec.channels();
            let want = box_down(if ch == 4 { &c.rgba } else { &c.rgb }, w, h, ch, 2);
            // Palette images are not smooth: the box reference is only close on average.
            let limit = if c.name.starts_with("palette") {
                12.0
            } else {
                c.mae + 2.0
            };
            let m = mae(got, &want);
            ensure!(
                m <= limit,
                "{} ({alpha:?}) halved: MAE {m:.2} > {limit}",
                c.name
            );
        }
    }
    for (name, (m, x)) in &worst {
        println!("  {name:<22} at own size: MAE {m:.2}, max diff {x}");
    }
    // Flat colours come back as that colour everywhere, down and up.
    let colours: [[u8; 3]; 4] = [[255, 0, 0], [12, 200, 90], [128, 128, 128], [250, 250, 5]];
    let t2 = TempDir::new("flat");
    let mut files = Vec::new();
    let mut want = Vec::new();
    for (i, col) in colours.iter().enumerate() {
        let px = flat(40, 30, col);
        use image::ExtendedColorType as C;
        let rgba: Vec<u8> = px
            .chunks_exact(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect();
        for (ext, bytes, tol) in [
            ("jpg", jpeg(&px, 40, 30, 3, JPEG_444), 3u8),
            ("png", png(&px, 40, 30, C::Rgb8), 0),
            ("a.png", png(&rgba, 40, 30, C::Rgba8), 0),
            ("webp", webp_lossless(&px, 40, 30, C::Rgb8), 0),
        ] {
            files.push(t2.write(&format!("flat{i}.{ext}"), &bytes));
            want.push((*col, tol));
        }
    }
    for (tw, th) in [(13, 7), (40, 30), (97, 61)] {
        for filter in [
            Filter::Lanczos3,
            Filter::Bicubic,
            Filter::Bilinear,
            Filter::Nearest,
        ] {
            let spec = ResizeSpec {
                filter,
                ..ResizeSpec::new(tw, th)
            };
            let (out, rows) = run_job(&engine, &files, &spec, None, &RunOptions::default())?;
            ensure!(out.failed.is_empty(), "failures: {:?}", out.failed);
            for (r, (col, tol)) in want.iter().enumerate() {
                let got = rows.pixels[r].as_ref().unwrap();
                ensure!(
                    got.chunks_exact(3).all(|p| near(p, col, *tol)),
                    "{} at {tw}x{th} {filter:?}: not flat {col:?} (first {:?})",
                    files[r].display(),
                    &got[..3]
                );
            }
        }
    }
    Ok(())
}

/// `encode_image` writes what the jobs write: each format, RGB and RGBA, read back by other
/// decoders (TurboJPEG, `image`) and by the engine itself.
fn encode_image_round_trips() -> TestResult {
    let (w, h) = (40u32, 28u32);
    let rgb = gradient(w, h);
    let rgba: Vec<u8> = rgb
        .chunks_exact(3)
        .enumerate()
        .flat_map(|(i, p)| [p[0], p[1], p[2], (90 + i % 160) as u8])
        .collect();
    for alpha in [Alpha::Flatten, Alpha::Keep] {
        let spec = ResizeSpec {
            alpha,
            ..ResizeSpec::new(w, h)
        };
        let c = spec.channels();
        let px = if c == 4 { &rgba } else { &rgb };
        for format in [
            ImageFormat::Jpeg { quality: 95 },
            ImageFormat::Png,
            ImageFormat::WebP,
        ] {
            let bytes = encode_image(px, &spec, format).map_err(s)?;
            let magic_ok = match format {
                ImageFormat::Jpeg { .. } => bytes.starts_with(&[0xFF, 0xD8, 0xFF]),
                ImageFormat::Png => bytes.starts_with(b"\x89PNG"),
                ImageFormat::WebP => bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP",
            };
            ensure!(magic_ok, "{format:?}: not a {} file", format.extension());
            let (got, gw, gh) = decode_bytes(&bytes, c)?;
            ensure!((gw, gh) == (w, h), "{format:?} {alpha:?}: {gw}x{gh}");
            let lossy = matches!(format, ImageFormat::Jpeg { .. });
            if lossy {
                // JPEG has no alpha: RGBA is written composited over white, and alpha reads
                // back opaque.
                let colour = |v: &[u8]| -> Vec<u8> {
                    v.chunks_exact(c)
                        .flat_map(|p| {
                            let a = if c == 4 { p[3] } else { 255 };
                            [0, 1, 2].map(|k| over_white(p[k], a))
                        })
                        .collect()
                };
                let m = mae(&colour(&got), &colour(px));
                // The alpha ramp changes every pixel: over white, detail that 4:2:0 blurs.
                let bound = if c == 4 { 5.0 } else { 1.5 };
                ensure!(m <= bound, "{format:?} {alpha:?}: MAE {m:.2}");
                ensure!(
                    got.chunks_exact(c).all(|p| c == 3 || p[3] == 255),
                    "{format:?}: alpha did not read back opaque"
                );
            } else {
                ensure!(&got == px, "{format:?} {alpha:?}: not lossless");
            }
            let (back, source) = resize_image(&bytes, &spec).map_err(s)?;
            ensure!(source == (w, h), "{format:?}: source {source:?}");
            if !lossy {
                ensure!(&back == px, "{format:?} {alpha:?}: engine decode differs");
            }
        }
    }
    match encode_image(&rgb[..10], &ResizeSpec::new(w, h), ImageFormat::Png) {
        Err(e) if e.to_string().contains("10 bytes given for a 40x28x3 image") => {}
        other => return Err(format!("wrong length: {other:?}")),
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 2. Fits, filters, shapes, alpha.

fn fits_filters_and_shapes() -> TestResult {
    let t = TempDir::new("fits");
    use image::ExtendedColorType as C;
    let (bw, bh) = (96u32, 32u32);
    let band = bands(bw, bh);
    let band_rgba: Vec<u8> = rgb_to_rgba(&band);
    let grad = gradient(64, 48);
    let files = vec![
        t.write("bands.png", &png(&band, bw, bh, C::Rgb8)),
        t.write("bands-rgba.png", &png(&band_rgba, bw, bh, C::Rgba8)),
        t.write("grad.png", &png(&grad, 64, 48, C::Rgb8)),
        t.write(
            "tall.webp",
            &webp_lossless(&hbands(24, 72), 24, 72, C::Rgb8),
        ),
    ];
    let engine = engine(2)?;
    let filters = [
        Filter::Lanczos3,
        Filter::Bicubic,
        Filter::Bilinear,
        Filter::Nearest,
    ];
    let mut jobs = 0;
    for fit in [Fit::Exact, Fit::Contain, Fit::Cover] {
        for filter in filters {
            for alpha in [Alpha::Flatten, Alpha::Keep] {
                for (tw, th) in [(32u32, 32u32), (17, 5), (1, 1), (150, 40)] {
                    let spec = ResizeSpec {
                        fit,
                        filter,
                        alpha,
                        ..ResizeSpec::new(tw, th)
                    };
                    let (out, rows) =
                        run_job(&engine, &files, &spec, None, &RunOptions::default())?;
                    jobs += 1;
                    ensure!(out.failed.is_empty(), "failures: {:?}", out.failed);
                    same_as_library(&files, &rows, &spec)?;
                    check_geometry(&rows, &spec)?;
                }
            }
        }
    }
    // Filters against a smooth reference: a linear gradient is reproduced by every
    // interpolating filter away from the borders.
    let (gw, gh) = (64u32, 48u32);
    for filter in filters {
        let spec = ResizeSpec {
            filter,
            ..ResizeSpec::new(32, 24)
        };
        let (_, rows) = run_job(&engine, &files[2..3], &spec, None, &RunOptions::default())?;
        let got = rows.pixels[0].as_ref().unwrap();
        let want = box_down(&grad, gw, gh, 3, 2);
        let m = mae(got, &want);
        let limit = if filter == Filter::Nearest { 3.5 } else { 1.5 };
        ensure!(m <= limit, "{filter:?} on a gradient: MAE {m:.2} > {limit}");
    }
    // Nearest picks source pixels only: halving 8x8 blocks of two colours gives those two
    // colours and nothing between; the convolution filters blend at the block edges.
    let checker: Vec<u8> = (0..20u32 * 20)
        .flat_map(|i| {
            let (x, y) = (i % 20, i / 20);
            if (x / 5 + y / 5) % 2 == 0 {
                [250u8, 10, 10]
            } else {
                [10, 10, 250]
            }
        })
        .collect();
    let files2 = vec![t.write("checker.png", &png(&checker, 20, 20, C::Rgb8))];
    let mut blended = BTreeMap::new();
    for filter in filters {
        let spec = ResizeSpec {
            filter,
            ..ResizeSpec::new(14, 14)
        };
        let (_, rows) = run_job(&engine, &files2, &spec, None, &RunOptions::default())?;
        let got = rows.pixels[0].as_ref().unwrap();
        let mixed = got
            .chunks_exact(3)
            .filter(|p| *p != [250, 10, 10] && *p != [10, 10, 250])
            .count();
        blended.insert(format!("{filter:?}"), mixed);
    }
    ensure!(
        blended["Nearest"] == 0,
        "nearest made blended pixels: {blended:?}"
    );
    for f in ["Lanczos3", "Bicubic", "Bilinear"] {
        ensure!(blended[f] > 0, "{f} made no blended pixel: {blended:?}");
    }
    println!(
        "  {jobs} jobs over 3 fits x 4 filters x 2 alpha modes x 4 sizes; blended pixels on a checker: {blended:?}"
    );
    Ok(())
}

/// The geometry of each fit on the band images (rows 0, 1, 3) and the alpha channel.
fn check_geometry(rows: &Rows, spec: &ResizeSpec) -> TestResult {
    let (tw, th, c) = (spec.width, spec.height, spec.channels());
    let ctx = format!(
        "{:?} {:?} {:?} {tw}x{th}",
        spec.fit, spec.filter, spec.alpha
    );
    let opaque = |p: &[u8]| c == 3 || p[3] == 255;
    for r in [0usize, 1, 3] {
        let px = rows.pixels[r].as_ref().unwrap();
        let (sw, sh) = rows.sources[r];
        let along_x = r != 3; // image 3 is a tall one with its bands along y
        // Where the resampled source lies inside the target.
        let (x0, y0, iw, ih) = match spec.fit {
            Fit::Exact | Fit::Cover => (0, 0, tw, th),
            Fit::Contain => {
                let k = (f64::from(tw) / f64::from(sw)).min(f64::from(th) / f64::from(sh));
                let iw = ((f64::from(sw) * k).round() as u32).clamp(1, tw);
                let ih = ((f64::from(sh) * k).round() as u32).clamp(1, th);
                ((tw - iw) / 2, (th - ih) / 2, iw, ih)
            }
        };
        // Padding: black (RGB) or transparent (RGBA), exactly.
        for y in 0..th {
            for x in 0..tw {
                let inside = x >= x0 && x < x0 + iw && y >= y0 && y < y0 + ih;
                let p = at(px, tw, c, x, y);
                if !inside {
                    ensure!(
                        p.iter().all(|&v| v == 0),
                        "{ctx}: padding at {x},{y} is {p:?}"
                    );
                } else {
                    ensure!(
                        opaque(p),
                        "{ctx}: opaque source lost alpha at {x},{y}: {p:?}"
                    );
                }
            }
        }
        // Along the band axis, where each target pixel centre falls in the source (as a
        // fraction of it); sampled wherever no filter can reach another band.
        let (len_t, src_len, off, span) = if along_x {
            (tw, sw, x0, iw)
        } else {
            (th, sh, y0, ih)
        };
        let k = match spec.fit {
            Fit::Exact | Fit::Contain => f64::from(span) / f64::from(src_len),
            Fit::Cover => (f64::from(tw) / f64::from(sw)).max(f64::from(th) / f64::from(sh)),
        };
        let scaled = f64::from(src_len) * k;
        let crop = match spec.fit {
            Fit::Cover => (scaled - f64::from(len_t)) / 2.0,
            _ => 0.0,
        };
        let reach = 3.0 * k.max(1.0) + 1.5; // Lanczos3's support, in target pixels
        let across = if along_x { y0 + ih / 2 } else { x0 + iw / 2 };
        let mut sampled = 0;
        for u in off..off + span {
            let frac = (f64::from(u - off) + 0.5 + crop) / scaled;
            let band = ((frac * 3.0).floor() as usize).min(2);
            // Target pixels to the nearest band boundary (the image's own edges are none).
            let to_boundary = [1.0, 2.0]
                .iter()
                .map(|b| (frac * 3.0 - b).abs() / 3.0 * scaled)
                .fold(f64::INFINITY, f64::min);
            if to_boundary < reach {
                continue;
            }
            let (x, y) = if along_x { (u, across) } else { (across, u) };
            let p = at(px, tw, c, x, y);
            ensure!(
                near(&p[..3], &BANDS[band], 6),
                "{ctx}: image {r} at {x},{y} is {p:?}, want band {band} {:?}",
                BANDS[band]
            );
            sampled += 1;
        }
        ensure!(
            sampled > 0 || span < 24,
            "{ctx}: image {r}: nothing sampled"
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 3. EXIF orientation.

fn exif_orientation() -> TestResult {
    let t = TempDir::new("exif");
    let (w, h) = (64u32, 40u32);
    // Quadrants with a gradient on top: asymmetric in every direction.
    let base: Vec<u8> = quadrants(w, h)
        .iter()
        .zip(gradient(w, h))
        .map(|(&q, g)| ((u16::from(q) * 3 + u16::from(g)) / 4) as u8)
        .collect();
    let raw = jpeg(&base, w, h, 3, JPEG_444);
    let mut files = Vec::new();
    let mut wants = Vec::new();
    // Every EXIF value in every format that carries one: JPEG APP1, PNG eXIf before and after
    // the image data, WebP's EXIF chunk (Pillow-written files: `exif_orientation_matches_pillow`).
    for o in 1..=8u8 {
        let want = orient(&base, w, h, 3, o);
        for (name, bytes) in [
            (format!("o{o}.jpg"), with_exif(&raw, o)),
            (format!("o{o}.png"), png_with_exif(&base, w, h, o)),
            (
                format!("o{o}-after-idat.png"),
                png_with_exif_after_idat(&base, w, h, o),
            ),
            (format!("o{o}.webp"), webp_with_exif(&base, w, h, o)),
        ] {
            files.push(t.write(&name, &bytes));
            wants.push((o, want.clone()));
        }
    }
    let engine = engine(2)?;
    // At display size (one spec per display shape).
    for (r, (o, (want, dw, dh))) in wants.iter().enumerate() {
        let spec = ResizeSpec::new(*dw, *dh);
        let (out, rows) = run_job(
            &engine,
            &files[r..r + 1],
            &spec,
            None,
            &RunOptions::default(),
        )?;
        ensure!(out.failed.is_empty(), "failures: {:?}", out.failed);
        ensure!(
            rows.sources[0] == (*dw, *dh),
            "{}: source reported as {:?}, display size is {dw}x{dh}",
            files[r].display(),
            rows.sources[0]
        );
        let got = rows.pixels[0].as_ref().unwrap();
        let m = mae(got, want);
        ensure!(
            m <= 2.0,
            "{} (orientation {o}): MAE {m:.2} against the source rotated here",
            files[r].display()
        );
        // The quadrant colours, each where the rotation puts it.
        let quads = orient(&quadrants(w, h), w, h, 3, *o).0;
        for (x, y) in [(dw / 4, dh / 4), (3 * dw / 4, dh / 4), (dw / 4, 3 * dh / 4)] {
            let (g, q) = (at(got, *dw, 3, x, y), at(&quads, *dw, 3, x, y));
            let closest = QUAD
                .iter()
                .min_by_key(|c| {
                    c.iter()
                        .zip(g)
                        .map(|(a, b)| u32::from(a.abs_diff(*b)))
                        .sum::<u32>()
                })
                .unwrap();
            ensure!(
                closest == q,
                "{} (orientation {o}): the quadrant at {x},{y} is the wrong one",
                files[r].display()
            );
        }
        same_as_library(&files[r..r + 1], &rows, &spec)?;
    }
    // With the reduced DCT decode: a 256x160 source shown as 160x256 (orientation 6), to 40x64
    // with 1x oversampling: decoded at 1/4 in stored orientation, then rotated.
    let (bw, bh) = (256u32, 160u32);
    let big = gradient(bw, bh)
        .iter()
        .zip(quadrants(bw, bh))
        .map(|(&g, q)| ((u16::from(q) * 3 + u16::from(g)) / 4) as u8)
        .collect::<Vec<u8>>();
    let f = vec![t.write(
        "big-o6.jpg",
        &with_exif(&jpeg(&big, bw, bh, 3, JPEG_444), 6),
    )];
    let (rot, dw, dh) = orient(&big, bw, bh, 3, 6);
    let spec = ResizeSpec {
        min_oversample: 1.0,
        ..ResizeSpec::new(dw / 4, dh / 4)
    };
    let (_, rows) = run_job(&engine, &f, &spec, None, &RunOptions::default())?;
    ensure!(
        rows.sources[0] == (dw, dh),
        "source {:?}, want {dw}x{dh}",
        rows.sources[0]
    );
    let got = rows.pixels[0].as_ref().unwrap();
    let want = box_down(&rot, dw, dh, 3, 4);
    let m = mae(got, &want);
    ensure!(m <= 3.0, "reduced decode + orientation 6: MAE {m:.2}");
    println!(
        "  orientations 1-8 in JPEG, PNG (eXIf before and after IDAT) and WebP match the source turned here; reduced decode + 6: MAE {m:.2}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 4. Quality guard: the job's reduced JPEG decode against a full decode, on photo-like images.

fn quality_guard_psnr() -> TestResult {
    let t = TempDir::new("psnr");
    let (w, h) = (3000u32, 2000u32);
    let t0 = Instant::now();
    // Two photos from one noise field (generating it is the slow part of a debug build): the
    // second mirrored, with other shapes, progressive and 4:4:4.
    let first = texture(w, h, 1);
    let mut second: Vec<u8> = first
        .chunks_exact(w as usize * 3)
        .flat_map(|row| row.chunks_exact(3).rev().flatten().copied())
        .collect();
    draw_shapes(&mut second, w, h, &mut Rng(77));
    let files = vec![
        t.write(
            "photo1.jpg",
            &jpeg(
                &first,
                w,
                h,
                3,
                Jpeg {
                    quality: 90,
                    subsamp: turbojpeg::Subsamp::Sub2x2,
                    progressive: false,
                },
            ),
        ),
        t.write(
            "photo2.jpg",
            &jpeg(
                &second,
                w,
                h,
                3,
                Jpeg {
                    quality: 85,
                    subsamp: turbojpeg::Subsamp::None,
                    progressive: true,
                },
            ),
        ),
    ];
    drop((first, second));
    let gen_s = t0.elapsed().as_secs_f64();
    let engine = engine(2)?;
    let mut figures = Vec::new();
    let mut worst = f64::INFINITY;
    // Targets chosen so the default 2x oversampling picks each DCT scale for the baseline
    // photo: 1/2, 1/4, 1/8. The progressive photo goes to shmframe's own reader of its first
    // scans, at 1x: 1/4 (DC and first AC scans) for the largest, 1/8 (DC only) for the others.
    for (tw, th, denom) in [(640u32, 427u32, 2u32), (320, 213, 4), (160, 107, 8)] {
        let spec = ResizeSpec::new(tw, th);
        let (out, rows) = run_job(&engine, &files, &spec, None, &RunOptions::default())?;
        ensure!(out.failed.is_empty(), "failures: {:?}", out.failed);
        let reference_spec = ResizeSpec {
            min_oversample: 0.0,
            ..spec.clone()
        };
        for (r, f) in files.iter().enumerate() {
            let bytes = std::fs::read(f).map_err(s)?;
            let (reference, _) = resize_image(&bytes, &reference_spec).map_err(s)?;
            let got = rows.pixels[r].as_ref().unwrap();
            let p = psnr(got, &reference);
            worst = worst.min(p);
            let scale = if r == 0 {
                format!("1/{denom}")
            } else {
                "first scans".into()
            };
            figures.push(format!("{tw}x{th} ({scale}) photo{}: {p:.1} dB", r + 1));
            ensure!(
                p >= 40.0,
                "{} at {tw}x{th}: PSNR {p:.1} dB of the reduced decode against a full decode, under 40",
                f.display()
            );
            ensure!(
                got != &reference,
                "{tw}x{th}: identical to the full decode: was the reduced decode used?"
            );
        }
    }
    // The reference path is the plain full decode: TurboJPEG at scale 1, then the resize (on a
    // smaller image: PNG in a debug build is slow).
    let (sw, sh) = (600u32, 400u32);
    let small = jpeg(&texture(sw, sh, 3), sw, sh, 3, JPEG_444);
    let full = turbojpeg::decompress(&small, turbojpeg::PixelFormat::RGB).map_err(s)?;
    let as_png = png(&full.pixels, sw, sh, image::ExtendedColorType::Rgb8);
    let spec = ResizeSpec {
        min_oversample: 0.0,
        ..ResizeSpec::new(75, 50)
    };
    ensure!(
        resize_image(&as_png, &spec).map_err(s)?.0 == resize_image(&small, &spec).map_err(s)?.0,
        "min_oversample 0 is not a full decode"
    );
    println!(
        "  figures: PSNR of the job (libjpeg's reduced DCT or the first-scan reader + Lanczos) against full decode + Lanczos, \
         3000x2000 photo-like JPEGs: {}; min {worst:.1} dB (images made in {gen_s:.1} s)",
        figures.join(", ")
    );
    Ok(())
}

/// Links to files are listed (a dangling one too: its read fails and is reported); links to
/// folders are not followed.
fn listing_follows_file_links() -> TestResult {
    let t = TempDir::new("links");
    let real = t.write("real/a.jpg", &jpeg(&gradient(16, 16), 16, 16, 3, JPEG_444));
    t.write("real/sub/b.jpg", b"x");
    let dir = t.path("links");
    std::fs::create_dir_all(&dir).map_err(s)?;
    std::os::unix::fs::symlink(&real, dir.join("link.jpg")).map_err(s)?;
    std::os::unix::fs::symlink(t.path("missing.jpg"), dir.join("dangling.jpg")).map_err(s)?;
    std::os::unix::fs::symlink(t.path("real"), dir.join("folder")).map_err(s)?;
    let listed = list_image_files(&dir, true).map_err(s)?;
    let want = vec![dir.join("dangling.jpg"), dir.join("link.jpg")];
    ensure!(listed == want, "listed {listed:?}, want {want:?}");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 5. Bad inputs fail alone.

fn bad_inputs_fail_alone() -> TestResult {
    let t = TempDir::new("bad");
    use image::ExtendedColorType as C;
    let good_px = gradient(40, 30);
    let good_jpg = jpeg(&good_px, 40, 30, 3, JPEG_444);
    let good_png = png(&good_px, 40, 30, C::Rgb8);
    let good_webp = webp_lossless(&good_px, 40, 30, C::Rgb8);
    let mut corrupt_png = good_png.clone();
    let mid = corrupt_png.len() / 2;
    for b in &mut corrupt_png[mid..mid + 16] {
        *b ^= 0x5A;
    }
    // A JPEG whose frame header is garbage.
    let mut corrupt_jpg = good_jpg.clone();
    let sof = corrupt_jpg
        .windows(2)
        .position(|m| m == [0xFF, 0xC0])
        .ok_or("no SOF0")?;
    for b in &mut corrupt_jpg[sof + 2..sof + 12] {
        *b = 0xEE;
    }
    let gif = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;".to_vec();
    let mut bmp = b"BM".to_vec();
    bmp.extend_from_slice(&[
        0x3A, 0, 0, 0, 0, 0, 0, 0, 0x36, 0, 0, 0, 40, 0, 0, 0, 1, 0, 0, 0,
    ]);
    bmp.extend_from_slice(&[1, 0, 0, 0, 1, 0, 24, 0, 0, 0, 0, 0, 4, 0, 0, 0]);
    bmp.extend_from_slice(&[0; 16]);
    bmp.extend_from_slice(&[0, 0, 255, 0]);
    let huge = png(&gradient(200, 150), 200, 150, C::Rgb8); // 30000 pixels > the limit below
    let inputs: Vec<(&str, Vec<u8>, Option<&str>)> = vec![
        ("a-good.jpg", good_jpg.clone(), None),
        (
            "b-corrupt.jpg",
            corrupt_jpg,
            Some("corrupt or truncated JPEG"),
        ),
        ("c-good.png", good_png.clone(), None),
        (
            "d-corrupt.png",
            corrupt_png,
            Some("corrupt or truncated PNG"),
        ),
        (
            "e-truncated.jpg",
            good_jpg[..good_jpg.len() / 2].to_vec(),
            Some("corrupt or truncated JPEG"),
        ),
        (
            "f-truncated.png",
            good_png[..good_png.len() / 2].to_vec(),
            Some("corrupt or truncated PNG"),
        ),
        (
            "g-truncated.webp",
            good_webp[..good_webp.len() / 2].to_vec(),
            Some("corrupt or truncated WebP"),
        ),
        ("h-empty.jpg", Vec::new(), Some("empty file")),
        (
            "i-notes.txt",
            b"these are not the pixels you are looking for\n".to_vec(),
            Some("not an image"),
        ),
        ("j-anim.gif", gif, Some("unsupported format: GIF")),
        ("k-pic.bmp", bmp, Some("unsupported format: BMP")),
        ("l-huge.png", huge, Some("exceeds the limit of 20000")),
        ("m-good.webp", good_webp, None),
        (
            "n-huge.jpg",
            jpeg(&gradient(200, 150), 200, 150, 3, JPEG_444),
            Some("exceeds the limit"),
        ),
    ];
    let files: Vec<PathBuf> = inputs.iter().map(|(n, b, _)| t.write(n, b)).collect();
    let engine = engine(2)?;
    let spec = ResizeSpec {
        max_pixels: 20_000,
        ..ResizeSpec::new(20, 15)
    };
    let outdir = t.path("out");
    let enc = EncodeSpec {
        dir: outdir.clone(),
        format: ImageFormat::Png,
        strip_prefix: Some(t.0.clone()),
        keep_extension: false,
    };
    let (out, rows) = run_job(&engine, &files, &spec, Some(&enc), &RunOptions::default())?;
    let expected_failures: Vec<usize> = inputs
        .iter()
        .enumerate()
        .filter(|(_, c)| c.2.is_some())
        .map(|(r, _)| r)
        .collect();
    let got_failures: Vec<usize> = out.failed.iter().map(|f| f.row).collect();
    ensure!(
        got_failures == expected_failures,
        "failed rows {got_failures:?}, want {expected_failures:?}: {:?}",
        out.failed
    );
    for f in &out.failed {
        let want = inputs[f.row].2.unwrap();
        ensure!(
            f.error.contains(want),
            "{}: error {:?} does not say {want:?}",
            f.path,
            f.error
        );
        println!("  {:<18} {}", inputs[f.row].0, f.error);
    }
    // The good ones are done, and right.
    let reference = box_down(&good_px, 40, 30, 3, 2);
    for (r, (name, _, fail)) in inputs.iter().enumerate() {
        if fail.is_some() {
            continue;
        }
        let got = rows.pixels[r].as_ref().unwrap();
        ensure!(mae(got, &reference) < 3.0, "{name}: wrong pixels");
        ensure!(
            rows.sources[r] == (40, 30),
            "{name}: source {:?}",
            rows.sources[r]
        );
    }
    // Files only for the good ones.
    let written = files_below(&outdir);
    ensure!(
        written
            == [
                "a-good.png",
                "c-good.png",
                "m-good.webp".replace(".webp", ".png").as_str()
            ],
        "output files: {written:?}"
    );
    // One corrupt JPEG header must not fail the JPEGs after it in the same worker, in this
    // job or the next (TurboJPEG's handle repeated the error for every later image).
    let one = Engine::builder().workers(1).build().map_err(s)?;
    let seq = vec![
        files[1].clone(),
        files[0].clone(),
        files[13].clone(),
        files[0].clone(),
    ];
    let opts = RunOptions {
        chunk_rows: Some(1),
        ..Default::default()
    };
    let (out, _) = run_job(&one, &seq, &spec, None, &opts)?;
    let rows: Vec<usize> = out.failed.iter().map(|f| f.row).collect();
    ensure!(
        rows == [0, 2] && out.failed[1].error.contains("exceeds the limit"),
        "after a corrupt JPEG the same worker failed: {:?}",
        out.failed
    );
    let (out, _) = run_job(&one, &files[..1], &spec, None, &opts)?;
    ensure!(out.failed.is_empty(), "next job: {:?}", out.failed);
    drop(one);
    // An input path that cannot be read is a failure of its own, not of the job.
    let mut with_missing = files[..1].to_vec();
    with_missing.push(t.path("no-such-file.jpg"));
    let (out, _) = run_job(&engine, &with_missing, &spec, None, &RunOptions::default())?;
    ensure!(
        out.failed.len() == 1
            && out.failed[0].row == 1
            && out.failed[0].error.contains("cannot read"),
        "missing file: {:?}",
        out.failed
    );
    // All bad: every row null, the job itself fine.
    let all_bad: Vec<PathBuf> = expected_failures
        .iter()
        .map(|&r| files[r].clone())
        .collect();
    let (out, _) = run_job(&engine, &all_bad, &spec, None, &RunOptions::default())?;
    ensure!(
        out.failed.len() == all_bad.len(),
        "all bad: {:?}",
        out.failed
    );
    // No images at all.
    let (out, rows) = run_job(&engine, &[], &spec, None, &RunOptions::default())?;
    ensure!(out.images() == 0 && rows.pixels.is_empty(), "empty job");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 6. Workers killed mid-batch.

fn kill_later(pids: &[u32], delay_ms: u64) -> std::process::Child {
    let list: Vec<String> = pids.iter().map(u32::to_string).collect();
    // A separate process, not a thread: the coordinator must stay single-threaded to fork
    // replacements.
    Command::new("sh")
        .arg("-c")
        .arg(format!(
            "sleep {}; kill -9 {}",
            delay_ms as f64 / 1000.0,
            list.join(" ")
        ))
        .spawn()
        .expect("sh")
}

/// What a batch with files must look like after any number of worker deaths: the same pixels
/// and file bytes as an unkilled run, every file once, no temporary file.
fn same_batch(
    what: &str,
    want: (&Rows, &Path),
    got: (&Rows, &Path),
    expected_files: &[String],
) -> TestResult {
    ensure!(
        want.0.pixels == got.0.pixels && want.0.sources == got.0.sources,
        "{what}: pixels differ from the unkilled run"
    );
    let listed = files_below(got.1);
    ensure!(
        listed == expected_files,
        "{what}: output files {listed:?}, want {expected_files:?}"
    );
    for f in expected_files {
        let (a, b) = (
            std::fs::read(want.1.join(f)).map_err(s)?,
            std::fs::read(got.1.join(f)).map_err(s)?,
        );
        ensure!(a == b, "{what}: {f} differs from the unkilled run's");
    }
    let tmp = temp_files(got.1);
    ensure!(tmp.is_empty(), "{what}: temporary files left: {tmp:?}");
    Ok(())
}

fn worker_killed_mid_batch() -> TestResult {
    let t = TempDir::new("kill");
    use image::ExtendedColorType as C;
    let n = 48;
    let mut files = Vec::new();
    let mut expected_files = Vec::new();
    for i in 0..n {
        let (w, h) = (120 + (i % 5) * 16, 90 + (i % 3) * 8);
        let px = texture(w, h, u64::from(i) + 10);
        let (name, bytes) = match i % 3 {
            0 => (
                format!("img{i:02}.jpg"),
                encode_image(
                    &px,
                    &ResizeSpec::new(w, h),
                    ImageFormat::Jpeg { quality: 92 },
                )
                .map_err(s)?,
            ),
            1 => (format!("sub/img{i:02}.png"), png(&px, w, h, C::Rgb8)),
            _ => (format!("img{i:02}.webp"), webp_lossless(&px, w, h, C::Rgb8)),
        };
        files.push(t.write(&format!("in/{name}"), &bytes));
        expected_files.push(Path::new(&name).with_extension("png").display().to_string());
    }
    expected_files.sort();
    let spec = ResizeSpec::new(96, 64);
    let enc = |d: &str| EncodeSpec {
        dir: t.path(d),
        format: ImageFormat::Png,
        strip_prefix: Some(t.path("in")),
        keep_extension: false,
    };
    let engine = engine(2)?;
    let (base_out, base) = run_job(
        &engine,
        &files,
        &spec,
        Some(&enc("base")),
        &RunOptions::default(),
    )?;
    ensure!(
        base_out.failed.is_empty(),
        "failures: {:?}",
        base_out.failed
    );
    same_as_library(&files, &base, &spec)?;
    let base_dir = t.path("base");
    ensure!(
        files_below(&base_dir) == expected_files,
        "unkilled run wrote {:?}",
        files_below(&base_dir)
    );
    // The test hook: worker 0 dies after its third image, after writing it but before
    // counting it (the image is redone or skipped, never lost).
    let opts = RunOptions {
        chunk_rows: Some(1),
        test_kill_worker_after_chunks: Some((0, 3)),
        ..Default::default()
    };
    let (out, rows) = run_job(&engine, &files, &spec, Some(&enc("hook")), &opts)?;
    ensure!(out.failed.is_empty(), "failures: {:?}", out.failed);
    ensure!(
        out.stats.worker_deaths >= 1,
        "hook: no worker death seen ({:?})",
        out.stats
    );
    same_batch(
        "hook",
        (&base, &base_dir),
        (&rows, &t.path("hook")),
        &expected_files,
    )?;
    // External SIGKILLs at random moments of running jobs (one or both workers).
    let seed = u64::from(nanos()) | 1;
    let mut rng = Rng(seed);
    let job_ms = (base_out.stats.seconds * 1e3).max(20.0) as u64;
    let (mut kills, mut deaths) = (0usize, 0usize);
    for round in 0..4 {
        let pids = engine.worker_pids();
        let victims = &pids[..1 + rng.below(2) as usize];
        let delay = 1 + rng.below(job_ms * 3 / 4);
        let mut killer = kill_later(victims, delay);
        let dir = format!("ext{round}");
        let opts = RunOptions {
            chunk_rows: Some(1),
            ..Default::default()
        };
        let r = run_job(&engine, &files, &spec, Some(&enc(&dir)), &opts);
        killer.wait().ok();
        let (out, rows) = r.map_err(|e| format!("round {round} (seed {seed}): {e}"))?;
        ensure!(
            out.failed.is_empty(),
            "round {round}: failures: {:?}",
            out.failed
        );
        kills += victims.len();
        deaths += out.stats.worker_deaths;
        same_batch(
            &format!("round {round} (seed {seed}, kill after {delay} ms)"),
            (&base, &base_dir),
            (&rows, &t.path(&dir)),
            &expected_files,
        )?;
    }
    ensure!(
        deaths >= 1,
        "no external kill landed inside a job (job {job_ms} ms, seed {seed})"
    );
    println!(
        "  figures: {n} images; hook: {} death(s); external: {kills} SIGKILLs sent in 4 jobs \
         (~{job_ms} ms each), {deaths} deaths seen; all pixels and files identical, no temp file",
        out.stats.worker_deaths
    );
    Ok(())
}

/// A worker that dies while writing an output file (between creating its temporary file and
/// renaming it) leaves no temporary file: the image is redone by the replacement, which
/// writes and renames the same temporary name. The death is real and deterministic: the
/// worker's file size limit is lowered under it (`prlimit`), so its first write past 1 KiB
/// raises SIGXFSZ.
fn worker_dies_mid_write() -> TestResult {
    if Command::new("prlimit").arg("--version").output().is_err() {
        println!("  skipped: needs prlimit (util-linux)");
        return Ok(());
    }
    let t = TempDir::new("midwrite");
    use image::ExtendedColorType as C;
    let files: Vec<PathBuf> = (0..6u32)
        .map(|i| {
            let px = texture(96, 64, u64::from(i) + 100);
            t.write(&format!("in/p{i}.png"), &png(&px, 96, 64, C::Rgb8))
        })
        .collect();
    let spec = ResizeSpec::new(96, 64); // PNG outputs of 3 to 5 KB: past the 1 KiB limit
    let enc = |d: &str| EncodeSpec {
        dir: t.path(d),
        format: ImageFormat::Png,
        strip_prefix: Some(t.path("in")),
        keep_extension: false,
    };
    let engine = engine(1)?;
    let (_, base) = run_job(
        &engine,
        &files,
        &spec,
        Some(&enc("base")),
        &RunOptions::default(),
    )?;
    let victim = engine.worker_pids()[0];
    let o = Command::new("prlimit")
        .arg(format!("--pid={victim}"))
        .args(["--fsize=1024:1024", "--core=0:0"])
        .output()
        .map_err(s)?;
    ensure!(
        o.status.success(),
        "prlimit: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let (out, rows) = run_job(
        &engine,
        &files,
        &spec,
        Some(&enc("limited")),
        &RunOptions::default(),
    )?;
    ensure!(out.failed.is_empty(), "failures: {:?}", out.failed);
    let deaths = engine.worker_deaths();
    ensure!(
        out.stats.worker_deaths == 1
            && deaths
                .iter()
                .any(|d| d.pid == victim && d.how.contains("SIGXFSZ")),
        "expected the limited worker to die of SIGXFSZ: {deaths:?}"
    );
    let expected: Vec<String> = (0..6).map(|i| format!("p{i}.png")).collect();
    same_batch(
        "mid-write death",
        (&base, &t.path("base")),
        (&rows, &t.path("limited")),
        &expected,
    )?;
    println!(
        "  figures: worker {victim} killed by SIGXFSZ inside its first write; 6 images done by its replacement, no temporary file"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 7. The tensor frame as an Arrow file, and nothing left behind.

fn tensor_frame_is_an_arrow_file() -> TestResult {
    let before = our_segments();
    let t = TempDir::new("arrow");
    use image::ExtendedColorType as C;
    let files = vec![
        t.write("a.png", &png(&gradient(30, 20), 30, 20, C::Rgb8)),
        t.write(
            "b.jpg",
            &jpeg(&flat(20, 30, &[200, 100, 50]), 20, 30, 3, JPEG_444),
        ),
        t.write("c.txt", b"not an image"),
    ];
    let spec = ResizeSpec {
        alpha: Alpha::Keep,
        ..ResizeSpec::new(12, 8)
    };
    let arrow_path = t.path("tensor.arrow");
    let seg_path;
    {
        let engine = engine(2)?;
        let (out, rows) = run_job(&engine, &files, &spec, None, &RunOptions::default())?;
        seg_path = out.frame.path().to_path_buf();
        ensure!(
            seg_path.exists() && seg_path.starts_with("/dev/shm"),
            "the output frame is not a /dev/shm segment: {}",
            seg_path.display()
        );
        // The segment is an Arrow IPC file byte for byte: copy it and map the copy.
        std::fs::copy(&seg_path, &arrow_path).map_err(s)?;
        let mapped = SharedFrame::map_arrow_file(&arrow_path).map_err(s)?;
        ensure!(
            tensor_shape(&mapped)? == [8, 12, 4],
            "shape {:?}",
            tensor_shape(&mapped)?
        );
        // Read with arrow's own reader as well, independent of shmframe's zero-copy path.
        let reader = arrow_ipc::reader::FileReader::try_new(
            std::fs::File::open(&arrow_path).map_err(s)?,
            None,
        )
        .map_err(s)?;
        let batches: Vec<RecordBatch> = reader.collect::<Result<_, _>>().map_err(s)?;
        ensure!(batches.len() == 1, "{} batches", batches.len());
        let b = &batches[0];
        let field = b.schema().field_with_name("image").map_err(s)?.clone();
        ensure!(
            field
                .metadata()
                .get("ARROW:extension:name")
                .map(String::as_str)
                == Some("arrow.fixed_shape_tensor")
                && field
                    .metadata()
                    .get("ARROW:extension:metadata")
                    .map(String::as_str)
                    == Some(r#"{"shape":[8,12,4]}"#),
            "field metadata {:?}",
            field.metadata()
        );
        ensure!(
            matches!(field.data_type(), DataType::FixedSizeList(item, 384) if item.data_type() == &DataType::UInt8),
            "type {}",
            field.data_type()
        );
        let col = b.column_by_name("image").unwrap();
        ensure!(
            col.null_count() == 1 && col.is_null(2),
            "nulls in the file: {}",
            col.null_count()
        );
        let list = col.as_any().downcast_ref::<FixedSizeListArray>().unwrap();
        for r in 0..2 {
            let v = list.value(r);
            let v = v.as_any().downcast_ref::<UInt8Array>().unwrap();
            ensure!(
                Some(v.values().to_vec()) == rows.pixels[r],
                "row {r} differs in the file"
            );
        }
        // The flat image: every pixel (200, 100, 50, 255).
        let flat_row = rows.pixels[1].as_ref().unwrap();
        ensure!(
            flat_row
                .chunks_exact(4)
                .all(|p| near(p, &[200, 100, 50, 255], 3)),
            "flat row is {:?}",
            &flat_row[..4]
        );
        drop(mapped);
        drop(out);
        ensure!(
            !seg_path.exists(),
            "the output segment outlived its frame: {}",
            seg_path.display()
        );
    }
    let after = our_segments();
    ensure!(
        after == before,
        "segments before {before:?}, after {after:?}"
    );
    ensure!(
        temp_files(&t.0).is_empty(),
        "temp files: {:?}",
        temp_files(&t.0)
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 8. resize_frame on a frame built from record batches.

fn resize_frame_from_batches() -> TestResult {
    let t = TempDir::new("frame");
    use image::ExtendedColorType as C;
    let imgs: Vec<(String, Vec<u8>)> = (0..7)
        .map(|i| {
            let px = flat(24, 16, &[i * 30, 255 - i * 30, 77]);
            let bytes = match i % 3 {
                0 => png(&px, 24, 16, C::Rgb8),
                1 => jpeg(&px, 24, 16, 3, JPEG_444),
                _ => webp_lossless(&px, 24, 16, C::Rgb8),
            };
            (format!("pics/p{i}.x"), bytes)
        })
        .collect();
    let mut bad = imgs.clone();
    bad[4].1 = b"garbage".to_vec();
    let batch = |range: std::ops::Range<usize>, large: bool| -> RecordBatch {
        let names = StringArray::from_iter_values(bad[range.clone()].iter().map(|(n, _)| n));
        let bytes: ArrayRef = if large {
            Arc::new(LargeBinaryArray::from_iter_values(
                bad[range].iter().map(|(_, b)| b.as_slice()),
            ))
        } else {
            Arc::new(BinaryArray::from_iter_values(
                bad[range].iter().map(|(_, b)| b.as_slice()),
            ))
        };
        RecordBatch::try_from_iter([("name", Arc::new(names) as ArrayRef), ("data", bytes)])
            .unwrap()
    };
    let engine = engine(2)?;
    let spec = ResizeSpec::new(12, 8);
    for large in [false, true] {
        // Three batches, concatenated into one frame.
        let frame = engine
            .frame_from_batches(&[batch(0..3, large), batch(3..5, large), batch(5..7, large)])
            .map_err(s)?;
        let enc = EncodeSpec {
            dir: t.path(&format!("out-{large}")),
            format: ImageFormat::WebP,
            strip_prefix: Some("pics".into()),
            keep_extension: false,
        };
        let out = engine
            .resize_frame(
                &frame,
                "data",
                Some("name"),
                &spec,
                Some(&enc),
                &RunOptions::default(),
            )
            .map_err(s)?;
        let rows = rows_of(&out, &spec)?;
        ensure!(
            out.failed.len() == 1 && out.failed[0].row == 4 && out.failed[0].path == "pics/p4.x",
            "failures {:?}",
            out.failed
        );
        ensure!(
            out.frame.column("image").map_err(s)?.null_count() == 1,
            "null count"
        );
        for (r, (name, bytes)) in imgs.iter().enumerate() {
            if r == 4 {
                ensure!(rows.pixels[r].is_none(), "row 4 not null");
                continue;
            }
            let (want, _) = resize_image(bytes, &spec).map_err(s)?;
            ensure!(
                rows.pixels[r].as_ref() == Some(&want),
                "{name}: pixels differ"
            );
        }
        ensure!(
            rows.paths.as_deref()
                == Some(&imgs.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>()[..]),
            "paths {:?}",
            rows.paths
        );
        let listed = files_below(&enc.dir);
        let want: Vec<String> = [0, 1, 2, 3, 5, 6]
            .iter()
            .map(|i| format!("p{i}.webp"))
            .collect();
        ensure!(listed == want, "files {listed:?}");
        // Written files decode to what the frame holds.
        let (px, w, h) = decode_file(&enc.dir.join("p0.webp"), 3)?;
        ensure!(
            (w, h) == (12, 8) && Some(&px) == rows.pixels[0].as_ref(),
            "p0.webp differs from the tensor"
        );
    }
    // Without a path column: failures are named by row, files by row number.
    let frame = engine
        .frame_from_batches(&[batch(0..7, false)])
        .map_err(s)?;
    let enc = EncodeSpec {
        dir: t.path("by-row"),
        format: ImageFormat::Jpeg { quality: 80 },
        strip_prefix: None,
        keep_extension: false,
    };
    let out = engine
        .resize_frame(
            &frame,
            "data",
            None,
            &spec,
            Some(&enc),
            &RunOptions::default(),
        )
        .map_err(s)?;
    ensure!(
        out.failed.len() == 1 && out.failed[0].path == "row 4",
        "failures {:?}",
        out.failed
    );
    ensure!(
        out.frame.column("path").is_err(),
        "a path column without paths"
    );
    let listed = files_below(&enc.dir);
    ensure!(
        listed
            == [
                "00000000.jpg",
                "00000001.jpg",
                "00000002.jpg",
                "00000003.jpg",
                "00000005.jpg",
                "00000006.jpg"
            ],
        "files {listed:?}"
    );
    // Wrong column types are errors of the call, with the reason.
    match engine.resize_frame(&frame, "name", None, &spec, None, &RunOptions::default()) {
        Err(EngineError::Input { reason, .. }) if reason.contains("Binary") => {}
        other => {
            return Err(format!(
                "a Utf8 bytes column: {:?}",
                other.map(|o| o.failed)
            ));
        }
    }
    match engine.resize_frame(
        &frame,
        "data",
        Some("data"),
        &spec,
        None,
        &RunOptions::default(),
    ) {
        Err(EngineError::Input { .. }) => {}
        other => {
            return Err(format!(
                "a binary path column: {:?}",
                other.map(|o| o.failed)
            ));
        }
    }
    match engine.resize_frame(&frame, "nope", None, &spec, None, &RunOptions::default()) {
        Err(EngineError::NoColumn { .. }) => {}
        other => return Err(format!("a missing column: {:?}", other.map(|o| o.failed))),
    }
    match engine.resize_frame(
        &frame,
        "data",
        None,
        &ResizeSpec::new(0, 5),
        None,
        &RunOptions::default(),
    ) {
        Err(EngineError::Input { what, .. }) if what == "size" => {}
        other => return Err(format!("size 0x5: {:?}", other.map(|o| o.failed))),
    }
    // Two inputs that would write the same file are refused before any work.
    let dup = RecordBatch::try_from_iter([
        (
            "name",
            Arc::new(StringArray::from(vec!["a/x.png", "b/x.jpg"])) as ArrayRef,
        ),
        (
            "data",
            Arc::new(BinaryArray::from_iter_values([&imgs[0].1, &imgs[1].1])) as ArrayRef,
        ),
    ])
    .unwrap();
    let frame = engine.frame_from_batches(&[dup]).map_err(s)?;
    let enc = EncodeSpec {
        dir: t.path("dup"),
        format: ImageFormat::Png,
        strip_prefix: None,
        keep_extension: false,
    };
    match engine.resize_frame(
        &frame,
        "data",
        Some("name"),
        &spec,
        Some(&enc),
        &RunOptions::default(),
    ) {
        Err(EngineError::Input { reason, .. }) if reason.contains("both would be written") => {}
        other => return Err(format!("colliding outputs: {:?}", other.map(|o| o.failed))),
    }
    ensure!(
        !t.path("dup").exists() || files_below(&t.path("dup")).is_empty(),
        "dup wrote files"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 9. pyarrow reads the tensor file and the live segment.

fn pyarrow_reads_tensor() -> TestResult {
    let py = match std::env::var("SHMFRAME_PYTHON") {
        Ok(p) if !p.is_empty() => p,
        _ => {
            println!(
                "  skipped: set SHMFRAME_PYTHON to a python with numpy, pyarrow and pytest (bash .ci/run does)"
            );
            return Ok(());
        }
    };
    let imports = Command::new(&py)
        .args(["-c", "import numpy, pyarrow, pytest"])
        .output()
        .map_err(|e| format!("cannot run {py}: {e}"))?;
    if !imports.status.success() {
        println!("  skipped: {py} cannot import numpy, pyarrow and pytest");
        return Ok(());
    }
    let t = TempDir::new("pyarrow");
    use image::ExtendedColorType as C;
    let flat_colour = [30u8, 160, 220];
    t.write("in/0-grad.png", &png(&gradient(40, 30), 40, 30, C::Rgb8));
    t.write(
        "in/1-flat.png",
        &png(&flat(25, 25, &flat_colour), 25, 25, C::Rgb8),
    );
    t.write(
        "in/2-photo.jpg",
        &jpeg(&texture(64, 48, 5), 64, 48, 3, JPEG_444),
    );
    t.write(
        "in/3-broken.jpg",
        b"\xff\xd8\xff\xe0 and then nothing useful",
    );
    t.write(
        "in/4-alpha.webp",
        &webp_lossless(&rgb_to_rgba(&gradient(30, 30)), 30, 30, C::Rgba8),
    );
    let files = list_image_files(&t.path("in"), false).map_err(s)?;
    let (tw, th) = (20u32, 14u32);
    let spec = ResizeSpec {
        fit: Fit::Contain,
        ..ResizeSpec::new(tw, th)
    };
    let engine = engine(2)?;
    let (out, rows) = run_job(&engine, &files, &spec, None, &RunOptions::default())?;
    ensure!(
        out.failed.iter().map(|f| f.row).collect::<Vec<_>>() == [3],
        "failures {:?}",
        out.failed
    );
    // What Rust produced, for python to compare: every row (nulls as zeros).
    let mut all = Vec::new();
    for p in &rows.pixels {
        all.extend_from_slice(p.as_deref().unwrap_or(&vec![0u8; spec.image_bytes()]));
    }
    let npy = t.path("expected.npy");
    // shmframe's .npy writer does 2-D: [images, H*W*C]; python reshapes with "shape".
    shmframe::npy::write_npy_typed(&npy, &[files.len(), spec.image_bytes()], &all).map_err(s)?;
    // The same images through the command, with --tensor-out.
    let tensor_file = t.path("tensor.arrow");
    let o = Command::new(BIN)
        .arg("resize")
        .arg(t.path("in"))
        .arg(t.path("out"))
        .args([
            "--size",
            &format!("{tw}x{th}"),
            "--fit",
            "contain",
            "--workers",
            "2",
            "--json",
        ])
        .arg("--tensor-out")
        .arg(&tensor_file)
        .output()
        .map_err(s)?;
    ensure!(
        o.status.code() == Some(3) && tensor_file.exists(),
        "shmframe resize: {} {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    // A second frame with no failure: to_numpy_ndarray() is only defined without nulls.
    let good: Vec<PathBuf> = files
        .iter()
        .filter(|f| !f.ends_with("3-broken.jpg"))
        .cloned()
        .collect();
    let (good_out, good_rows) = run_job(&engine, &good, &spec, None, &RunOptions::default())?;
    let mut good_all = Vec::new();
    for p in &good_rows.pixels {
        good_all.extend_from_slice(p.as_ref().unwrap());
    }
    let good_npy = t.path("expected_good.npy");
    shmframe::npy::write_npy_typed(&good_npy, &[good.len(), spec.image_bytes()], &good_all)
        .map_err(s)?;
    let expected = serde_json::json!({
        "shape": [th, tw, 3],
        "paths": files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "null_rows": [3],
        "flat_row": 1,
        "flat_colour": flat_colour,
        "sources": rows.sources,
    });
    let seg = out.frame.path().to_path_buf();
    let good_seg = good_out.frame.path().to_path_buf();
    let o = Command::new(&py)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", PY_SCRIPT])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("SHMFRAME_TENSOR_FILE", &tensor_file)
        .env("SHMFRAME_TENSOR_SEGMENT", &seg)
        .env("SHMFRAME_TENSOR_GOOD_SEGMENT", &good_seg)
        .env("SHMFRAME_TENSOR_EXPECTED_NPY", &npy)
        .env("SHMFRAME_TENSOR_GOOD_NPY", &good_npy)
        .env("SHMFRAME_TENSOR_EXPECTED", expected.to_string())
        .output()
        .map_err(s)?;
    let stdout = String::from_utf8_lossy(&o.stdout);
    ensure!(
        o.status.success() && stdout.contains("3 passed"),
        "pytest failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    println!(
        "  {}",
        stdout
            .lines()
            .rfind(|l| l.contains("passed"))
            .unwrap_or("")
            .trim()
    );
    ensure!(
        seg.exists() && good_seg.exists(),
        "python removed a segment"
    );
    drop((out, good_out));
    ensure!(
        !seg.exists() && !good_seg.exists(),
        "segments outlived their frames"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 10. Files written by Pillow, against Pillow's own results (`images/pillow.py`).

/// Runs `shmframe resize IN OUT ARGS..` with a private segment folder; its stderr on failure.
fn resize_command(t: &TempDir, input: &str, out: &str, args: &[&str]) -> Result<(), String> {
    let o = Command::new(BIN)
        .arg("resize")
        .arg(t.path(input))
        .arg(t.path(out))
        .args(args)
        .args(["--workers", "2"])
        .env("SHMFRAME_DIR", t.seg())
        .output()
        .map_err(s)?;
    ensure!(
        o.status.success(),
        "shmframe resize {input} {out} {args:?}: {}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    ensure!(t.segments().is_empty(), "left: {:?}", t.segments());
    Ok(())
}

/// Every EXIF orientation in every format that carries one, in files Pillow writes (and
/// the variants other producers write: eXIf after IDAT, ImageMagick's raw profile text,
/// an `Exif\0\0` header in WebP's chunk, XMP only): `shmframe resize` must give what
/// Pillow's `ImageOps.exif_transpose` + LANCZOS resize gives, and no other orientation.
fn exif_orientation_matches_pillow() -> TestResult {
    let Some(py) = pillow::python() else {
        return Ok(());
    };
    let t = TempDir::new("pillow-exif");
    let (w, h) = (32u32, 32u32);
    pillow::make(&py, "orientation", &t.0, w, h)?;
    let manifest: Vec<(String, String, u8)> =
        serde_json::from_slice(&pillow::read(&t.0, "manifest.json")?).map_err(s)?;
    let kinds: std::collections::BTreeSet<&str> =
        manifest.iter().map(|(_, k, _)| k.as_str()).collect();
    ensure!(
        manifest.len() == kinds.len() * 8
            && ["jpeg", "png", "webp-lossy", "webp-lossless"]
                .iter()
                .all(|k| kinds.contains(k)),
        "manifest: {manifest:?}"
    );
    resize_command(
        &t,
        "in",
        "out",
        &["--size", &format!("{w}x{h}"), "--format", "png"],
    )?;
    let mut refs = BTreeMap::new();
    for (stem, kind, o) in &manifest {
        refs.insert(
            (kind.as_str(), *o),
            pillow::read(&t.0, &format!("ref/{stem}.rgb"))?,
        );
    }
    let (mut worst_right, mut best_wrong) = (f64::INFINITY, 0.0f64);
    for (stem, kind, o) in &manifest {
        let (got, gw, gh) = decode_file(&t.path(&format!("out/{stem}.png")), 3)?;
        ensure!((gw, gh) == (w, h), "{stem}: {gw}x{gh}");
        let right = psnr(&got, &refs[&(kind.as_str(), *o)]);
        ensure!(
            right >= 40.0,
            "{stem}: {right:.1} dB against Pillow's exif_transpose + resize (orientation {o})"
        );
        worst_right = worst_right.min(right);
        for other in (1..=8u8).filter(|v| v != o) {
            let wrong = psnr(&got, &refs[&(kind.as_str(), other)]);
            ensure!(
                wrong < 25.0,
                "{stem}: {wrong:.1} dB against orientation {other} too: the picture cannot tell them apart"
            );
            best_wrong = best_wrong.max(wrong);
        }
    }
    println!(
        "  {} files ({} kinds x orientations 1-8): at least {worst_right:.1} dB against Pillow, at most {best_wrong:.1} dB against any other orientation",
        manifest.len(),
        kinds.len()
    );
    Ok(())
}

/// Colour channels of the pixels whose alpha is at least 64 in `reference`: the largest
/// difference (colours of nearly transparent pixels are too coarse to compare).
fn colour_err(got: &[u8], reference: &[u8]) -> u8 {
    got.chunks_exact(4)
        .zip(reference.chunks_exact(4))
        .filter(|(_, r)| r[3] >= 64)
        .flat_map(|(g, r)| (0..3).map(move |c| g[c].abs_diff(r[c])))
        .max()
        .unwrap_or(0)
}

fn alpha_channel(rgba: &[u8]) -> Vec<u8> {
    rgba.chunks_exact(4).map(|p| p[3]).collect()
}

fn rgba_over_white(rgba: &[u8]) -> Vec<u8> {
    rgba.chunks_exact(4)
        .flat_map(|p| [0, 1, 2].map(|c| over_white(p[c], p[3])))
        .collect()
}

/// Transparent pixels, against Pillow: `--keep-alpha` resamples premultiplied (the colour of
/// fully transparent pixels does not bleed into their neighbours), the default composites
/// over white before resampling, and JPEG output of RGBA is composited over white.
fn alpha_matches_pillow() -> TestResult {
    let Some(py) = pillow::python() else {
        return Ok(());
    };
    let t = TempDir::new("pillow-alpha");
    let (w, h) = (24u32, 16u32);
    pillow::make(&py, "alpha", &t.0, w, h)?;
    let keep = pillow::read(&t.0, "ref/keep.rgba")?;
    let straight = pillow::read(&t.0, "ref/straight.rgba")?;
    let flatten = pillow::read(&t.0, "ref/flatten.rgb")?;
    let size = format!("{w}x{h}");
    resize_command(
        &t,
        "in",
        "keep",
        &["--size", &size, "--format", "png", "--keep-alpha"],
    )?;
    resize_command(&t, "in", "flat", &["--size", &size, "--format", "png"])?;
    resize_command(
        &t,
        "in",
        "jpeg",
        &["--size", &size, "--keep-alpha", "--quality", "95"],
    )?;

    // --keep-alpha: alpha as Pillow's, colours as Pillow's premultiplied resampling; a
    // resampler that ignored alpha would be off by 100+ beside the transparent green.
    let (got, ..) = decode_file(&t.path("keep/alpha.png"), 4)?;
    let a = psnr(&alpha_channel(&got), &alpha_channel(&keep));
    ensure!(a >= 40.0, "--keep-alpha: alpha {a:.1} dB against Pillow");
    let (c, bleed) = (colour_err(&got, &keep), colour_err(&straight, &keep));
    ensure!(
        c <= 8 && bleed >= 50,
        "--keep-alpha: colour off by {c} where alpha >= 64 (straight-alpha resampling: {bleed})"
    );
    // Default: over white, then resampled.
    let (got, ..) = decode_file(&t.path("flat/alpha.png"), 3)?;
    let (p, p_straight) = (
        psnr(&got, &flatten),
        psnr(&rgba_over_white(&straight), &flatten),
    );
    ensure!(
        p >= 42.0 && p_straight < 40.0,
        "flattened: {p:.1} dB against Pillow (straight-alpha resampling: {p_straight:.1} dB)"
    );
    // JPEG of RGBA: over white, where libjpeg alone would show the black under alpha 0.
    let (got, ..) = decode_file(&t.path("jpeg/alpha.jpg"), 3)?;
    let want = rgba_over_white(&keep);
    let m = mae(&got, &want);
    let clear: Vec<u8> = got
        .chunks_exact(3)
        .zip(keep.chunks_exact(4))
        .filter(|(_, r)| r[3] == 0)
        .flat_map(|(g, _)| g.to_vec())
        .collect();
    let clear_mean = clear.iter().map(|&v| f64::from(v)).sum::<f64>() / clear.len().max(1) as f64;
    ensure!(
        m <= 8.0 && !clear.is_empty() && clear_mean >= 240.0,
        "JPEG of --keep-alpha: MAE {m:.2} against Pillow's RGBA over white; transparent pixels average {clear_mean:.0}"
    );
    println!(
        "  keep: alpha {a:.1} dB, colour within {c} (straight alpha: {bleed}); flatten {p:.1} dB; JPEG over white MAE {m:.2}"
    );
    Ok(())
}

/// The same without Python: opaque blue-grey beside fully transparent green, every filter.
/// Kept, the green never shows where there is alpha; flattened, every pixel is a mix of the
/// blue-grey and white only; as JPEG, transparent pixels are white.
fn transparent_pixels_do_not_bleed() -> TestResult {
    let (sw, sh) = (48u32, 32u32);
    let (blue, green) = ([40u8, 60, 200, 255], [0u8, 255, 0, 0]);
    let src: Vec<u8> = (0..sw * sh)
        .flat_map(|i| if i % sw < 20 { blue } else { green })
        .collect();
    let png_bytes = png(&src, sw, sh, image::ExtendedColorType::Rgba8);
    for filter in [
        Filter::Lanczos3,
        Filter::Bicubic,
        Filter::Bilinear,
        Filter::Nearest,
    ] {
        let spec = ResizeSpec {
            filter,
            alpha: Alpha::Keep,
            ..ResizeSpec::new(20, 12)
        };
        let (kept, _) = resize_image(&png_bytes, &spec).map_err(s)?;
        for p in kept.chunks_exact(4).filter(|p| p[3] >= 64) {
            // The blue-grey, at most scaled by the filter's ringing (which moves alpha and
            // the premultiplied colour together); green would pull the channels apart.
            let k = f64::from(p[2]) / f64::from(blue[2]);
            let scaled: Vec<u8> = blue[..3]
                .iter()
                .map(|&c| (f64::from(c) * k).round() as u8)
                .collect();
            ensure!(
                (0.85..=1.2).contains(&k) && near(&p[..3], &scaled, 3),
                "{filter:?} kept: {p:?} beside transparent green"
            );
        }
        ensure!(
            kept.chunks_exact(4).any(|p| p[3] == 0) && kept.chunks_exact(4).any(|p| p[3] == 255),
            "{filter:?}: no transparent or no opaque pixel left"
        );
        let flat_spec = ResizeSpec {
            alpha: Alpha::Flatten,
            ..spec.clone()
        };
        let (flat, _) = resize_image(&png_bytes, &flat_spec).map_err(s)?;
        for p in flat.chunks_exact(3) {
            // On the segment from blue-grey to white: the same fraction of the way in each
            // channel.
            let f: Vec<f64> = (0..3)
                .map(|c| (f64::from(p[c]) - f64::from(blue[c])) / (255.0 - f64::from(blue[c])))
                .collect();
            ensure!(
                (f[0] - f[1]).abs() < 0.05 && (f[1] - f[2]).abs() < 0.1,
                "{filter:?} flattened: {p:?} is no mix of {blue:?} and white"
            );
        }
        let jpg = encode_image(&kept, &spec, ImageFormat::Jpeg { quality: 95 }).map_err(s)?;
        let (back, ..) = decode_bytes(&jpg, 3)?;
        let want = rgba_over_white(&kept);
        let m = mae(&back, &want);
        ensure!(
            m <= 4.0,
            "{filter:?} JPEG of RGBA: MAE {m:.2} against it over white"
        );
        for (b, k) in back.chunks_exact(3).zip(kept.chunks_exact(4)) {
            ensure!(
                k[3] != 0 || b.iter().all(|&v| v >= 200),
                "{filter:?} JPEG of RGBA: transparent pixel written as {b:?}"
            );
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 11. Two inputs, one output name.

/// `a.jpg` and `a.png` would both be written as `a.jpg`: refused before any work, the error
/// naming both and `--keep-extension`; with it both are written, under names that keep the
/// source extension. The same through the library (`EncodeSpec::keep_extension`).
fn output_name_collisions() -> TestResult {
    let t = TempDir::new("collide");
    let (w, h) = (40u32, 30u32);
    use image::ExtendedColorType as C;
    t.write("in/a.jpg", &jpeg(&gradient(w, h), w, h, 3, JPEG_444));
    t.write("in/a.png", &png(&quadrants(w, h), w, h, C::Rgb8));
    t.write("in/sub/b.webp", &webp_lossless(&bands(w, h), w, h, C::Rgb8));
    let o = Command::new(BIN)
        .args(["resize", "--size", "16x12"])
        .arg(t.path("in"))
        .arg(t.path("out"))
        .args(["--recursive", "--workers", "2"])
        .env("SHMFRAME_DIR", t.seg())
        .output()
        .map_err(s)?;
    let err = String::from_utf8_lossy(&o.stderr);
    ensure!(
        o.status.code() == Some(2)
            && err.contains("in/a.jpg")
            && err.contains("in/a.png")
            && err.contains("both would be written")
            && err.contains("--keep-extension")
            && err.contains("a.jpg.jpg")
            && err.contains("a.png.jpg"),
        "collision: {} {err}",
        o.status
    );
    ensure!(
        files_below(&t.path("out")).is_empty(),
        "the refused job wrote {:?}",
        files_below(&t.path("out"))
    );
    resize_command(
        &t,
        "in",
        "out",
        &[
            "--size",
            "16x12",
            "--format",
            "png",
            "--recursive",
            "--keep-extension",
        ],
    )?;
    let mut written = files_below(&t.path("out"));
    written.sort();
    ensure!(
        written == ["a.jpg.png", "a.png.png", "sub/b.webp.png"],
        "written: {written:?}"
    );
    let spec = ResizeSpec::new(16, 12);
    for name in ["a.jpg", "a.png", "sub/b.webp"] {
        let (want, _) = resize_image(
            &std::fs::read(t.path(&format!("in/{name}"))).map_err(s)?,
            &spec,
        )
        .map_err(s)?;
        let (got, ..) = decode_file(&t.path(&format!("out/{name}.png")), 3)?;
        ensure!(got == want, "out/{name}.png is not {name} resized");
    }

    // The library: names from a frame's path column, no folder to strip.
    let engine = engine(2)?;
    let img = png(&gradient(w, h), w, h, C::Rgb8);
    let frame_of = |names: [&str; 2]| {
        let batch = RecordBatch::try_from_iter([
            (
                "name",
                Arc::new(StringArray::from(names.to_vec())) as ArrayRef,
            ),
            (
                "data",
                Arc::new(BinaryArray::from_iter_values([&img, &img])) as ArrayRef,
            ),
        ])
        .map_err(s)?;
        engine.frame_from_batches(&[batch]).map_err(s)
    };
    let enc = |dir: &str, keep_extension| EncodeSpec {
        dir: t.path(dir),
        format: ImageFormat::Png,
        strip_prefix: None,
        keep_extension,
    };
    let run = |frame: &SharedFrame, enc: &EncodeSpec| {
        engine.resize_frame(
            frame,
            "data",
            Some("name"),
            &spec,
            Some(enc),
            &RunOptions::default(),
        )
    };
    let x = frame_of(["a/x.png", "b/x.jpg"])?;
    match run(&x, &enc("lib", false)) {
        Err(EngineError::Input { what, reason })
            if what == "a/x.png and b/x.jpg"
                && reason.contains("both would be written")
                && reason.contains("keep_extension")
                && reason.contains("x.png.png") => {}
        other => return Err(format!("colliding outputs: {:?}", other.map(|o| o.failed))),
    }
    let out = run(&x, &enc("lib", true)).map_err(s)?;
    ensure!(out.failed.is_empty(), "failures: {:?}", out.failed);
    let mut written = files_below(&t.path("lib"));
    written.sort();
    ensure!(
        written == ["x.jpg.png", "x.png.png"],
        "written: {written:?}"
    );
    drop(out);
    // Where keeping the extension does not help, the error does not offer it.
    let same = frame_of(["a/x.png", "b/x.png"])?;
    match run(&same, &enc("lib2", true)) {
        Err(EngineError::Input { reason, .. })
            if reason.contains("rename one") && !reason.contains("keep_extension") => {}
        other => return Err(format!("same names: {:?}", other.map(|o| o.failed))),
    }
    ensure!(!t.path("lib2").exists(), "the refused job wrote files");
    ensure!(t.segments().is_empty(), "left: {:?}", t.segments());
    Ok(())
}

fn main() {
    common::tests![
        formats_round_trip,
        encode_image_round_trips,
        fits_filters_and_shapes,
        exif_orientation,
        quality_guard_psnr,
        listing_follows_file_links,
        bad_inputs_fail_alone,
        worker_killed_mid_batch,
        worker_dies_mid_write,
        tensor_frame_is_an_arrow_file,
        resize_frame_from_batches,
        pyarrow_reads_tensor,
        exif_orientation_matches_pillow,
        alpha_matches_pillow,
        transparent_pixels_do_not_bleed,
        output_name_collisions,
    ];
}
