//! End-to-end tests of the `shmframe` command: each runs the built binary in a temporary
//! directory, with its own segment directory where it can, and removes every segment it
//! creates even when it fails (guards with `Drop`).
//!
//! Python interop tests run when `SHMFRAME_PYTHON` names a python with numpy and pyarrow
//! (e.g. `SHMFRAME_PYTHON=.venv/bin/python`); otherwise they print why they are skipped.

#[path = "../../engine/tests/common/mod.rs"]
mod common;
#[path = "cli/files.rs"]
mod files;

use common::{TempDir, files_below};

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use shmframe::RowKernel;
use shmframe::npy::NpyFile;

const BIN: &str = env!("CARGO_BIN_EXE_shmframe");

/// Removes the named segments with `shmframe rm` on drop (ignoring ones already gone).
struct SegGuard {
    dir: Option<PathBuf>,
    names: Vec<String>,
}

impl Drop for SegGuard {
    fn drop(&mut self) {
        if self.names.is_empty() {
            return;
        }
        let mut c = Command::new(BIN);
        c.arg("rm").args(&self.names).env_remove("SHMFRAME_DIR");
        if let Some(d) = &self.dir {
            c.arg("--segment-dir").arg(d);
        }
        let _ = c.stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
}

/// Runs the binary with `args` (and `--segment-dir seg` when given).
fn shmframe(args: &[&str], cwd: &Path, seg: Option<&Path>) -> Output {
    let mut c = Command::new(BIN);
    c.args(args).current_dir(cwd).env_remove("SHMFRAME_DIR");
    if let Some(s) = seg {
        c.arg("--segment-dir").arg(s);
    }
    c.output().expect("run shmframe")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs and asserts success; returns stdout.
fn ok(args: &[&str], cwd: &Path, seg: Option<&Path>) -> String {
    let o = shmframe(args, cwd, seg);
    assert!(
        o.status.success(),
        "shmframe {args:?} failed ({}):\nstdout: {}\nstderr: {}",
        o.status,
        text(&o.stdout),
        text(&o.stderr)
    );
    text(&o.stdout)
}

/// Runs and asserts exit code 2 with `needle` in stderr.
fn fails_with_2(args: &[&str], cwd: &Path, seg: Option<&Path>, needle: &str) {
    let o = shmframe(args, cwd, seg);
    let err = text(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(2),
        "shmframe {args:?}: expected exit 2, got {}; stderr: {err}",
        o.status
    );
    assert!(
        err.contains(needle),
        "shmframe {args:?}: stderr lacks {needle:?}: {err}"
    );
    assert!(!err.contains("panicked"), "panic: {err}");
}

fn gen_matrix(
    t: &TempDir,
    file: &str,
    rows: usize,
    cols: usize,
    dtype: &str,
    seed: u64,
) -> PathBuf {
    let (r, c, s) = (rows.to_string(), cols.to_string(), seed.to_string());
    ok(
        &[
            "gen", "matrix", "--rows", &r, "--cols", &c, "--dtype", dtype, "--seed", &s, "--out",
            file,
        ],
        &t.0,
        None,
    );
    t.path(file)
}

/// The rows of an f64 `.npy` matrix.
fn npy_rows_f64(path: &Path) -> (Vec<f64>, usize) {
    let f = NpyFile::open(path).expect("open npy");
    let cols = f.cols();
    (f.as_f64().expect("f64 data").to_vec(), cols)
}

fn npy_vec(path: &Path) -> Vec<f64> {
    let f = NpyFile::open(path).expect("open npy");
    match (f.as_f64(), f.as_f32()) {
        (Some(v), _) => v.to_vec(),
        (None, Some(v)) => v.iter().map(|&x| f64::from(x)).collect(),
        _ => panic!("{} is not float", path.display()),
    }
}

fn assert_close(got: &[f64], want: &[f64], rel: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let tol = rel * w.abs().max(1.0);
        assert!((g - w).abs() <= tol, "{what}: row {i}: got {g}, want {w}");
    }
}

fn json(out: &str) -> serde_json::Value {
    let lines: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "--json must print exactly one line: {out}");
    serde_json::from_str(lines[0]).expect("valid JSON")
}

const JSON_KEYS: [&str; 9] = [
    "kernel",
    "rows",
    "cols",
    "dtype",
    "workers",
    "seconds",
    "total_seconds",
    "gb_per_s",
    "out",
];

