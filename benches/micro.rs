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
    // A photo-like 2400x1600 JPEG (smooth gradients plus texture), resized to 256x256.
    let (w, h) = (2400u32, 1600u32);
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
    let mut g = c.benchmark_group("image");
    g.throughput(Throughput::Elements(1));
    for (label, oversample) in [("reduced-dct", 2.0f32), ("full-decode", 0.0)] {
        let spec = ResizeSpec {
            min_oversample: oversample,
            ..ResizeSpec::new(256, 256)
        };
        g.bench_function(
            BenchmarkId::new("decode+resize 2400x1600 jpeg", label),
            |b| b.iter(|| resize_image(black_box(&jpg), &spec).expect("resize")),
        );
    }
    g.finish();
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
