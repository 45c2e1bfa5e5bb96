//! What every test of this binary shares: running this binary again as a child process (with a
//! watchdog), the leak guard, temporary directories and the sample data.
//!
//! **Children.** A multi-process test spawns `current_exe() --exact <child test> --nocapture`
//! with `SHMFRAME_TEST_CHILD=<role>:<argument>`. The child test (a `#[test]` named `child_…`)
//! calls [`child_arg`]: it gets the argument when the variable names its role, and returns
//! at once otherwise (in a normal run the variable is absent and the child test is a no-op).
//! The child reports through its exit status (0 = what it saw was right) and prints its
//! reasons on stderr, which the parent shows when it fails.
//!
//! **Watchdog.** [`ChildProc::wait`] polls the child and kills it when its time is up; a
//! [`ChildProc`] dropped early (the parent test panicked) is killed and reaped too, so no test
//! leaves a process behind.
//!
//! **Leaks.** [`LeakGuard`] checks, when the test ends (also when it panics), that none of the
//! segments the test made is left: owned names carry a label unique to the test
//! (`shmframe.<pid>.<start>.<seq>.<label>`), so tests running in parallel threads of this
//! process never see each other's segments. A leak fails the test.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arrow_array::{
    FixedSizeListArray, Float64Array, Int32Array, RecordBatch, StringArray, UInt8Array,
};
use arrow_schema::{DataType, Field, Schema};
use shmframe_ipc::{
    HeaderError, NameOwner, ProcessId, Segment, SegmentDir, SegmentError, SegmentName, matrix,
};

/// The variable that tells a child process its role.
pub(crate) const ROLE_ENV: &str = "SHMFRAME_TEST_CHILD";

/// The generous limit for a child that does a few milliseconds of work (2-core CI machines
/// running other builds are slow; a hang still ends the test).
pub(crate) const CHILD_LIMIT: Duration = Duration::from_secs(30);

/// The full libtest name of a test function of the calling module (`it::sync::child_poster`).
#[macro_export]
macro_rules! test_name {
    ($f:ident) => {{
        let path = concat!(module_path!(), "::", stringify!($f));
        // Drop the crate name: libtest names tests from the crate root.
        &path[path.find("::").map_or(0, |i| i + 2)..]
    }};
}

/// In a child test: the argument when `SHMFRAME_TEST_CHILD` is `<role>:<argument>`, `None` when
/// the variable is absent or names another role (the child test then returns at once).
pub(crate) fn child_arg(role: &str) -> Option<String> {
    let v = std::env::var(ROLE_ENV).ok()?;
    let (r, arg) = v.split_once(':')?;
    (r == role).then(|| arg.to_string())
}

/// Whether this process is a child (parent tests return at once in a child).
pub(crate) fn is_child() -> bool {
    std::env::var_os(ROLE_ENV).is_some()
}

/// Ends a child process: exit status 0 when `ok`, 1 otherwise (after printing `why`).
pub(crate) fn child_exit(ok: bool, why: impl std::fmt::Display) -> ! {
    if !ok {
        eprintln!("child check failed: {why}");
    }
    std::process::exit(if ok { 0 } else { 1 })
}

/// A running child process, killed and reaped if dropped before it was waited for.
pub(crate) struct ChildProc {
    child: Option<Child>,
    what: String,
    out: Option<std::thread::JoinHandle<Vec<u8>>>,
    err: Option<std::thread::JoinHandle<Vec<u8>>>,
}

/// How a child ended and what it printed.
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Finished {
    /// Panics with the child's output unless it exited 0.
    pub(crate) fn assert_success(&self, what: &str) {
        assert!(
            self.status.success(),
            "{what}: child ended with {:?}\n--- child stderr ---\n{}\n--- child stdout ---\n{}",
            self.status,
            self.stderr,
            self.stdout
        );
    }
}

fn drain(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = r.read_to_end(&mut v);
        v
    })
}

impl ChildProc {
    /// Spawns `cmd` with stdout and stderr captured.
    pub(crate) fn spawn(mut cmd: Command, what: &str) -> std::io::Result<Self> {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let out = child.stdout.take().map(drain);
        let err = child.stderr.take().map(drain);
        Ok(ChildProc {
            child: Some(child),
            what: what.to_string(),
            out,
            err,
        })
    }