#[test]
fn every_kernel_on_npy_with_json_and_reference_values() {
    let t = TempDir::new("kernels");
    let (rows, cols) = (500, 6);
    let input = gen_matrix(&t, "x.npy", rows, cols, "f64", 3);
    let q: Vec<f64> = (0..cols).map(|i| i as f64 - 2.5).collect();
    shmframe::npy::write_npy_typed(t.path("q.npy"), &[cols], &q).unwrap();
    let (x, c) = npy_rows_f64(&input);
    assert_eq!(c, cols);

    for name in RowKernel::NAMES {
        let out = format!("{name}.npy");
        let mut args = vec![
            "run",
            name,
            "--input",
            "x.npy",
            "--json",
            "--out",
            &out,
            "--workers",
            "2",
        ];
        if name == "dot" || name == "cosine" {
            args.extend(["--query", "q.npy"]);
        }
        let v = json(&ok(&args, &t.0, Some(&t.seg())));
        let obj = v.as_object().expect("a JSON object");
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        let mut want = JSON_KEYS.to_vec();
        want.sort_unstable();
        assert_eq!(keys, want, "{name}");
        assert_eq!(v["kernel"], name);
        assert_eq!(v["rows"], rows);
        assert_eq!(v["cols"], cols);
        assert_eq!(v["dtype"], "f64");
        assert_eq!(v["workers"], 2);
        assert_eq!(v["out"], out.as_str());
        assert!(v["seconds"].as_f64().unwrap() > 0.0);
        assert!(v["total_seconds"].as_f64().unwrap() >= v["seconds"].as_f64().unwrap());
        assert!(v["gb_per_s"].as_f64().unwrap() > 0.0);
        assert!(t.path(&out).exists(), "{name}: no output file");
    }

    let row = |i: usize| &x[i * cols..(i + 1) * cols];
    let l2: Vec<f64> = (0..rows)
        .map(|i| row(i).iter().map(|v| v * v).sum::<f64>().sqrt())
        .collect();
    let dot: Vec<f64> = (0..rows)
        .map(|i| row(i).iter().zip(&q).map(|(a, b)| a * b).sum())
        .collect();
    let qn = q.iter().map(|v| v * v).sum::<f64>().sqrt();
    let cosine: Vec<f64> = (0..rows).map(|i| dot[i] / (l2[i] * qn)).collect();
    let mean: Vec<f64> = (0..rows)
        .map(|i| row(i).iter().sum::<f64>() / cols as f64)
        .collect();
    assert_close(&npy_vec(&t.path("l2-norm.npy")), &l2, 1e-12, "l2-norm");
    assert_close(&npy_vec(&t.path("dot.npy")), &dot, 1e-12, "dot");
    assert_close(&npy_vec(&t.path("cosine.npy")), &cosine, 1e-12, "cosine");
    assert_close(&npy_vec(&t.path("mean.npy")), &mean, 1e-12, "mean");
    let unit = NpyFile::open(t.path("normalize.npy")).unwrap();
    assert_eq!(unit.shape(), &[rows, cols]);
    let want: Vec<f64> = (0..rows * cols).map(|k| x[k] / l2[k / cols]).collect();
    assert_close(unit.as_f64().unwrap(), &want, 1e-12, "normalize");
    assert!(t.segments().is_empty(), "leaked: {:?}", t.segments());
}

#[test]
fn gen_is_reproducible_in_both_formats() {
    let t = TempDir::new("gen");
    let a = gen_matrix(&t, "a.npy", 3000, 5, "f64", 9);
    let b = gen_matrix(&t, "b.npy", 3000, 5, "f64", 9);
    let c = gen_matrix(&t, "c.npy", 3000, 5, "f64", 10);
    let read = |p: &Path| std::fs::read(p).unwrap();
    assert_eq!(read(&a), read(&b), "same seed, same bytes");
    assert_ne!(read(&a), read(&c), "another seed, other bytes");
    let (x, _) = npy_rows_f64(&a);
    let mean = x.iter().sum::<f64>() / x.len() as f64;
    assert!(mean.abs() < 0.05, "gaussian mean {mean}");

    // The .arrow file holds the same values, in one FixedSizeList column `x`, one batch.
    let arrow = gen_matrix(&t, "a.arrow", 3000, 5, "f64", 9);
    let r =
        arrow_ipc::reader::FileReader::try_new(std::fs::File::open(arrow).unwrap(), None).unwrap();
    assert_eq!(r.num_batches(), 1);
    let batch = r.into_iter().next().unwrap().unwrap();
    let col = batch.column_by_name("x").expect("column x");
    let list = col
        .as_any()
        .downcast_ref::<arrow_array::FixedSizeListArray>()
        .expect("FixedSizeList");
    assert_eq!(list.value_length(), 5);
    let vals = list
        .values()
        .as_any()
        .downcast_ref::<arrow_array::Float64Array>()
        .unwrap();
    assert_eq!(vals.values().as_ref(), &x[..]);
}

