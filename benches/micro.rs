//! Criterion micro-benchmarks, separate from the comparison script: the row kernels, the
//! empty-job round trip of a warm pool (`iter_custom`), segment create/publish/attach, and
//! one image's decode + resize.
//!
//! Run: `cargo bench -p shmframe --bench micro` (`-- --quick` for a short run, or a filter such
//! as `-- kernels`).
//!
//! The engine forks its workers, which it refuses in a multi-threaded process, so this has its
//! own `main`: the pool is built before Criterion runs anything.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use shmframe::image::{ImageFormat, ResizeSpec, encode_image, resize_image};
use shmframe::kernels::{Accumulate, apply_rows, normalize_rows};
use shmframe::{Engine, RowKernel};
use shmframe_ipc::{CreateOptions, Segment, SegmentMut, SegmentName};

fn values(n: usize) -> Vec<f64> {
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        })
        .collect()
}

fn kernels(c: &mut Criterion) {
    let mut g = c.benchmark_group("kernels");
    // 8 MiB of f64 per shape: narrow rows (per-row overhead) and wide rows (streaming).
    for cols in [16usize, 128] {
        let rows = (1 << 20) / cols;
        let x = values(rows * cols);
        let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let q: Vec<f64> = values(cols);
        let mut out = vec![0.0f64; rows];
        let mut out32 = vec![0.0f32; rows];
        let mut unit = vec![0.0f64; rows * cols];
        g.throughput(Throughput::Bytes((rows * cols * 8) as u64));
        for (name, k) in [
            ("l2", RowKernel::L2),
            ("sum", RowKernel::Sum),
            ("std", RowKernel::Std { ddof: 1 }),
            ("cosine", RowKernel::Cosine),
        ] {
            let query = k.needs_query().then_some(q.as_slice());
            g.bench_function(BenchmarkId::new(format!("{name}/f64"), cols), |b| {
                b.iter(|| apply_rows(&k, Accumulate::F64, black_box(&x), cols, query, &mut out))
            });
        }
        g.throughput(Throughput::Bytes((rows * cols * 4) as u64));
        g.bench_function(BenchmarkId::new("l2/f32-acc-f64", cols), |b| {
            b.iter(|| {
                apply_rows(
                    &RowKernel::L2,
                    Accumulate::F64,
                    black_box(&x32),
                    cols,
                    None,
                    &mut out32,
                )
            })
        });
        g.throughput(Throughput::Bytes((rows * cols * 8) as u64));
        g.bench_function(BenchmarkId::new("normalize/f64", cols), |b| {
            b.iter(|| normalize_rows(black_box(&x), cols, &mut unit))
        });
    }
    g.finish();
}

fn round_trip(c: &mut Criterion, engine: &Engine) {
    let mut g = c.benchmark_group("pool");
    g.bench_function("empty-job round trip", |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                engine.run_empty().expect("empty job");
            }
            t.elapsed()
        })
    });
    g.finish();
}

fn segments(c: &mut Criterion) {
    let mut g = c.benchmark_group("segments");
    for (label, len) in [
        ("4KiB", 4usize << 10),
        ("1MiB", 1 << 20),
        ("64MiB", 64 << 20),
    ] {
        g.bench_function(
            BenchmarkId::new("create+publish+attach+unlink", label),
            |b| {
                b.iter(|| {
                    let name = SegmentName::owned("bench").expect("name");
                    let seg = SegmentMut::create(name, len, &CreateOptions::default())
                        .expect("create")
                        .publish()
                        .expect("publish");
                    let reader = Segment::attach(seg.name(), seg.dir()).expect("attach");
                    black_box(reader.payload().len());
                })
            },
        );
    }
    g.finish();
}

fn images(c: &mut Criterion) {
    // A photo-like JPEG (smooth gradients plus texture), baseline and progressive, resized to
    // 256x256: 2400x1600 takes libjpeg's reduced DCT decode when baseline and the first-scan
    // reader at 1/4 when progressive, 4096x2304 the DC-only (1/8) reader when progressive.
    // SHMFRAME_BENCH_JPEG=FILE adds a file of yours.
    let mut g = c.benchmark_group("image");
    g.throughput(Throughput::Elements(1));
    for (w, h) in [(2400u32, 1600u32), (4096, 2304)] {
        for progressive in [false, true] {
            let jpg = photo_like_jpeg(w, h, progressive);
            let kind = if progressive {
                "progressive"
            } else {
                "baseline"
            };
            decode_variants(&mut g, &format!("{w}x{h} {kind}"), &jpg);
        }
    }
    if let Some(path) = std::env::var_os("SHMFRAME_BENCH_JPEG") {
        // cargo bench runs in engine/: relative paths are relative to it.
        let jpg = std::fs::read(&path).unwrap_or_else(|e| {
            panic!("SHMFRAME_BENCH_JPEG={}: {e} (cwd engine/)", path.display())
        });
        let name = std::path::Path::new(&path).file_name().unwrap_or_default();
        decode_variants(&mut g, &name.to_string_lossy(), &jpg);
    }
    g.finish();
}

/// decode+resize to 256x256 with the defaults, with libjpeg decoding every scan at reduced
/// scale, and in full.
fn decode_variants(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    label: &str,
    jpg: &[u8],
) {
    let variants = [
        ("default", 2.0f32, 1.0f32),
        ("libjpeg-scaled", 2.0, 0.0),
        ("full-decode", 0.0, 0.0),
    ];
    for (variant, oversample, progressive_oversample) in variants {
        let spec = ResizeSpec {
            min_oversample: oversample,
            progressive_oversample,
            ..ResizeSpec::new(256, 256)
        };
        g.bench_function(
            BenchmarkId::new(format!("decode+resize {label}"), variant),
            |b| b.iter(|| resize_image(black_box(jpg), &spec).expect("resize")),
        );
    }
}

fn photo_like_jpeg(w: u32, h: u32, progressive: bool) -> Vec<u8> {
    let noise = values((w * h) as usize);
    let px: Vec<u8> = (0..(w * h) as usize)
        .flat_map(|i| {
            let (x, y) = ((i as u32 % w) as f64, (i as u32 / w) as f64);
            let n = noise[i] * 40.0;
            [
                (x / 10.0 + n).clamp(0.0, 255.0) as u8,
                (y / 7.0 + n).clamp(0.0, 255.0) as u8,
                ((x + y) / 16.0 - n).clamp(0.0, 255.0) as u8,
            ]
        })
        .collect();
    let jpg = encode_image(
        &px,
        &ResizeSpec::new(w, h),
        ImageFormat::Jpeg { quality: 90 },
    )
    .expect("encode");
    if !progressive {
        return jpg;
    }
    // Lossless re-encode of the same coefficients as a progressive JPEG.
    let mut t = turbojpeg::Transformer::new().expect("transformer");
    let mut transform = turbojpeg::Transform::default();
    transform.progressive = true;
    t.transform_to_vec(&transform, &jpg).expect("progressive")
}

fn main() {
    // Fork the pool first, while this process has one thread.
    let engine = Engine::builder().workers(2).build().expect("engine");
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    kernels(&mut c);
    round_trip(&mut c, &engine);
    segments(&mut c);
    images(&mut c);
    c.final_summary();
}
