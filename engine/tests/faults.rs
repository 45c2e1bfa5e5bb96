//! Fault injection with real processes (issue 7): workers SIGKILLed at random moments,
//! concurrent engines sharing one named segment, a coordinator killed mid-job, a `/dev/shm`
//! too small, and another user trying to attach. Prints the figures it measures.
//!
//! `harness = false`: the engine forks, which it refuses in a multi-threaded process.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use arrow_array::{Array, Float64Array};
use shmframe::kernels::{Accumulate, apply_rows};
use shmframe::{Engine, Kernel, RowKernel, RunOptions};

type TestResult = Result<(), String>;
type TestFn = fn() -> TestResult;

const BIN: &str = env!("CARGO_BIN_EXE_shmframe");

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn f64(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn our_segments() -> Vec<String> {
    let me = format!("shmframe.{}.", std::process::id());
    std::fs::read_dir("/dev/shm")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with(&me))
                .collect()
        })
        .unwrap_or_default()
}

/// 200 jobs, each with one or two workers SIGKILLed at a random moment by a separate process
/// (not a thread: the coordinator must stay single-threaded to fork replacements). Every
/// result must be exact.
fn random_kills_200_jobs() -> TestResult {
    let engine = Engine::builder()
        .workers(2)
        .build()
        .map_err(|e| e.to_string())?;
    let mut rng = Rng(0x5eed);
    let (rows, cols) = (60_000, 8);
    let x: Vec<f64> = (0..rows * cols).map(|_| rng.f64()).collect();
    let frame = engine
        .frame_from_vec_f64(&x, cols)
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

/// As root: a private mount namespace with an 8 MiB tmpfs on /dev/shm; `load` and `run` of a
/// 24 MiB matrix fail with the clear space error before any work and leave nothing behind
/// (exit code 1: a runtime failure, not bad input; `run` maps the .arrow input in place, so it is the 24 MiB normalised output that cannot
/// be reserved).
fn small_dev_shm_fails_cleanly() -> TestResult {
    if !nix::unistd::geteuid().is_root() || Command::new("unshare").arg("--help").output().is_err()
    {
        println!("  skipped: needs root and unshare");
        return Ok(());
    }
    let dir = std::env::temp_dir().join(format!("shmframe-smallshm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let x = dir.join("x.npy");
    let script = format!(
        "set -u; mount -t tmpfs -o size=8m tmpfs /dev/shm || exit 77; \
         {BIN} gen matrix --rows 200000 --cols 16 --dtype f64 --seed 1 --out {x}.arrow >/dev/null || exit 10; \
         {BIN} load {x}.arrow --name big 2>{d}/load.err; echo load=$?; \
         {BIN} run normalize --input {x}.arrow --workers 2 2>{d}/run.err; echo run=$?; \
         ls /dev/shm | grep -c shmframe || true",
        x = x.display(),
        d = dir.display()
    );
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .output()
        .map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let load_err = std::fs::read_to_string(dir.join("load.err")).unwrap_or_default();
    let run_err = std::fs::read_to_string(dir.join("run.err")).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    if out.status.code() == Some(77) {
        println!("  skipped: cannot mount a tmpfs here");
        return Ok(());
    }
    let lines: Vec<&str> = stdout.lines().collect();
    if lines.len() != 3 || lines[0] != "load=1" || lines[1] != "run=1" || lines[2] != "0" {
        return Err(format!(
            "expected failures and nothing left, got {stdout:?} / {load_err} / {run_err}"
        ));
    }
    for err in [&load_err, &run_err] {
        if !err.contains("not enough space") || !err.contains("free") || !err.contains("shm-size") {
            return Err(format!("space error not clear: {err}"));
        }
    }
    println!(
        "  figures: load and run on an 8 MiB /dev/shm: {} / {}",
        lines[0], lines[1]
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

fn main() {
    let tests: Vec<(&str, TestFn)> = vec![
        ("random_kills_200_jobs", random_kills_200_jobs),
        (
            "eight_engines_share_one_segment",
            eight_engines_share_one_segment,
        ),
        ("small_dev_shm_fails_cleanly", small_dev_shm_fails_cleanly),
        ("other_user_is_refused", other_user_is_refused),
    ];
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let (mut passed, mut failed) = (0, 0);
    for (name, f) in tests {
        if !filter.is_empty() && !filter.iter().any(|p| name.contains(p.as_str())) {
            continue;
        }
        let t = Instant::now();
        match std::panic::catch_unwind(f).unwrap_or_else(|_| Err("panicked".into())) {
            Ok(()) => {
                passed += 1;
                println!("test {name} ... ok ({:.1} s)", t.elapsed().as_secs_f64());
            }
            Err(e) => {
                failed += 1;
                println!("test {name} ... FAILED: {e}");
            }
        }
    }
    let left = our_segments();
    if left.is_empty() {
        passed += 1;
        println!("test no_leaked_segments ... ok");
    } else {
        failed += 1;
        println!("test no_leaked_segments ... FAILED: {left:?}");
    }
    println!("{passed} passed, {failed} failed");
    std::process::exit(i32::from(failed != 0));
}