#[test]
fn run_on_arrow_input_writes_arrow_and_parquet() {
    let t = TempDir::new("arrow");
    gen_matrix(&t, "x.arrow", 400, 4, "f32", 5);
    let v = json(&ok(
        &[
            "run", "l2-norm", "--input", "x.arrow", "--json", "--out", "n.arrow",
        ],
        &t.0,
        Some(&t.seg()),
    ));
    assert_eq!(v["dtype"], "f32");
    assert_eq!(v["cols"], 4);
    ok(
        &["run", "sum", "--input", "x.arrow", "--out", "s.parquet"],
        &t.0,
        Some(&t.seg()),
    );
    ok(
        &["run", "l2-norm", "--input", "x.arrow", "--out", "n.npy"],
        &t.0,
        Some(&t.seg()),
    );
    let r = arrow_ipc::reader::FileReader::try_new(
        std::fs::File::open(t.path("n.arrow")).unwrap(),
        None,
    )
    .unwrap();
    let rows: usize = r.map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(rows, 400);
    let pq = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        std::fs::File::open(t.path("s.parquet")).unwrap(),
    )
    .unwrap()
    .build()
    .unwrap();
    let rows: usize = pq.map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(rows, 400);
    assert_eq!(npy_vec(&t.path("n.npy")).len(), 400);
    // The summary form (no --json) prints the first values and the time.
    let s = ok(&["run", "max", "--input", "x.arrow"], &t.0, Some(&t.seg()));
    assert!(s.contains("first values") && s.contains("GB/s"), "{s}");
    assert!(t.segments().is_empty(), "leaked: {:?}", t.segments());
}

#[test]
fn csv_with_columns() {
    let t = TempDir::new("csv");
    let mut csv = String::from("a,b,c,name\n");
    let mut want = Vec::new();
    for i in 0..200 {
        let (a, b, c) = (i as f64 * 0.5, 1.0 - i as f64, (i % 7) as f64);
        csv.push_str(&format!("{a},{b},{c},r{i}\n"));
        want.push((a * a + b * b + c * c).sqrt());
    }
    std::fs::write(t.path("t.csv"), csv).unwrap();
    let v = json(&ok(
        &[
            "run",
            "l2-norm",
            "--input",
            "t.csv",
            "--columns",
            "a,b,c",
            "--json",
            "--out",
            "o.npy",
        ],
        &t.0,
        Some(&t.seg()),
    ));
    assert_eq!(v["cols"], 3);
    assert_eq!(v["rows"], 200);
    assert_close(&npy_vec(&t.path("o.npy")), &want, 1e-12, "csv l2");
    // No matrix column and no --columns: every numeric column (a, b, c; not name).
    let out = ok(
        &["run", "l2-norm", "--input", "t.csv", "--out", "d.npy"],
        &t.0,
        Some(&t.seg()),
    );
    assert!(out.contains("[a,b,c]"), "{out}");
    assert_close(
        &npy_vec(&t.path("d.npy")),
        &want,
        1e-12,
        "csv l2, default columns",
    );
    assert!(t.segments().is_empty(), "leaked: {:?}", t.segments());
}

#[test]
fn load_ls_run_rm_in_dev_shm() {
    let t = TempDir::new("load");
    gen_matrix(&t, "x.npy", 300, 3, "f64", 1);
    let name = format!(
        "clitest-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let _guard = SegGuard {
        dir: None,
        names: vec![name.clone()],
    };
    let path = ok(&["load", "x.npy", "--name", &name], &t.0, None);
    let path = PathBuf::from(path.trim());
    assert_eq!(path, Path::new("/dev/shm").join(format!("shmframe.{name}")));
    assert!(path.exists());

    let ls = ok(&["ls"], &t.0, None);
    let line = ls
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name.as_str()))
        .unwrap_or_else(|| panic!("ls does not show {name}:\n{ls}"));
    assert!(line.contains("none") && line.contains("x:f64[3]"), "{line}");

    let src = format!("shm:{name}");
    let v = json(&ok(
        &[
            "run", "l2-norm", "--input", &src, "--json", "--out", "n.npy",
        ],
        &t.0,
        None,
    ));
    assert_eq!(v["rows"], 300);
    let direct = npy_vec(&t.path("n.npy"));
    ok(
        &["run", "l2-norm", "--input", "x.npy", "--out", "m.npy"],
        &t.0,
        None,
    );
    assert_eq!(direct, npy_vec(&t.path("m.npy")));

    ok(&["rm", &format!("shmframe.{name}")], &t.0, None);
    assert!(!path.exists());
    let ls = ok(&["ls"], &t.0, None);
    assert!(!ls.contains(&name), "still listed:\n{ls}");
    // Removing it again is an error naming the segment, with exit code 2.
    fails_with_2(&["rm", &name], &t.0, None, "does not exist");
}

