//! Fault injection with real processes (issue 7): workers SIGKILLed at random moments,
//! concurrent engines sharing one named segment, a coordinator killed mid-job, a `/dev/shm`
//! too small or on 2 MiB pages, and another user trying to attach. Prints the figures it
//! measures.
//!
//! `harness = false`: the engine forks, which it refuses in a multi-threaded process. main()
//! lists every test in `common::tests!`, which runs them in order on the main thread through
//! libtest-mimic. A test function left out of that list is dead code, denied below.

#![deny(dead_code)]

#[path = "../../engine/tests/common/mod.rs"]
mod common;

use common::{Rng, TestResult, files_below};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use arrow_array::{Array, FixedSizeListArray, Float64Array, UInt8Array};
use shmframe::image::{EncodeSpec, ImageFormat, ResizeOutput, ResizeSpec};
use shmframe::kernels::{Accumulate, apply_rows};
use shmframe::{Engine, Kernel, RowKernel, RunOptions};

const BIN: &str = env!("CARGO_BIN_EXE_shmframe");

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Test images: a mix of JPEG, PNG and lossless WebP of varied sizes and content, written
/// into `dir` with `shmframe::image::encode_image`. Returns their paths, sorted.
fn write_test_images(dir: &std::path::Path, n: u32, seed: u64) -> Vec<PathBuf> {
    let mut rng = Rng(seed);
    let mut paths = Vec::new();
    for i in 0..n {
        let (w, h) = (48 + rng.below(48) as u32, 32 + rng.below(48) as u32);
        let px: Vec<u8> = (0..w * h)
            .flat_map(|p| {
                let (x, y) = (p % w, p / w);
                let noise = rng.below(24) as u32;
                [
                    ((x * 255 / w + noise) % 256) as u8,
                    ((y * 255 / h + noise) % 256) as u8,
                    ((x * y + i * 40) % 256) as u8,
                ]
            })
            .collect();
        let format = match i % 3 {
            0 => ImageFormat::Jpeg { quality: 90 },
            1 => ImageFormat::Png,
            _ => ImageFormat::WebP,
        };
        let bytes = shmframe::image::encode_image(&px, &ResizeSpec::new(w, h), format)
            .expect("encode a test image");
        let p = dir.join(format!("img{i:03}.{}", format.extension()));
        std::fs::write(&p, bytes).expect("write a test image");
        paths.push(p);
    }
    paths
}

/// The pixels of an image job's output, row by row (None for a failed image).
fn tensor_rows(out: &ResizeOutput) -> Vec<Option<Vec<u8>>> {
    let list = out
        .frame
        .column("image")
        .expect("image column")
        .as_any()
        .downcast_ref::<FixedSizeListArray>()
        .expect("tensor column");
    let per = list.value_length() as usize;
    let values = list
        .values()
        .as_any()
        .downcast_ref::<UInt8Array>()
        .expect("uint8 tensors")
        .values();
    (0..list.len())
        .map(|r| {
            list.is_valid(r)
                .then(|| values[r * per..(r + 1) * per].to_vec())
        })
        .collect()
}