    /// Re-runs this test binary's test `test` as a child with role `role` and `arg`.
    pub(crate) fn test(test: &str, role: &str, arg: &str) -> Self {
        let mut cmd = Command::new(std::env::current_exe().expect("test binary path"));
        cmd.args(["--exact", test, "--nocapture", "--test-threads=1"])
            .env(ROLE_ENV, format!("{role}:{arg}"));
        Self::spawn(cmd, &format!("{test} as {role}")).expect("spawn the test binary")
    }

    /// Waits at most `limit`; a child still running then is killed and the test fails.
    pub(crate) fn wait(mut self, limit: Duration) -> Finished {
        let mut child = self.child.take().expect("waited once");
        let start = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().expect("try_wait") {
                break s;
            }
            if start.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                let err = self.err.take().map(|h| h.join().unwrap_or_default());
                panic!(
                    "child {} hung: killed after {limit:?}\n--- child stderr ---\n{}",
                    self.what,
                    String::from_utf8_lossy(&err.unwrap_or_default())
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let text = |h: Option<std::thread::JoinHandle<Vec<u8>>>| {
            String::from_utf8_lossy(&h.map(|h| h.join().unwrap_or_default()).unwrap_or_default())
                .into_owned()
        };
        Finished {
            status,
            stdout: text(self.out.take()),
            stderr: text(self.err.take()),
        }
    }
}

impl Drop for ChildProc {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs a child test to its end (see [`ChildProc::test`]) with the default limit.
pub(crate) fn run_child(test: &str, role: &str, arg: &str) -> Finished {
    ChildProc::test(test, role, arg).wait(CHILD_LIMIT)
}

/// Fails the test if a segment it made is left when it ends; removes what it finds.
///
/// Scans `dir` for owned names of this process ending in `.<label>`, plus the paths given to
/// [`LeakGuard::track`] (user-named objects, objects made by children). Declare it first in
/// the test so it drops last, after every handle that unlinks on drop.
pub(crate) struct LeakGuard {
    label: String,
    dir: SegmentDir,
    tracked: std::sync::Mutex<Vec<PathBuf>>,
}

impl LeakGuard {
    /// A guard for segments labelled `label` (unique per test) in `/dev/shm`.
    pub(crate) fn new(label: &str) -> Self {
        Self::in_dir(label, SegmentDir::Shm)
    }

    /// A guard for segments labelled `label` in `dir`.
    pub(crate) fn in_dir(label: &str, dir: SegmentDir) -> Self {
        assert!(SegmentName::owned(label).is_ok(), "bad label {label:?}");
        LeakGuard {
            label: label.to_string(),
            dir,
            tracked: Default::default(),
        }
    }

    /// A fresh owned name with this test's label.
    pub(crate) fn name(&self) -> SegmentName {
        SegmentName::owned(&self.label).expect("valid label")
    }

    /// A user name `shmframe.<tag><label-hash><pid>`, tracked.
    pub(crate) fn user_name(&self, tag: &str) -> SegmentName {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = SegmentName::user(&format!(
            "{tag}{}x{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ))
        .expect("valid user name");
        self.track(self.dir.object_path(&n));
        n
    }

    /// Also checks (and removes) `path` at the end.
    pub(crate) fn track(&self, path: PathBuf) {
        self.tracked.lock().unwrap().push(path);
    }

    /// Removes every tracked path: the end of a test that made objects by hand (a panic
    /// before this point leaves them to the guard's drop, which removes them too).
    pub(crate) fn remove_tracked(&self) {
        for p in self.tracked.lock().unwrap().iter() {
            if p.symlink_metadata().is_ok_and(|m| m.is_dir()) {
                let _ = std::fs::remove_dir(p);
            } else {
                let _ = std::fs::remove_file(p);
            }
        }
    }

    /// The segments of this test currently present.
    pub(crate) fn present(&self) -> Vec<PathBuf> {
        let me = ProcessId::current();
        let suffix = format!(".{}", self.label);
        let mut found: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| {
                        let f = e.file_name().to_str()?.to_string();
                        let n = SegmentName::parse(&f).ok()?;
                        let ours = n.owner() == NameOwner::Process(me) && f.ends_with(&suffix);
                        ours.then(|| e.path())
                    })
                    .collect()
            })
            .unwrap_or_default();
        for p in self.tracked.lock().unwrap().iter() {
            if p.symlink_metadata().is_ok() && !found.contains(p) {
                found.push(p.clone());
            }
        }
        found
    }
}

impl Drop for LeakGuard {
    fn drop(&mut self) {
        let left = self.present();
        self.remove_tracked();
        for p in &left {
            let _ = std::fs::remove_file(p);
        }
        if !left.is_empty() {
            if std::thread::panicking() {
                eprintln!("also leaked (removed): {left:?}");
            } else {
                panic!("test leaked segments (now removed): {left:?}");
            }
        }
    }
}

/// A private directory under the system temp dir, removed with its content on drop.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "shmframe-ipc-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The sample batch: a `FixedSizeList<f64>` matrix (nullable rows), an
/// `arrow.fixed_shape_tensor` of `uint8` (shape 2x2x3), a nullable `Int32` and a `Utf8`.
pub(crate) fn sample_batch() -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        matrix::matrix_field("x", DataType::Float64, 3, true),
        matrix::tensor_field("img", DataType::UInt8, &[2, 2, 3], false),
        Field::new("id", DataType::Int32, true),
        Field::new("s", DataType::Utf8, true),
    ]));
    let x = FixedSizeListArray::new(
        Arc::new(Field::new("item", DataType::Float64, false)),
        3,
        Arc::new(Float64Array::from_iter_values((0..9).map(f64::from))),
        None,
    );
    let img = FixedSizeListArray::new(
        Arc::new(Field::new("item", DataType::UInt8, false)),
        12,
        Arc::new(UInt8Array::from_iter_values(0..36)),
        None,
    );
    let id = Int32Array::from(vec![Some(7), None, Some(-3)]);
    let s = StringArray::from(vec![Some("a"), Some("bé"), None]);
    RecordBatch::try_new(
        schema,
        vec![Arc::new(x), Arc::new(img), Arc::new(id), Arc::new(s)],
    )
    .expect("valid sample batch")
}