#[test]
fn bad_inputs_exit_2_with_a_named_error() {
    let t = TempDir::new("bad");
    gen_matrix(&t, "x.npy", 100, 4, "f64", 2);
    let seg = Some(t.seg());
    let seg = seg.as_deref();
    fails_with_2(
        &["run", "l2-norm", "--input", "missing.npy"],
        &t.0,
        seg,
        "does not exist",
    );
    fails_with_2(
        &["run", "l3-norm", "--input", "x.npy"],
        &t.0,
        seg,
        "unknown kernel",
    );
    let bytes = std::fs::read(t.path("x.npy")).unwrap();
    std::fs::write(t.path("short.npy"), &bytes[..bytes.len() / 2]).unwrap();
    fails_with_2(
        &["run", "l2-norm", "--input", "short.npy"],
        &t.0,
        seg,
        "truncated",
    );
    std::fs::write(t.path("junk.npy"), b"not an npy file at all").unwrap();
    fails_with_2(
        &["run", "sum", "--input", "junk.npy"],
        &t.0,
        seg,
        "junk.npy",
    );
    shmframe::npy::write_npy_typed(t.path("q3.npy"), &[3], &[1.0f64, 2.0, 3.0]).unwrap();
    fails_with_2(
        &["run", "dot", "--input", "x.npy", "--query", "q3.npy"],
        &t.0,
        seg,
        "wrong query length",
    );
    fails_with_2(&["run", "dot", "--input", "x.npy"], &t.0, seg, "--query");
    fails_with_2(
        &["run", "sum", "--input", "x.npy", "--column", "nope"],
        &t.0,
        seg,
        "nope",
    );
    fails_with_2(&["run", "sum", "--bogus"], &t.0, seg, "--bogus");
    fails_with_2(
        &["run", "sum", "--input", "shm:no-such-segment"],
        &t.0,
        seg,
        "does not exist",
    );
    fails_with_2(&["load", "x.npy", "--name", "9bad name"], &t.0, seg, "name");
    assert!(t.segments().is_empty(), "leaked: {:?}", t.segments());
}

#[test]
fn help_has_examples() {
    let t = TempDir::new("help");
    let h = ok(&["--help"], &t.0, None);
    assert!(
        h.contains("Examples:") && h.contains("shmframe run l2-norm"),
        "{h}"
    );
    let h = ok(&["run", "--help"], &t.0, None);
    assert!(h.contains("--query") && h.contains("Examples:"), "{h}");
}

/// (ppid, state) of a process, from /proc/PID/stat.
fn stat(pid: u32) -> Option<(u32, char)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let mut it = rest.split_whitespace();
    let state = it.next()?.chars().next()?;
    let ppid = it.next()?.parse().ok()?;
    Some((ppid, state))
}

fn children_of(parent: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&p| stat(p).is_some_and(|(pp, _)| pp == parent))
        .collect()
}

fn alive(pid: u32) -> bool {
    stat(pid).is_some_and(|(_, s)| s != 'Z' && s != 'X')
}