/// 200 jobs, each with one or two workers SIGKILLed at a random moment by a separate process
/// (not a thread: the coordinator must stay single-threaded to fork replacements). Every
/// result must be exact. Every 8th job is an image batch (decode, resize, PNG files): every
/// image's pixels and file identical to an unkilled run, each file present once, no
/// temporary file left.
fn random_kills_200_jobs() -> TestResult {
    let engine = Engine::builder()
        .workers(2)
        .build()
        .map_err(|e| e.to_string())?;
    let mut rng = Rng(0x5eed);
    let (rows, cols) = (60_000, 8);
    let x: Vec<f64> = (0..rows * cols).map(|_| rng.f64()).collect();
    let frame = engine
        .frame_from_slice(&x, cols)
        .map_err(|e| e.to_string())?;
    let kernels = [
        RowKernel::L2,
        RowKernel::Sum,
        RowKernel::Std { ddof: 1 },
        RowKernel::LInf,
    ];
    let wants: Vec<Vec<f64>> = kernels
        .iter()
        .map(|k| {
            let mut w = vec![0.0; rows];
            apply_rows(k, Accumulate::F64, &x, cols, None, &mut w).unwrap();
            w
        })
        .collect();
    let opts = RunOptions {
        chunk_rows: Some(1000),
        test_chunk_sleep: Some(Duration::from_micros(200)),
        ..Default::default()
    };
    // Baseline latency without faults.
    let mut base = Vec::new();
    for i in 0..20 {
        let (_, s) = engine
            .run_full(
                Kernel::Row(kernels[i % 4].clone()),
                &frame,
                &["x"],
                None,
                &opts,
            )
            .map_err(|e| e.to_string())?;
        base.push(s.seconds);
    }
    // The image batch, and its unkilled result.
    let img_dir = std::env::temp_dir().join(format!("shmframe-faults-img-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&img_dir);
    std::fs::create_dir_all(img_dir.join("in")).map_err(|e| e.to_string())?;
    struct RemoveDir(PathBuf);
    impl Drop for RemoveDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _cleanup = RemoveDir(img_dir.clone());
    let images = write_test_images(&img_dir.join("in"), 24, 0xfeed);
    let spec = ResizeSpec::new(40, 30);
    let encode = |d: &str| EncodeSpec {
        dir: img_dir.join(d),
        format: ImageFormat::Png,
        strip_prefix: Some(img_dir.join("in")),
        keep_extension: false,
    };
    let img_opts = RunOptions {
        chunk_rows: Some(1),
        ..Default::default()
    };
    let unkilled = engine
        .resize_paths(&images, &spec, Some(&encode("base")), &img_opts)
        .map_err(|e| format!("unkilled image job: {e}"))?;
    if !unkilled.failed.is_empty() {
        return Err(format!(
            "unkilled image job failed images: {:?}",
            unkilled.failed
        ));
    }
    let base_pixels = tensor_rows(&unkilled);
    let base_files = files_below(&img_dir.join("base"));
    let base_bytes: Vec<Vec<u8>> = base_files
        .iter()
        .map(|f| std::fs::read(img_dir.join("base").join(f)))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    if base_files.len() != images.len() {
        return Err(format!("unkilled image job wrote {base_files:?}"));
    }
    let image_job_ms = unkilled.stats.seconds * 1e3;
    drop(unkilled);
    let (mut image_jobs, mut image_deaths, mut image_kills) = (0usize, 0usize, 0usize);
    let (mut kills, mut faulted) = (0usize, Vec::new());
    for job in 0..200 {
        let k = job % kernels.len();
        let pids = engine.worker_pids();
        let n_kill = 1 + rng.below(2) as usize;
        let victims: Vec<String> = pids.iter().take(n_kill).map(|p| p.to_string()).collect();
        kills += victims.len();
        let delay = rng.below(25) as f64 / 1000.0;
        let mut killer = Command::new("sh")
            .arg("-c")
            .arg(format!("sleep {delay}; kill -9 {}", victims.join(" ")))
            .spawn()
            .map_err(|e| e.to_string())?;
        if job % 8 == 7 {
            let dir = format!("job{job}");
            let r = engine.resize_paths(&images, &spec, Some(&encode(&dir)), &img_opts);
            killer.wait().ok();
            let out = r.map_err(|e| format!("job {job} (images): {e}"))?;
            image_jobs += 1;
            image_kills += victims.len();
            image_deaths += out.stats.worker_deaths;
            if !out.failed.is_empty() || tensor_rows(&out) != base_pixels {
                return Err(format!(
                    "job {job} (images): pixels differ from the unkilled run, failures {:?}",
                    out.failed
                ));
            }
            let out_dir = img_dir.join(&dir);
            let listed = files_below(&out_dir);
            if listed != base_files {
                return Err(format!(
                    "job {job} (images): files {listed:?}, want each of {base_files:?} once (no temporary file)"
                ));
            }
            for (f, want) in base_files.iter().zip(&base_bytes) {
                if &std::fs::read(out_dir.join(f)).map_err(|e| e.to_string())? != want {
                    return Err(format!(
                        "job {job} (images): {f} differs from the unkilled run's"
                    ));
                }
            }
            let _ = std::fs::remove_dir_all(&out_dir);
            continue;
        }
        let r = engine.run_full(Kernel::Row(kernels[k].clone()), &frame, &["x"], None, &opts);
        killer.wait().ok();
        let (out, stats) = r.map_err(|e| format!("job {job}: {e}"))?;
        let got = out
            .batch()
            .column(0)
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap();
        if got.values().as_ref() != wants[k].as_slice() || got.null_count() != 0 {
            return Err(format!(
                "job {job} ({}) returned a wrong answer",
                kernels[k].name()
            ));
        }
        faulted.push(stats.seconds);
    }
    let deaths = engine.worker_deaths();
    let redone: usize = deaths.iter().map(|d| d.chunks_redone).sum();
    let mb = median(&mut base);
    let mf = median(&mut faulted);
    let max = faulted.iter().copied().fold(0.0, f64::max);
    println!(
        "  figures: 200 jobs, {kills} kills sent, {} worker deaths seen, {redone} chunks redone; \
         job latency median {:.1} ms without faults, {:.1} ms with (added {:.1} ms), max {:.1} ms",
        deaths.len(),
        mb * 1e3,
        mf * 1e3,
        (mf - mb) * 1e3,
        max * 1e3
    );
    println!(
        "  figures: {image_jobs} of them image batches of {} images ({image_job_ms:.0} ms \
         unkilled): {image_kills} kills sent, {image_deaths} worker deaths seen; every image \
         exact, every file once, no temporary file",
        images.len()
    );
    Ok(())
}

/// Eight concurrent coordinators (CLI processes, each with its own pool) read one named
/// segment; all results are identical and exact.
fn eight_engines_share_one_segment() -> TestResult {
    let dir = std::env::temp_dir().join(format!("shmframe-faults-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let name = format!("faults{}", std::process::id());
    let cleanup = |dir: &PathBuf| {
        let _ = Command::new(BIN).args(["rm", &name]).output();
        let _ = std::fs::remove_dir_all(dir);
    };
    let run = || -> TestResult {
        let x = dir.join("x.npy");
        let st = Command::new(BIN)
            .args([
                "gen", "matrix", "--rows", "200000", "--cols", "16", "--dtype", "f64", "--seed",
                "3", "--out",
            ])
            .arg(&x)
            .status()
            .map_err(|e| e.to_string())?;
        if !st.success() {
            return Err("gen failed".into());
        }
        let st = Command::new(BIN)
            .arg("load")
            .arg(&x)
            .args(["--name", &name])
            .output()
            .map_err(|e| e.to_string())?;
        if !st.status.success() {
            return Err(format!(
                "load failed: {}",
                String::from_utf8_lossy(&st.stderr)
            ));
        }
        let children: Vec<_> = (0..8)
            .map(|i| {
                Command::new(BIN)
                    .args([
                        "run",
                        "l2-norm",
                        "--input",
                        &format!("shm:{name}"),
                        "--workers",
                        "2",
                        "--out",
                    ])
                    .arg(dir.join(format!("out{i}.npy")))
                    .spawn()
            })
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        for mut c in children {
            if !c.wait().map_err(|e| e.to_string())?.success() {
                return Err("a concurrent run failed".into());
            }
        }
        let reference = std::fs::read(dir.join("out0.npy")).map_err(|e| e.to_string())?;
        let input = shmframe::npy::NpyFile::open(&x).map_err(|e| e.to_string())?;
        let mut want = vec![0.0; 200_000];
        apply_rows(
            &RowKernel::L2,
            Accumulate::F64,
            input.as_f64().unwrap(),
            16,
            None,
            &mut want,
        )
        .unwrap();
        let out0 = shmframe::npy::NpyFile::open(dir.join("out0.npy")).map_err(|e| e.to_string())?;
        if out0.as_f64().unwrap() != want.as_slice() {
            return Err("concurrent result differs from the reference".into());
        }
        for i in 1..8 {
            if std::fs::read(dir.join(format!("out{i}.npy"))).map_err(|e| e.to_string())?
                != reference
            {
                return Err(format!("run {i} differs from run 0"));
            }
        }
        println!(
            "  figures: 8 coordinators x 2 workers on one 24 MiB segment: 8 identical exact results"
        );
        Ok(())
    };
    let r = run();
    cleanup(&dir);
    r
}

/// Runs the shell `commands` in a private mount namespace whose /dev/shm is a fresh tmpfs
/// mounted with `options`, then counts the shmframe objects left there (the last line of the
/// output). Returns its stdout, or `None` (having said why) where that cannot be done: not
/// root, no `unshare`, no tmpfs mount.
fn on_private_dev_shm(options: &str, commands: &str) -> Result<Option<String>, String> {
    if !nix::unistd::geteuid().is_root() || Command::new("unshare").arg("--help").output().is_err()
    {
        println!("  skipped: needs root and unshare");
        return Ok(None);
    }
    let script = format!(
        "set -u; mount -t tmpfs -o {options} tmpfs /dev/shm || exit 77; {commands} \
         ls /dev/shm | grep -c shmframe || true"
    );
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.code() == Some(77) {
        println!("  skipped: cannot mount a tmpfs here");
        return Ok(None);
    }
    Ok(Some(String::from_utf8_lossy(&out.stdout).to_string()))
}

/// [`on_private_dev_shm`] with an 8 MiB /dev/shm.
fn on_small_dev_shm(commands: &str) -> Result<Option<String>, String> {
    on_private_dev_shm("size=8m", commands)
}

/// As root: a private mount namespace whose /dev/shm is a tmpfs mounted huge=within_size
/// (benches/on_huge_shm.sh's setting). A 51 MB matrix is loaded there and its row norms
/// computed by 2 workers: while the job runs, the workers map the segments with 2 MiB pages
/// (`ShmemPmdMapped` in their smaps_rollup), the norms are byte for byte those of the same
/// job with the segments on this machine's /dev/shm, and nothing is left behind.
fn huge_page_dev_shm() -> TestResult {
    let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/shmem_enabled");
    if thp.as_deref().map_or(true, |s| s.contains("[deny]")) {
        println!("  skipped: this kernel gives tmpfs no huge pages");
        return Ok(());
    }
    let dir = std::env::temp_dir().join(format!("shmframe-hugeshm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let run = || -> TestResult {
        let d = dir.display();
        let sh = |script: &str| {
            Command::new("sh")
                .args(["-c", script])
                .status()
                .map_err(|e| e.to_string())
        };
        let made = sh(&format!(
            "{BIN} gen matrix --rows 400000 --cols 16 --dtype f64 --seed 5 --out {d}/x.npy >/dev/null && \
             {BIN} run l2-norm --input {d}/x.npy --workers 2 --out {d}/small-pages.npy >/dev/null"
        ))?;
        if !made.success() {
            return Err(format!("the reference job failed: {made}"));
        }
        // 16 chunks of 25000 rows, 40 ms each: the job lasts about 0.3 s on 2 workers; the
        // workers' smaps_rollup is sampled every 20 ms while it runs (the largest figure wins).
        let stdout = on_private_dev_shm(
            "huge=within_size",
            &format!(
                "{BIN} load {d}/x.npy --name hugein >/dev/null || exit 10; \
                 {BIN} run l2-norm --input shm:hugein --workers 2 --chunk-rows 25000 \
                   --test-chunk-sleep-ms 40 --out {d}/huge-pages.npy >/dev/null & p=$!; \
                 max=0; while kill -0 $p 2>/dev/null; do \
                   for c in $(awk -v p=$p '$4 == p {{ print $1 }}' /proc/[0-9]*/stat 2>/dev/null); do \
                     v=$(awk '/^ShmemPmdMapped/ {{ print $2 }}' /proc/$c/smaps_rollup 2>/dev/null); \
                     [ \"${{v:-0}}\" -gt \"$max\" ] && max=$v; \
                   done; sleep 0.02; \
                 done; wait $p; echo run=$?; echo pmd_kib=$max; \
                 {BIN} rm hugein >/dev/null; echo rm=$?;"
            ),
        )?;
        let Some(stdout) = stdout else {
            return Ok(());
        };
        let lines: Vec<&str> = stdout.lines().collect();
        let [run, pmd, rm, left] = lines[..] else {
            return Err(format!("unexpected output {stdout:?}"));
        };
        if run != "run=0" || rm != "rm=0" || left != "0" {
            return Err(format!("expected success and nothing left, got {stdout:?}"));
        }
        let pmd_kib: u64 = pmd
            .strip_prefix("pmd_kib=")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("no smaps figure in {stdout:?}"))?;
        if pmd_kib < 2048 {
            return Err(format!(
                "the workers mapped {pmd_kib} KiB of shared memory with 2 MiB pages, \
                 less than one page"
            ));
        }
        let read = |f: &str| std::fs::read(dir.join(f)).map_err(|e| format!("{f}: {e}"));
        let (small, huge) = (read("small-pages.npy")?, read("huge-pages.npy")?);
        if small != huge || small.len() != 128 + 400_000 * 8 {
            return Err(format!(
                "the norms differ between 4 KiB and 2 MiB pages ({} and {} bytes)",
                small.len(),
                huge.len()
            ));
        }
        println!(
            "  figures: 400000 x 16 f64 on a huge=within_size /dev/shm: up to {pmd_kib} KiB \
             PMD-mapped in one worker; norms identical to the 4 KiB-page run"
        );
        Ok(())
    };
    let r = run();
    let _ = std::fs::remove_dir_all(&dir);
    r
}

/// The environment variable that makes this binary the child of
/// [`recycled_outputs_make_room`]: its value is the directory of the test's input files.
const ROOM_CHILD_ENV: &str = "SHMFRAME_FAULTS_ROOM_CHILD";

/// As root: an engine on an 8 MiB /dev/shm (this test binary run again in a private mount
/// namespace, as [`recycled_outputs_make_room_child`]) holds a dropped 4 MB output for reuse;
/// the next job needs a 4.2 MB output of another shape, which only fits once the held one is
/// released: the engine releases it and the job succeeds. With nothing held to release, a
/// job that does not fit fails with the space error. Nothing is left behind.
fn recycled_outputs_make_room() -> TestResult {
    let dir = std::env::temp_dir().join(format!("shmframe-room-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let stdout = on_small_dev_shm(&format!(
        "{ROOM_CHILD_ENV}='{}' '{}'; echo child=$?;",
        dir.display(),
        exe.display()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let Some(stdout) = stdout? else {
        return Ok(());
    };
    let lines: Vec<&str> = stdout.lines().collect();
    match lines[..] {
        [ref said @ .., "child=0", "0"] => {
            said.iter().for_each(|l| println!("{l}"));
            Ok(())
        }
        _ => Err(format!("expected success and nothing left, got {stdout:?}")),
    }
}

/// The body of [`recycled_outputs_make_room`], in its mount namespace: /dev/shm is the 8 MiB
/// tmpfs, the inputs are `.npy` files in `dir` (mapped in place, outside the tmpfs).
fn recycled_outputs_make_room_child(dir: &std::path::Path) -> TestResult {
    let cols = 2;
    let input = |rows: usize, seed: u64| -> Result<(PathBuf, Vec<f64>), String> {
        let mut rng = Rng(seed);
        let x: Vec<f64> = (0..rows * cols).map(|_| rng.f64()).collect();
        let path = dir.join(format!("x{rows}.npy"));
        shmframe::npy::write_npy_typed(&path, &[rows, cols], &x).map_err(|e| e.to_string())?;
        let mut want = vec![0.0; rows];
        apply_rows(&RowKernel::L2, Accumulate::F64, &x, cols, None, &mut want)
            .map_err(|e| e.to_string())?;
        Ok((path, want))
    };
    // 4.0 MB and 4.2 MB of norms: each fits in the 8 MiB next to the control segment, not
    // both.
    let (pa, want_a) = input(500_000, 21)?;
    let (pb, want_b) = input(520_000, 22)?;
    let outputs = || -> Vec<String> {
        let mut v = common::our_segments();
        v.retain(|n| n.ends_with(".out"));
        v
    };
    let engine = Engine::builder()
        .workers(2)
        .segment_dir(shmframe_ipc::SegmentDir::Shm)
        // The default bound, an eighth of this 8 MiB file system, would hold nothing.
        .recycle_outputs(64 << 20)
        .build()
        .map_err(|e| e.to_string())?;
    let run = |path: &PathBuf| {
        let frame = engine.frame_from_npy(path).map_err(|e| e.to_string())?;
        engine
            .run_full(
                Kernel::Row(RowKernel::L2),
                &frame,
                &["x"],
                None,
                &RunOptions::default(),
            )
            .map_err(|e| e.to_string())
    };
    let check = |out: &shmframe::SharedFrame, want: &[f64], what: &str| -> TestResult {
        let got = out
            .batch()
            .column(0)
            .as_any()
            .downcast_ref::<Float64Array>()
            .ok_or("norms are not f64")?;
        if got.values().as_ref() != want {
            return Err(format!("{what}: wrong norms"));
        }
        Ok(())
    };
    let (a, _) = run(&pa)?;
    check(&a, &want_a, "job a")?;
    let held = outputs();
    drop(a);
    if outputs() != held || held.len() != 1 {
        return Err(format!("a's dropped output is not held: {held:?}"));
    }
    let (b, stats) = run(&pb)?;
    check(&b, &want_b, "job b")?;
    let now = outputs();
    if stats.output_reused || now.len() != 1 || now == held {
        return Err(format!(
            "b: reused {}, outputs {held:?} then {now:?} (a's should have been released)",
            stats.output_reused
        ));
    }
    // Nothing held now, and a's shape does not fit next to b: the space error.
    match run(&pa) {
        Err(e) if e.contains("not enough space") => {}
        r => {
            return Err(format!(
                "a again next to b: expected the space error, got {r:?}"
            ));
        }
    }
    println!(
        "  figures: 8 MiB /dev/shm: a 4.2 MB output made room by releasing the held 4.0 MB \
         one; with nothing to release, the space error"
    );
    Ok(())
}

/// The space error users must get: what is missing, what is free, and the Docker hint.
fn is_clear_space_error(err: &str) -> Result<(), String> {
    if !err.contains("not enough space") || !err.contains("free") || !err.contains("shm-size") {
        return Err(format!("space error not clear: {err}"));
    }
    Ok(())
}

/// As root: a private mount namespace with an 8 MiB tmpfs on /dev/shm; `load` and `run` of a
/// 24 MiB matrix fail with the clear space error before any work and leave nothing behind
/// (exit code 1: a runtime failure, not bad input; `run` maps the .arrow input in place, so
/// it is the 24 MiB normalised output that cannot be reserved).
fn small_dev_shm_fails_cleanly() -> TestResult {
    let dir = std::env::temp_dir().join(format!("shmframe-smallshm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let x = dir.join("x.npy");
    let stdout = on_small_dev_shm(&format!(
        "{BIN} gen matrix --rows 200000 --cols 16 --dtype f64 --seed 1 --out {x}.arrow >/dev/null || exit 10; \
         {BIN} load {x}.arrow --name big 2>{d}/load.err; echo load=$?; \
         {BIN} run normalize --input {x}.arrow --workers 2 2>{d}/run.err; echo run=$?;",
        x = x.display(),
        d = dir.display()
    ));
    let load_err = std::fs::read_to_string(dir.join("load.err")).unwrap_or_default();
    let run_err = std::fs::read_to_string(dir.join("run.err")).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    let Some(stdout) = stdout? else {
        return Ok(());
    };
    let lines: Vec<&str> = stdout.lines().collect();
    if lines.len() != 3 || lines[0] != "load=1" || lines[1] != "run=1" || lines[2] != "0" {
        return Err(format!(
            "expected failures and nothing left, got {stdout:?} / {load_err} / {run_err}"
        ));
    }
    for err in [&load_err, &run_err] {
        is_clear_space_error(err)?;
    }
    println!(
        "  figures: load and run on an 8 MiB /dev/shm: {} / {}",
        lines[0], lines[1]
    );
    Ok(())
}

/// As root: `resize` on an 8 MiB tmpfs /dev/shm. Output tensors that do not fit (4 images at
/// 1024x1024x3 = 12 MiB) and inputs that do not fit (a 10 MiB file read into the input
/// segment) fail with the clear space error, exit code 1, before any image is decoded or
/// written, and leave no segment and no file behind; a small job on the same tmpfs succeeds.
fn small_dev_shm_resize_fails_cleanly() -> TestResult {
    let dir = std::env::temp_dir().join(format!("shmframe-smallshm-img-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for d in ["few", "big"] {
        std::fs::create_dir_all(dir.join(d)).map_err(|e| e.to_string())?;
    }
    write_test_images(&dir.join("few"), 4, 11);
    // A 10 MiB file: the input segment alone does not fit (its content never gets decoded).
    let mut rng = Rng(0xb16);
    let big: Vec<u8> = (0..10 << 20).map(|_| rng.next() as u8).collect();
    std::fs::write(dir.join("big/big.jpg"), big).map_err(|e| e.to_string())?;
    write_test_images(&dir.join("big"), 2, 12);
    let stdout = on_small_dev_shm(&format!(
        "{BIN} resize {d}/few {d}/out-tensor --size 1024x1024 --workers 2 2>{d}/tensor.err; echo tensor=$?; \
         {BIN} resize {d}/big {d}/out-input --size 32x32 --workers 2 2>{d}/input.err; echo input=$?; \
         {BIN} resize {d}/few {d}/out-small --size 64x64 --workers 2 >/dev/null 2>{d}/small.err; echo small=$?;",
        d = dir.display()
    ));
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
    let (tensor_err, input_err, small_err) =
        (read("tensor.err"), read("input.err"), read("small.err"));
    let written = |d: &str| files_below(&dir.join(d));
    let (w_tensor, w_input, w_small) = (
        written("out-tensor"),
        written("out-input"),
        written("out-small"),
    );
    let _ = std::fs::remove_dir_all(&dir);
    let Some(stdout) = stdout? else {
        return Ok(());
    };
    let lines: Vec<&str> = stdout.lines().collect();
    if lines != ["tensor=1", "input=1", "small=0", "0"] {
        return Err(format!(
            "expected two space failures, one success and nothing left, got {stdout:?}\n\
             tensor: {tensor_err}\ninput: {input_err}\nsmall: {small_err}"
        ));
    }
    for err in [&tensor_err, &input_err] {
        is_clear_space_error(err)?;
    }
    if !w_tensor.is_empty() || !w_input.is_empty() {
        return Err(format!("failed jobs wrote files: {w_tensor:?} {w_input:?}"));
    }
    if w_small.len() != 4 {
        return Err(format!("the small job wrote {w_small:?}"));
    }
    println!(
        "  figures: resize on an 8 MiB /dev/shm: 12 MiB of tensors: {}; a 10 MiB input: {}; \
         a small job: {}",
        lines[0], lines[1], lines[2]
    );
    Ok(())
}

/// As root: a child running as `nobody` cannot attach our segment, and cannot create one with
/// the same name; our process refuses an object owned by another user.
fn other_user_is_refused() -> TestResult {
    if !nix::unistd::geteuid().is_root() || Command::new("setpriv").arg("--help").output().is_err()
    {
        println!("  skipped: needs root and setpriv");
        return Ok(());
    }
    let name = format!("sec{}", std::process::id());
    let dir = std::env::temp_dir().join(format!("shmframe-sec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let x = dir.join("x.npy");
    let run = || -> TestResult {
        Command::new(BIN)
            .args([
                "gen", "matrix", "--rows", "100", "--cols", "4", "--dtype", "f64", "--seed", "1",
                "--out",
            ])
            .arg(&x)
            .output()
            .map_err(|e| e.to_string())?;
        let o = Command::new(BIN)
            .arg("load")
            .arg(&x)
            .args(["--name", &name])
            .output()
            .map_err(|e| e.to_string())?;
        if !o.status.success() {
            return Err("load failed".into());
        }
        let mode =
            std::fs::metadata(format!("/dev/shm/shmframe.{name}")).map_err(|e| e.to_string())?;
        use std::os::unix::fs::PermissionsExt;
        if mode.permissions().mode() & 0o777 != 0o600 {
            return Err(format!(
                "segment mode is {:o}, not 600",
                mode.permissions().mode() & 0o777
            ));
        }
        let as_nobody = |args: &[&str]| {
            Command::new("setpriv")
                .args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN])
                .args(args)
                .env("TMPDIR", "/tmp")
                .output()
        };
        let o = as_nobody(&[
            "run",
            "l2-norm",
            "--input",
            &format!("shm:{name}"),
            "--workers",
            "1",
        ])
        .map_err(|e| e.to_string())?;
        let err = String::from_utf8_lossy(&o.stderr);
        if o.status.success()
            || !(err.contains("permission denied") || err.contains("another user"))
        {
            return Err(format!(
                "nobody could attach, or the error is unclear: {err}"
            ));
        }
        let o = as_nobody(&["load", &x.display().to_string(), "--name", &name])
            .map_err(|e| e.to_string())?;
        if o.status.success() {
            return Err("nobody created a clashing name".into());
        }
        // An object of another user under a shmframe name is refused by us.
        let foreign = format!("/dev/shm/shmframe.foreign{}", std::process::id());
        std::fs::write(&foreign, vec![0u8; 256]).map_err(|e| e.to_string())?;
        std::fs::set_permissions(&foreign, std::fs::Permissions::from_mode(0o600)).ok();
        nix::unistd::chown(
            foreign.as_str(),
            Some(nix::unistd::Uid::from_raw(65534)),
            None,
        )
        .map_err(|e| e.to_string())?;
        let o = Command::new(BIN)
            .args([
                "run",
                "l2-norm",
                "--input",
                &format!("shm:foreign{}", std::process::id()),
            ])
            .output()
            .map_err(|e| e.to_string())?;
        let _ = std::fs::remove_file(&foreign);
        let err = String::from_utf8_lossy(&o.stderr);
        if o.status.success() || !err.contains("uid 65534") {
            return Err(format!("a foreign object was not refused clearly: {err}"));
        }
        println!(
            "  figures: nobody: attach refused, clashing create refused; foreign object refused"
        );
        Ok(())
    };
    let r = run();
    let _ = Command::new(BIN).args(["rm", &name]).output();
    let _ = std::fs::remove_dir_all(&dir);
    r
}

/// Summed PSS (KiB) of `pid` and its direct children (the coordinator and its workers).
fn tree_pss_kb(pid: u32) -> u64 {
    let pss = |p: u32| -> u64 {
        std::fs::read_to_string(format!("/proc/{p}/smaps_rollup"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("Pss:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            })
            .unwrap_or(0)
    };
    let children: Vec<u32> = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|c| c.parse().ok())
        .collect();
    pss(pid) + children.into_iter().map(pss).sum::<u64>()
}

fn meminfo_kb(key: &str) -> Option<u64> {
    std::fs::read_to_string("/proc/meminfo")
        .ok()?
        .lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Stress, large: a matrix near half the machine's memory, in a `.npy` file that `run` maps in
/// place, 2 workers. The process tree's peak summed PSS (sampled every 20 ms) must stay near
/// the matrix size: no process copies it.
fn large_matrix_no_extra_copy() -> TestResult {
    use std::io::Write;
    let total_kb = meminfo_kb("MemTotal:").ok_or("no /proc/meminfo")?;
    let avail_kb = meminfo_kb("MemAvailable:").ok_or("no MemAvailable")?;
    let dir = std::env::temp_dir().join(format!("shmframe-large-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let disk_free = nix::sys::statvfs::statvfs(&dir)
        .map(|s| s.blocks_available() * s.fragment_size())
        .unwrap_or(0);
    let cols = 64usize;
    let row_bytes = cols * 8;
    // 45% of memory, bounded by what is available now and by the disk.
    let want = (total_kb * 1024 * 45 / 100)
        .min(avail_kb * 1024 * 70 / 100)
        .min(disk_free / 2);
    if want < (2u64 << 30) {
        let _ = std::fs::remove_dir_all(&dir);
        println!(
            "  skipped: only {} MiB usable (memory {} MiB available, disk {} MiB free)",
            want >> 20,
            avail_kb >> 10,
            disk_free >> 20
        );
        return Ok(());
    }
    let block_rows = 16384usize;
    let rows = (want as usize / row_bytes) / block_rows * block_rows;
    let path = dir.join("large.npy");
    let result = (|| -> TestResult {
        // Row r holds (r % 7 + 1) in every column: its L2 norm is (r % 7 + 1) * sqrt(cols).
        let t = Instant::now();
        let mut f = std::io::BufWriter::with_capacity(
            8 << 20,
            std::fs::File::create(&path).map_err(|e| e.to_string())?,
        );
        let header = shmframe::npy::header_bytes(shmframe::npy::NpyDtype::F64, &[rows, cols])
            .map_err(|e| e.to_string())?;
        f.write_all(&header).map_err(|e| e.to_string())?;
        // The seven distinct rows, then blocks of rows copied from them (fast in debug too).
        let patterns: Vec<Vec<u8>> = (1..=7)
            .map(|v| (f64::from(v)).to_le_bytes().repeat(cols))
            .collect();
        let mut block = vec![0u8; block_rows * row_bytes];
        for b in 0..rows / block_rows {
            for (r, dst) in block.chunks_exact_mut(row_bytes).enumerate() {
                dst.copy_from_slice(&patterns[(b * block_rows + r) % 7]);
            }
            f.write_all(&block).map_err(|e| e.to_string())?;
        }
        f.flush().map_err(|e| e.to_string())?;
        drop(f);
        let bytes = (rows * row_bytes) as u64;
        let made = t.elapsed().as_secs_f64();
        let out = dir.join("norms.npy");
        let t = Instant::now();
        let mut child = Command::new(BIN)
            .args(["run", "l2-norm", "--workers", "2", "--json", "--input"])
            .arg(&path)
            .arg("--out")
            .arg(&out)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        let mut peak_kb = 0u64;
        let status = loop {
            if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
                break s;
            }
            if t.elapsed() > Duration::from_secs(600) {
                let _ = child.kill();
                let _ = child.wait();
                return Err("the run took over 10 minutes".into());
            }
            peak_kb = peak_kb.max(tree_pss_kb(child.id()));
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut json = String::new();
        std::io::Read::read_to_string(child.stdout.as_mut().expect("piped"), &mut json)
            .map_err(|e| e.to_string())?;
        if !status.success() {
            return Err(format!("run failed: {status}"));
        }
        let norms = shmframe::npy::NpyFile::open(&out).map_err(|e| e.to_string())?;
        let got = norms.data_bytes();
        if got.len() != rows * 8 {
            return Err(format!("{} bytes of norms for {rows} rows", got.len()));
        }
        for r in (0..rows).step_by(rows / 1000).chain([rows - 1]) {
            let v = f64::from_le_bytes(got[r * 8..r * 8 + 8].try_into().expect("8 bytes"));
            let want = ((r % 7) + 1) as f64 * (cols as f64).sqrt();
            if (v - want).abs() > 1e-9 * want {
                return Err(format!("row {r}: norm {v}, expected {want}"));
            }
        }
        let ratio = (peak_kb * 1024) as f64 / bytes as f64;
        println!(
            "  {rows} x {cols} f64 = {:.2} GiB ({:.0}% of {:.1} GiB memory), written in {made:.1} s; \
             run (2 workers) {:.1} s; peak summed PSS of the process tree {:.2} GiB = {:.2}x the matrix",
            bytes as f64 / (1u64 << 30) as f64,
            100.0 * bytes as f64 / (total_kb * 1024) as f64,
            (total_kb * 1024) as f64 / (1u64 << 30) as f64,
            t.elapsed().as_secs_f64(),
            (peak_kb * 1024) as f64 / (1u64 << 30) as f64,
            ratio,
        );
        println!("  {}", json.trim());
        // Mapped once and shared: PSS counts each page once however many processes map it.
        // The output (8 bytes a row), the binaries and the heaps add a few percent.
        if ratio > 1.10 {
            return Err(format!(
                "peak summed PSS is {ratio:.2}x the matrix: something copied it"
            ));
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn main() {
    if let Some(dir) = std::env::var_os(ROOM_CHILD_ENV) {
        match recycled_outputs_make_room_child(std::path::Path::new(&dir)) {
            Ok(()) => std::process::exit(0),
            Err(e) => {
                println!("{e}");
                std::process::exit(1)
            }
        }
    }
    common::tests![
        random_kills_200_jobs,
        eight_engines_share_one_segment,
        small_dev_shm_fails_cleanly,
        small_dev_shm_resize_fails_cleanly,
        huge_page_dev_shm,
        recycled_outputs_make_room,
        other_user_is_refused,
        large_matrix_no_extra_copy,
    ];
}