/// Every buffer of `data`, recursively: (address, length) of value/offset buffers, null
/// buffers and the buffers of child data.
pub(crate) fn all_buffers(data: &arrow_data::ArrayData, out: &mut Vec<(usize, usize)>) {
    for b in data.buffers() {
        out.push((b.as_ptr() as usize, b.len()));
    }
    if let Some(n) = data.nulls() {
        let b = n.buffer();
        out.push((b.as_ptr() as usize, b.len()));
    }
    for c in data.child_data() {
        all_buffers(c, out);
    }
}

/// Asserts that every buffer of every column of `batches` lies in `mapping`; returns how many
/// buffers were checked.
pub(crate) fn assert_inside(batches: &[RecordBatch], mapping: std::ops::Range<usize>) -> usize {
    let mut bufs = Vec::new();
    for b in batches {
        for c in b.columns() {
            all_buffers(&c.to_data(), &mut bufs);
        }
    }
    for &(p, l) in &bufs {
        assert!(
            p >= mapping.start && p + l <= mapping.end,
            "buffer {p:#x}+{l} lies outside the mapping {:#x}..{:#x}: it was copied",
            mapping.start,
            mapping.end
        );
    }
    bufs.len()
}

/// The address range of a byte slice.
pub(crate) fn addr_range(b: &[u8]) -> std::ops::Range<usize> {
    let r = b.as_ptr_range();
    r.start as usize..r.end as usize
}

/// Writes `bytes` to a new object `path` with `mode` (0600 for "ours").
pub(crate) fn write_object(path: &Path, bytes: &[u8], mode: u32) {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut f = std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(mode)
        .open(path)
        .unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    std::io::Write::write_all(&mut f, bytes).expect("write object");
    // The umask may have cleared bits of `mode`; set exactly what the test asks for.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[test]
fn leak_guard_catches_a_leaked_segment() {
    if is_child() {
        return;
    }
    let leaked_path = std::panic::catch_unwind(|| {
        let g = LeakGuard::new("t-guard");
        let seg = shmframe_ipc::SegmentMut::create(g.name(), 8, &Default::default()).unwrap();
        let path = seg.dir().object_path(seg.name());
        std::mem::forget(seg);
        assert_eq!(g.present(), vec![path.clone()]);
        path
        // `g` drops here and must panic.
    });
    assert!(leaked_path.is_err(), "the guard did not fail the test");
    let g = LeakGuard::new("t-guard");
    assert!(g.present().is_empty(), "the guard did not remove the leak");
}

/// Asserts that attaching `name` is refused because the segment is not published (yet, or
/// any more).
pub(crate) fn assert_unpublished(name: &SegmentName, dir: &SegmentDir) {
    let e = Segment::attach(name, dir).unwrap_err();
    assert!(
        matches!(
            e,
            SegmentError::Header {
                source: HeaderError::Unpublished,
                ..
            }
        ),
        "{e}"
    );
}