#[test]
fn gc_after_sigkill_of_a_running_coordinator() {
    let t = TempDir::new("gc");
    gen_matrix(&t, "x.npy", 4000, 16, "f64", 4);
    let mut child = Command::new(BIN)
        .args(["run", "l2-norm", "--input", "x.npy", "--workers", "2"])
        .args(["--chunk-rows", "50", "--test-chunk-sleep-ms", "25"])
        .arg("--segment-dir")
        .arg(t.seg())
        .current_dir(&t.0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill the coordinator whatever happens below.
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut workers = children_of(pid);
    while workers.len() < 2 {
        assert!(Instant::now() < deadline, "workers never appeared");
        assert!(
            child.try_wait().unwrap().is_none(),
            "coordinator ended early"
        );
        std::thread::sleep(Duration::from_millis(10));
        workers = children_of(pid);
    }
    // Let the job start (its output segment exists), then SIGKILL the coordinator mid-job.
    while !t.segments().iter().any(|s| s.ends_with(".out")) {
        assert!(Instant::now() < deadline, "job never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(100));
    assert!(child.try_wait().unwrap().is_none(), "job ended too soon");
    workers = children_of(pid);
    // The pool's janitor would remove the dead run's segments itself (engine/tests/janitor.rs);
    // kill it first, so this shows `gc` as the fallback when the janitor is gone too.
    let janitor: Vec<u32> = workers
        .iter()
        .copied()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm"))
                .is_ok_and(|c| c.trim() == "shmf-janitor")
        })
        .collect();
    assert_eq!(janitor.len(), 1, "one janitor among {workers:?}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(janitor[0] as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    child.kill().unwrap();
    let status = child.wait().unwrap();
    let _guard = Kill(child);
    assert!(!status.success());

    let gone_by = Instant::now() + Duration::from_secs(1);
    while workers.iter().any(|&w| alive(w)) {
        assert!(
            Instant::now() < gone_by,
            "workers {workers:?} outlived their coordinator by 1 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let left = t.segments();
    assert!(!left.is_empty(), "expected the dead run's segments");
    let out = ok(&["gc"], &t.0, Some(&t.seg()));
    for s in &left {
        assert!(out.contains(s.as_str()), "gc did not report {s}: {out}");
    }
    assert!(t.segments().is_empty(), "gc left {:?}", t.segments());
    let out = ok(&["gc"], &t.0, Some(&t.seg()));
    assert!(out.contains("nothing to remove"), "{out}");
}

#[test]
fn gc_never_removes_live_or_persistent_segments() {
    let t = TempDir::new("gclive");
    gen_matrix(&t, "x.npy", 10, 2, "f64", 4);
    let _guard = SegGuard {
        dir: Some(t.seg()),
        names: vec!["keepme".into()],
    };
    ok(&["load", "x.npy", "--name", "keepme"], &t.0, Some(&t.seg()));
    let out = ok(&["gc"], &t.0, Some(&t.seg()));
    assert!(out.contains("nothing to remove"), "{out}");
    assert_eq!(t.segments(), vec!["shmframe.keepme".to_string()]);
}

/// The python named by `SHMFRAME_PYTHON`, or `None` with the reason printed.
fn python() -> Option<PathBuf> {
    match std::env::var_os("SHMFRAME_PYTHON") {
        Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ => {
            eprintln!("skipped: set SHMFRAME_PYTHON to a python with numpy and pyarrow");
            None
        }
    }
}

fn py(python: &Path, cwd: &Path, code: &str) {
    let o = Command::new(python)
        .arg("-c")
        .arg(code)
        .current_dir(cwd)
        .output()
        .expect("run python");
    assert!(
        o.status.success(),
        "python failed:\n{code}\nstdout: {}\nstderr: {}",
        text(&o.stdout),
        text(&o.stderr)
    );
}

#[test]
fn numpy_files_in_and_out() {
    let Some(python) = python() else { return };
    let t = TempDir::new("numpy");
    py(
        &python,
        &t.0,
        "import numpy as np\n\
         x = np.random.default_rng(0).standard_normal((777, 13))\n\
         np.save('x.npy', x)\n\
         np.save('x32.npy', x.astype(np.float32))\n",
    );
    let seg = Some(t.seg());
    let seg = seg.as_deref();
    ok(
        &["run", "l2-norm", "--input", "x.npy", "--out", "n.npy"],
        &t.0,
        seg,
    );
    ok(
        &["run", "l2-norm", "--input", "x32.npy", "--out", "n32.npy"],
        &t.0,
        seg,
    );
    ok(
        &["run", "normalize", "--input", "x.npy", "--out", "u.npy"],
        &t.0,
        seg,
    );
    ok(
        &["run", "normalize", "--input", "x.npy", "--out", "u.arrow"],
        &t.0,
        seg,
    );
    ok(
        &["run", "l2-norm", "--input", "x.npy", "--out", "n.parquet"],
        &t.0,
        seg,
    );
    py(
        &python,
        &t.0,
        "import numpy as np, pyarrow as pa, pyarrow.parquet as pq\n\
         x = np.load('x.npy')\n\
         n = np.linalg.norm(x, axis=1)\n\
         assert np.allclose(np.load('n.npy'), n, rtol=1e-12, atol=0)\n\
         n32 = np.load('n32.npy')\n\
         assert n32.dtype == np.float32\n\
         assert np.allclose(n32, np.linalg.norm(x.astype(np.float32).astype(np.float64), axis=1), rtol=1e-6)\n\
         u = np.load('u.npy')\n\
         assert u.shape == x.shape and np.allclose(u, x / n[:, None], rtol=1e-12)\n\
         t = pa.ipc.open_file(pa.memory_map('u.arrow')).read_all()\n\
         col = t.column(0).combine_chunks()\n\
         ua = col.flatten().to_numpy().reshape(len(col), -1)\n\
         assert np.array_equal(ua, u)\n\
         p = pq.read_table('n.parquet').column(0).to_numpy()\n\
         assert np.allclose(p, n, rtol=1e-12)\n",
    );
    // A loaded segment opens in pyarrow by its path.
    let _guard = SegGuard {
        dir: Some(t.seg()),
        names: vec!["pyseg".into()],
    };
    let path = ok(&["load", "x.npy", "--name", "pyseg"], &t.0, seg);
    py(
        &python,
        &t.0,
        &format!(
            "import numpy as np, pyarrow as pa\n\
             t = pa.ipc.open_file(pa.memory_map({:?})).read_all()\n\
             col = t.column('x').combine_chunks()\n\
             m = col.flatten().to_numpy().reshape(len(col), -1)\n\
             assert np.array_equal(m, np.load('x.npy'))\n",
            path.trim()
        ),
    );
}

#[test]
fn spawn_start_method_and_deadline() {
    let t = TempDir::new("spawn");
    gen_matrix(&t, "x.npy", 1000, 8, "f64", 6);
    let seg = Some(t.seg());
    let seg = seg.as_deref();
    ok(
        &["run", "l2-norm", "--input", "x.npy", "--out", "fork.npy"],
        &t.0,
        seg,
    );
    let v = json(&ok(
        &[
            "run",
            "l2-norm",
            "--input",
            "x.npy",
            "--start-method",
            "spawn",
            "--workers",
            "2",
            "--json",
            "--out",
            "spawn.npy",
        ],
        &t.0,
        seg,
    ));
    assert_eq!(v["workers"], 2);
    assert_eq!(npy_vec(&t.path("fork.npy")), npy_vec(&t.path("spawn.npy")));
    // A job past its deadline is a runtime failure (exit 1) that says so.
    let o = shmframe(
        &[
            "run",
            "sum",
            "--input",
            "x.npy",
            "--chunk-rows",
            "10",
            "--test-chunk-sleep-ms",
            "20",
            "--deadline-ms",
            "100",
        ],
        &t.0,
        seg,
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("deadline"), "{}", text(&o.stderr));
    assert!(t.segments().is_empty(), "leaked: {:?}", t.segments());
}

// ---------------------------------------------------------------------------------------------
// `shmframe resize`: images generated here, the binary run on them, its files decoded back.

/// A smooth RGB gradient, `w` x `h`.
fn gradient_rgb(w: u32, h: u32) -> Vec<u8> {
    (0..w * h)
        .flat_map(|i| {
            let (x, y) = (i % w, i / w);
            [
                (30 + x * 200 / w) as u8,
                (20 + y * 210 / h) as u8,
                (200 - (x + y) * 150 / (w + h)) as u8,
            ]
        })
        .collect()
}

fn encode_jpeg(px: &[u8], w: u32, h: u32) -> Vec<u8> {
    let image = turbojpeg::Image {
        pixels: px,
        width: w as usize,
        pitch: w as usize * 3,
        height: h as usize,
        format: turbojpeg::PixelFormat::RGB,
    };
    turbojpeg::compress(image, 92, turbojpeg::Subsamp::None)
        .expect("jpeg encode")
        .to_vec()
}

/// Decodes an output file as RGBA: (pixels, width, height, format name).
fn decode_any(path: &Path) -> (Vec<u8>, u32, u32, &'static str) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        let img = turbojpeg::decompress(&bytes, turbojpeg::PixelFormat::RGBA)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        return (img.pixels, img.width as u32, img.height as u32, "jpeg");
    }
    let format = image::guess_format(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let img = image::load_from_memory_with_format(&bytes, format)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let name = match format {
        image::ImageFormat::Png => "png",
        image::ImageFormat::WebP => "webp",
        _ => "other",
    };
    let (w, h) = (img.width(), img.height());
    (img.to_rgba8().into_raw(), w, h, name)
}

/// A folder of good images: a.jpg, b.png (flat colour), c.webp, sub/d.jpg, sub/deeper/e.png,
/// and a hidden file that is never listed.
const FLAT: [u8; 3] = [40, 170, 90];

fn image_folder(t: &TempDir) -> PathBuf {
    let dir = t.path("in");
    let put = |name: &str, bytes: Vec<u8>| {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    };
    put("a.jpg", encode_jpeg(&gradient_rgb(64, 48), 64, 48));
    put(
        "b.png",
        common::png(
            &FLAT.repeat(50 * 30),
            50,
            30,
            image::ExtendedColorType::Rgb8,
        ),
    );
    put(
        "c.webp",
        common::webp_lossless(
            &gradient_rgb(30, 40),
            30,
            40,
            image::ExtendedColorType::Rgb8,
        ),
    );
    put("sub/d.jpg", encode_jpeg(&gradient_rgb(80, 60), 80, 60));
    put(
        "sub/deeper/e.png",
        common::png(
            &gradient_rgb(20, 20),
            20,
            20,
            image::ExtendedColorType::Rgb8,
        ),
    );
    put(".hidden.jpg", b"never read".to_vec());
    dir
}

/// The keys `resize --json` documents (it prints more: stages, workers, ...).
const RESIZE_JSON_KEYS: [&str; 4] = ["images", "failed", "seconds", "images_per_s"];

#[test]
fn resize_writes_mirrored_names_in_each_format() {
    let t = TempDir::new("resize");
    image_folder(&t);
    let seg = Some(t.seg());
    let seg = seg.as_deref();
    // JPEG (default), not recursive: the top folder only, hidden files skipped.
    let v = json(&ok(
        &[
            "resize",
            "in",
            "out",
            "--size",
            "32x24",
            "--json",
            "--workers",
            "2",
        ],
        &t.0,
        seg,
    ));
    let obj = v.as_object().expect("a JSON object");
    for k in RESIZE_JSON_KEYS {
        assert!(obj.contains_key(k), "--json lacks {k}: {v}");
    }
    assert_eq!(v["images"], 3, "{v}");
    assert_eq!(v["failed"], serde_json::json!([]), "{v}");
    assert_eq!(v["workers"], 2);
    assert!(v["seconds"].as_f64().unwrap() > 0.0, "{v}");
    assert!(v["images_per_s"].as_f64().unwrap() > 0.0, "{v}");
    assert_eq!(files_below(&t.path("out")), ["a.jpg", "b.jpg", "c.jpg"]);
    for f in ["a.jpg", "b.jpg", "c.jpg"] {
        let (px, w, h, kind) = decode_any(&t.path("out").join(f));
        assert_eq!((w, h, kind), (32, 24, "jpeg"), "{f}");
        if f == "b.jpg" {
            assert!(
                px.chunks_exact(4)
                    .all(|p| p[..3].iter().zip(FLAT).all(|(a, b)| a.abs_diff(b) <= 4)),
                "b.jpg is not the flat colour: {:?}",
                &px[..4]
            );
        }
    }
    // Recursive: subfolders mirrored.
    let v = json(&ok(
        &[
            "resize",
            "in",
            "out-r",
            "--size",
            "32x24",
            "--json",
            "--recursive",
        ],
        &t.0,
        seg,
    ));
    assert_eq!(v["images"], 5, "{v}");
    assert_eq!(
        files_below(&t.path("out-r")),
        ["a.jpg", "b.jpg", "c.jpg", "sub/d.jpg", "sub/deeper/e.jpg"]
    );
    // PNG, with the pixel tensor as an Arrow file: the same pixels as the files.
    let stdout = ok(
        &[
            "resize",
            "in",
            "out-png",
            "--size",
            "20x10",
            "--format",
            "png",
            "--fit",
            "cover",
            "--filter",
            "bicubic",
            "-r",
            "--tensor-out",
            "pixels.arrow",
        ],
        &t.0,
        seg,
    );
    assert!(
        stdout.contains("resized 5 of 5 images") && stdout.contains("wrote pixels.arrow"),
        "{stdout}"
    );
    let files = files_below(&t.path("out-png"));
    assert_eq!(
        files,
        ["a.png", "b.png", "c.png", "sub/d.png", "sub/deeper/e.png"]
    );
    let frame = shmframe::SharedFrame::map_arrow_file(&t.path("pixels.arrow")).unwrap();
    let field = frame.schema().field_with_name("image").unwrap().clone();
    assert_eq!(
        field
            .metadata()
            .get("ARROW:extension:name")
            .map(String::as_str),
        Some("arrow.fixed_shape_tensor")
    );
    assert_eq!(
        field
            .metadata()
            .get("ARROW:extension:metadata")
            .map(String::as_str),
        Some(r#"{"shape":[10,20,3]}"#)
    );
    use arrow_array::Array;
    let list = frame
        .column("image")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow_array::FixedSizeListArray>()
        .unwrap()
        .clone();
    let paths = frame
        .column("path")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow_array::StringArray>()
        .unwrap()
        .clone();
    assert_eq!(list.len(), 5);
    for (r, f) in files.iter().enumerate() {
        assert!(
            Path::new(paths.value(r)).with_extension("png").ends_with(f),
            "row {r} is {}, file {f}",
            paths.value(r)
        );
        let (px, w, h, kind) = decode_any(&t.path("out-png").join(f));
        assert_eq!((w, h, kind), (20, 10, "png"), "{f}");
        let rgb: Vec<u8> = px.chunks_exact(4).flat_map(|p| p[..3].to_vec()).collect();
        let v = list.value(r);
        let v = v
            .as_any()
            .downcast_ref::<arrow_array::UInt8Array>()
            .unwrap();
        assert_eq!(
            v.values().as_ref(),
            rgb.as_slice(),
            "{f}: file and tensor differ"
        );
    }
    // WebP with alpha kept and a contain fit: RGBA files, transparent padding.
    ok(
        &[
            "resize",
            "in",
            "out-webp",
            "--size",
            "40x40",
            "--format",
            "webp",
            "--fit",
            "contain",
            "--keep-alpha",
            "--filter",
            "nearest",
        ],
        &t.0,
        seg,
    );
    assert_eq!(
        files_below(&t.path("out-webp")),
        ["a.webp", "b.webp", "c.webp"]
    );
    let (px, w, h, kind) = decode_any(&t.path("out-webp/b.webp"));
    assert_eq!((w, h, kind), (40, 40, "webp"));
    // b is 50x30: 40x24 inside, rows 0..8 and 32..40 transparent padding.
    assert_eq!(&px[..4], &[0, 0, 0, 0], "padding is not transparent");
    let centre = &px[(20 * 40 + 20) * 4..(20 * 40 + 20) * 4 + 4];
    assert_eq!(centre, &[FLAT[0], FLAT[1], FLAT[2], 255], "centre");
    assert!(t.segments().is_empty(), "leaked: {:?}", t.segments());
    assert!(
        files_below(&t.0)
            .iter()
            .all(|f| !f.contains(".shmframe-tmp.")),
        "temporary files left: {:?}",
        files_below(&t.0)
    );
}

#[test]
fn resize_failures_exit_3_and_are_listed() {
    let t = TempDir::new("resize-bad");
    let dir = image_folder(&t);
    std::fs::write(dir.join("broken.jpg"), b"\xFF\xD8\xFF\xE0 nothing else").unwrap();
    std::fs::write(dir.join("empty.png"), b"").unwrap();
    std::fs::write(dir.join("notes.txt"), b"hello, not an image").unwrap();
    let good = std::fs::read(dir.join("a.jpg")).unwrap();
    std::fs::write(dir.join("short.jpg"), &good[..good.len() / 3]).unwrap();
    let o = shmframe(
        &[
            "resize",
            "in",
            "out",
            "--size",
            "16x16",
            "--json",
            "--workers",
            "2",
        ],
        &t.0,
        Some(&t.seg()),
    );
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(3), "stdout {out}\nstderr {err}");
    let v = json(&out);
    assert_eq!(v["images"], 7, "{v}");
    let failed = v["failed"].as_array().expect("failed is a list");
    let got: Vec<(String, String)> = failed
        .iter()
        .map(|f| {
            let mut keys: Vec<&String> = f.as_object().expect("an object").keys().collect();
            keys.sort();
            assert_eq!(keys, ["error", "path"], "{f}");
            (
                f["path"].as_str().unwrap().to_string(),
                f["error"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want = [
        ("broken.jpg", "corrupt or truncated JPEG"),
        ("empty.png", "empty file"),
        ("notes.txt", "not an image"),
        ("short.jpg", "corrupt or truncated JPEG"),
    ];
    assert_eq!(got.len(), want.len(), "{v}");
    for ((path, error), (name, needle)) in got.iter().zip(want) {
        assert!(
            path.ends_with(name) && error.contains(needle),
            "{path}: {error} (want {name}: {needle})"
        );
        // Each failure is also on stderr, with its path.
        assert!(
            err.contains(&format!("{path}: {error}")),
            "stderr lacks {path}: {err}"
        );
    }
    for k in RESIZE_JSON_KEYS {
        assert!(v.get(k).is_some(), "--json lacks {k}: {v}");
    }
    assert!(v["seconds"].as_f64().unwrap() > 0.0);
    assert!(v["images_per_s"].as_f64().unwrap() > 0.0);
    assert!(err.contains("4 of 7 images failed"), "{err}");
    // The good ones are done; nothing for the bad ones.
    assert_eq!(files_below(&t.path("out")), ["a.jpg", "b.jpg", "c.jpg"]);
    assert!(t.segments().is_empty(), "leaked: {:?}", t.segments());
}

#[test]
fn resize_bad_usage_exits_2() {
    let t = TempDir::new("resize-usage");
    image_folder(&t);
    let seg = Some(t.seg());
    let seg = seg.as_deref();
    fails_with_2(&["resize", "missing", "out"], &t.0, seg, "missing");
    assert!(
        !t.path("out").exists(),
        "an output folder was made for a missing input"
    );
    // Bad option values: each refused with a sentence naming it, before any work.
    let bad: &[(&[&str], &str)] = &[
        (&["--size", "0x5"], "--size 0x5"),
        (&["--size", "big"], "WIDTHxHEIGHT"),
        (&["--size", "16385x10"], "1 to 16384"),
        (&["--quality", "0"], "--quality 0"),
        (&["--quality", "101"], "--quality 101"),
        (&["--workers", "0"], "--workers"),
        (&["--tensor-out", "pixels.csv"], "--tensor-out"),
        (&["--fit", "squash"], "squash"),
        (&["--oversample=-1"], "--oversample -1"),
        (
            &["--progressive-oversample", "NaN"],
            "--progressive-oversample NaN",
        ),
    ];
    for (opts, needle) in bad {
        let args: Vec<&str> = ["resize", "in", "out"]
            .iter()
            .chain(opts.iter())
            .copied()
            .collect();
        fails_with_2(&args, &t.0, seg, needle);
    }
    fails_with_2(&["resize", "in"], &t.0, seg, "OUT_DIR");
    // Two inputs that would be written to the same file: refused before any work.
    std::fs::copy(t.path("in/c.webp"), t.path("in/a.png")).unwrap();
    fails_with_2(
        &["resize", "in", "out2"],
        &t.0,
        seg,
        "both would be written",
    );
    assert!(
        files_below(&t.path("out2")).is_empty(),
        "{:?}",
        files_below(&t.path("out2"))
    );
    let h = ok(&["resize", "--help"], &t.0, None);
    assert!(h.contains("Examples:") && h.contains("--keep-alpha"), "{h}");
    assert!(t.segments().is_empty(), "leaked: {:?}", t.segments());
}
