//! Integration tests of the shared-memory layer with real processes and real `/dev/shm`.
//!
//! Multi-process tests re-run this test binary as the child (`--exact NAME`) with the role in
//! `SHMFRAME_TEST_CHILD`; the child test does its part only when that variable names it.
//! Every child wait has a watchdog, and every segment a test makes is removed by a guard.

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{
    Array, ArrayRef, FixedSizeListArray, Float32Array, Float64Array, Int32Array, Int64Array,
    RecordBatch, StringArray, UInt8Array,
};
use arrow_schema::{DataType, Field, Schema};
use shmframe_ipc::arrow::{ColumnPlan, plan_layout, read_ipc_file, write_batches};
use shmframe_ipc::sync::{Event, Semaphore};
use shmframe_ipc::{
    CreateOptions, HeaderError, Segment, SegmentDir, SegmentError, SegmentName, SharedRegion,
    matrix,
};

const ROLE: &str = "SHMFRAME_TEST_CHILD";

fn role() -> Option<String> {
    std::env::var(ROLE).ok()
}

/// Runs this test binary's test `test` as a child with `role`; kills it after `limit`.
fn child(test: &str, role: &str, limit: Duration) -> ExitStatus {
    let mut c = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn child");
    let start = Instant::now();
    loop {
        if let Some(s) = c.try_wait().unwrap() {
            return s;
        }
        if start.elapsed() > limit {
            let _ = c.kill();
            panic!("child {test} ({role}) hung; killed after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Removes objects by path on drop (even when the test panics).
struct Cleanup(Vec<std::path::PathBuf>);
impl Drop for Cleanup {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn sample_batch() -> RecordBatch {
    let m = matrix::matrix_field("x", DataType::Float64, 3, true);
    let t = matrix::tensor_field("img", DataType::UInt8, &[2, 2, 3], false);
    let schema = Arc::new(Schema::new(vec![
        m,
        t,
        Field::new("id", DataType::Int32, true),
        Field::new("s", DataType::Utf8, true),
    ]));
    let item = Arc::new(Field::new("item", DataType::Float64, false));
    let x = FixedSizeListArray::new(
        item,
        3,
        Arc::new(Float64Array::from_iter_values((0..9).map(f64::from))),
        None,
    );
    let item8 = Arc::new(Field::new("item", DataType::UInt8, false));
    let img = FixedSizeListArray::new(
        item8,
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
    .unwrap()
}

fn walk_buffers(data: &arrow_data::ArrayData, out: &mut Vec<(usize, usize)>) {
    for b in data.buffers() {
        out.push((b.as_ptr() as usize, b.len()));
    }
    if let Some(n) = data.nulls() {
        out.push((n.buffer().as_ptr() as usize, n.buffer().len()));
    }
    for c in data.child_data() {
        walk_buffers(c, out);
    }
}

#[test]
fn child_reads_the_same_arrow_values_zero_copy() {
    if let Some(r) = role() {
        let Some(name) = r.strip_prefix("read:") else {
            return;
        };
        let seg = Segment::attach(&SegmentName::parse(name).unwrap(), &SegmentDir::Shm).unwrap();
        let file = read_ipc_file(seg, name).unwrap();
        std::process::exit(if file.batches[0] == sample_batch() {
            0
        } else {
            1
        });
    }
    let batch = sample_batch();
    let owner = write_batches(
        SegmentName::owned("t-read").unwrap(),
        &CreateOptions::default(),
        &batch.schema(),
        std::slice::from_ref(&batch),
    )
    .unwrap();
    let s = child(
        "child_reads_the_same_arrow_values_zero_copy",
        &format!("read:{}", owner.name()),
        Duration::from_secs(20),
    );
    assert!(s.success(), "child saw different values: {s:?}");
    // Zero-copy proof in this process: every buffer lies inside the mapping.
    let reader = Segment::attach(owner.name(), owner.dir()).unwrap();
    let (lo, len) = (reader.bytes().as_ptr() as usize, reader.bytes().len());
    let file = read_ipc_file(reader, "t").unwrap();
    let mut bufs = Vec::new();
    for c in file.batches[0].columns() {
        walk_buffers(&c.to_data(), &mut bufs);
    }
    assert!(bufs.len() >= 6, "{bufs:?}");
    for (p, l) in bufs {
        assert!(
            p >= lo && p + l <= lo + len,
            "buffer {p:#x}+{l} outside mapping {lo:#x}+{len}"
        );
    }
    let path = owner.path();
    drop(owner);
    drop(file);
    assert!(
        !path.exists(),
        "dropping the owner and the arrays unlinks the segment"
    );
}

#[test]
fn writing_a_read_only_mapping_is_sigsegv() {
    if let Some(r) = role() {
        let Some(name) = r.strip_prefix("write:") else {
            return;
        };
        let seg = Segment::attach(&SegmentName::parse(name).unwrap(), &SegmentDir::Shm).unwrap();
        let p = seg.payload().as_ptr() as *mut u8;
        // SAFETY: none: this write is meant to fault (the mapping is PROT_READ) and kill us.
        unsafe { std::ptr::write_volatile(p, 1) };
        std::process::exit(0);
    }
    let batch = sample_batch();
    let owner = write_batches(
        SegmentName::owned("t-ro").unwrap(),
        &CreateOptions::default(),
        &batch.schema(),
        &[batch],
    )
    .unwrap();
    let before = owner.payload().to_vec();
    let s = child(
        "writing_a_read_only_mapping_is_sigsegv",
        &format!("write:{}", owner.name()),
        Duration::from_secs(20),
    );
    assert_eq!(s.signal(), Some(11), "expected SIGSEGV, got {s:?}");
    assert_eq!(owner.payload(), &before[..], "the owner's data changed");
}

#[test]
fn semaphore_and_event_across_processes() {
    if let Some(r) = role() {
        let Some(name) = r.strip_prefix("post:") else {
            return;
        };
        let region =
            SharedRegion::attach(&SegmentName::parse(name).unwrap(), &SegmentDir::Shm).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        Semaphore::new(&region.u32s(0, 1)[0], "t").post();
        Event::new(&region.u32s(4, 1)[0], "e").notify_all();
        std::process::exit(0);
    }
    let region =
        SharedRegion::create(SegmentName::owned("t-sem").unwrap(), 4096, &SegmentDir::Shm).unwrap();
    let sem = Semaphore::new(&region.u32s(0, 1)[0], "t");
    let ev = Event::new(&region.u32s(4, 1)[0], "e");
    let seen = ev.current();
    let mut c = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "semaphore_and_event_across_processes",
            "--test-threads=1",
        ])
        .env(ROLE, format!("post:{}", region.name()))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    sem.wait_timeout(Duration::from_secs(10))
        .expect("posted by the child");
    assert!(t.elapsed() >= Duration::from_millis(40));
    assert_eq!(
        ev.wait_change(seen, Duration::from_secs(10)).unwrap(),
        seen + 1
    );
    assert!(c.wait().unwrap().success());
    let t = Instant::now();
    let e = sem.wait_timeout(Duration::from_millis(50)).unwrap_err();
    assert!(matches!(e, shmframe_ipc::SyncError::Timeout { .. }));
    assert!(t.elapsed() >= Duration::from_millis(50) && t.elapsed() < Duration::from_secs(2));
}

#[test]
fn planned_layout_filled_in_place_is_read_by_a_child() {
    if let Some(r) = role() {
        let Some(name) = r.strip_prefix("planned:") else {
            return;
        };
        let seg = Segment::attach(&SegmentName::parse(name).unwrap(), &SegmentDir::Shm).unwrap();
        let b = &read_ipc_file(seg, name).unwrap().batches[0];
        let m = b
            .column(0)
            .as_any()
            .downcast_ref::<FixedSizeListArray>()
            .unwrap();
        let v = m.values().as_any().downcast_ref::<Float32Array>().unwrap();
        let i = b.column(1).as_any().downcast_ref::<Int64Array>().unwrap();
        let s = b
            .column(2)
            .as_any()
            .downcast_ref::<arrow_array::BinaryArray>()
            .unwrap();
        let ok = v.values().as_ref() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
            && i.iter().collect::<Vec<_>>() == vec![Some(10), None, Some(30)]
            && s.value(0) == b"ab"
            && s.value(2) == b"cde"
            && s.value(1).is_empty();
        std::process::exit(if ok { 0 } else { 1 });
    }
    let schema = Schema::new(vec![
        matrix::matrix_field("m", DataType::Float32, 2, false),
        Field::new("i", DataType::Int64, true),
        Field::new("b", DataType::Binary, false),
    ]);
    let plans = [
        ColumnPlan::default(),
        ColumnPlan {
            null_count: 1,
            value_bytes: 0,
        },
        ColumnPlan {
            null_count: 0,
            value_bytes: 5,
        },
    ];
    let mut p = plan_layout(
        SegmentName::owned("t-plan").unwrap(),
        &CreateOptions::default(),
        &schema,
        3,
        &plans,
    )
    .unwrap();
    let cols = p.columns.clone();
    let (body, base) = p.segment.body_mut();
    let at = |r: &std::ops::Range<usize>| r.start - base..r.end - base;
    for (k, v) in [0f32, 1.0, 2.0, 3.0, 4.0, 5.0].iter().enumerate() {
        body[at(&cols[0].values)][k * 4..k * 4 + 4].copy_from_slice(&v.to_le_bytes());
    }
    body[at(cols[1].validity.as_ref().unwrap())][0] = 0b101;
    for (k, v) in [10i64, 0, 30].iter().enumerate() {
        body[at(&cols[1].values)][k * 8..k * 8 + 8].copy_from_slice(&v.to_le_bytes());
    }
    for (k, o) in [0i32, 2, 2, 5].iter().enumerate() {
        body[at(cols[2].offsets.as_ref().unwrap())][k * 4..k * 4 + 4]
            .copy_from_slice(&o.to_le_bytes());
    }
    body[at(&cols[2].values)].copy_from_slice(b"abcde");
    let seg = p.segment.publish().unwrap();
    let s = child(
        "planned_layout_filled_in_place_is_read_by_a_child",
        &format!("planned:{}", seg.name()),
        Duration::from_secs(20),
    );
    assert!(s.success(), "child saw different values: {s:?}");
}

#[test]
fn names_duplicates_and_missing_segments() {
    if role().is_some() {
        return;
    }
    for bad in ["", "1x", "a/b", "a.b", "../etc"] {
        assert!(SegmentName::user(bad).is_err(), "{bad:?}");
    }
    let name = SegmentName::owned("t-dup").unwrap();
    let a = shmframe_ipc::SegmentMut::create(name.clone(), 10, &CreateOptions::default()).unwrap();
    let e =
        shmframe_ipc::SegmentMut::create(name.clone(), 10, &CreateOptions::default()).unwrap_err();
    assert!(matches!(e, SegmentError::Exists { .. }), "{e}");
    // Unpublished: readers refuse it.
    let e = Segment::attach(&name, &SegmentDir::Shm).unwrap_err();
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
    drop(a);
    let e = Segment::attach(&name, &SegmentDir::Shm).unwrap_err();
    assert!(matches!(e, SegmentError::NotFound { .. }), "{e}");
    assert!(e.to_string().contains(name.as_str()));
}

/// Writes `bytes` as `/dev/shm/shmframe.<tag><pid>` with `mode`; returns its name.
fn raw_object(tag: &str, bytes: &[u8], mode: u32, guard: &mut Cleanup) -> SegmentName {
    let name = SegmentName::user(&format!("{tag}{}", std::process::id())).unwrap();
    let path = SegmentDir::Shm.object_path(&name);
    guard.0.push(path.clone());
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(mode)
        .open(&path)
        .unwrap();
    std::io::Write::write_all(&mut f, bytes).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    name
}

#[test]
fn corrupt_and_foreign_objects_are_refused_with_named_errors() {
    if role().is_some() {
        return;
    }
    let mut g = Cleanup(Vec::new());
    let batch = sample_batch();
    let good = write_batches(
        SegmentName::owned("t-good").unwrap(),
        &CreateOptions::default(),
        &batch.schema(),
        &[batch],
    )
    .unwrap();
    let ok = good.bytes().to_vec();
    let refuse = |name: &SegmentName| Segment::attach(name, &SegmentDir::Shm).unwrap_err();
    let header_err = |e: SegmentError| match e {
        SegmentError::Header { source, .. } => source,
        other => panic!("expected a header error, got {other}"),
    };
    // Truncated header.
    let n = raw_object("trunc", &ok[..50], 0o600, &mut g);
    assert!(matches!(
        header_err(refuse(&n)),
        HeaderError::TooSmall { .. }
    ));
    // Wrong magic.
    let mut b = ok.clone();
    b[8] = b'X';
    let n = raw_object("magic", &b, 0o600, &mut g);
    assert_eq!(header_err(refuse(&n)), HeaderError::Magic);
    // Unpublished.
    let mut b = ok.clone();
    b[16..20].copy_from_slice(&0u32.to_ne_bytes());
    let n = raw_object("unpub", &b, 0o600, &mut g);
    assert_eq!(header_err(refuse(&n)), HeaderError::Unpublished);
    // total_len lies (the object is shorter than the header says).
    let n = raw_object("short", &ok[..ok.len() - 64], 0o600, &mut g);
    assert!(matches!(
        header_err(refuse(&n)),
        HeaderError::Field {
            field: "total_len",
            ..
        }
    ));
    // Payload past the end.
    let mut b = ok.clone();
    b[40..48].copy_from_slice(&(u64::MAX - 8).to_ne_bytes());
    let n = raw_object("past", &b, 0o600, &mut g);
    assert!(matches!(
        header_err(refuse(&n)),
        HeaderError::Field {
            field: "payload_len",
            ..
        }
    ));
    // Mode 0644: other users could read it.
    let n = raw_object("mode", &ok, 0o644, &mut g);
    assert!(matches!(refuse(&n), SegmentError::Foreign { .. }));
    // Random bytes under a shmframe name.
    let n = raw_object("noise", &[0x5a; 4096], 0o600, &mut g);
    assert_eq!(header_err(refuse(&n)), HeaderError::Magic);
    // A symbolic link is not followed.
    let target = raw_object("target", &ok, 0o600, &mut g);
    let link = SegmentName::user(&format!("link{}", std::process::id())).unwrap();
    let lp = SegmentDir::Shm.object_path(&link);
    g.0.push(lp.clone());
    std::os::unix::fs::symlink(SegmentDir::Shm.object_path(&target), &lp).unwrap();
    assert!(matches!(refuse(&link), SegmentError::Foreign { .. }));
    // Arrow-level corruption: footer length, block offsets, truncation.
    let mut b = ok.clone();
    let l = b.len();
    b[l - 10..l - 6].copy_from_slice(&i32::MAX.to_le_bytes());
    assert!(read_ipc_file(b, "t").is_err());
    let mut b = ok.clone();
    b.truncate(ok.len() / 2);
    assert!(read_ipc_file(b, "t").is_err());
    for i in (128..ok.len()).step_by(7) {
        let mut b = ok.clone();
        b[i] ^= 0xff;
        let _ = read_ipc_file(b, "t"); // never panics
    }
}

#[test]
fn plain_directory_segments_work_the_same() {
    if role().is_some() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("shmframe-dir-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sd = SegmentDir::Path(dir.clone());
    let batch = sample_batch();
    let opts = CreateOptions {
        dir: sd.clone(),
        ..Default::default()
    };
    let owner = write_batches(
        SegmentName::owned("t-dir").unwrap(),
        &opts,
        &batch.schema(),
        std::slice::from_ref(&batch),
    )
    .unwrap();
    let path = owner.path();
    assert!(path.starts_with(&dir) && path.exists());
    let f = read_ipc_file(Segment::attach(owner.name(), &sd).unwrap(), "t").unwrap();
    assert_eq!(f.batches[0], batch);
    drop(owner);
    drop(f);
    assert!(!path.exists(), "dropping the owner unlinks the file");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn full_dev_shm_is_a_clear_error_at_create() {
    if let Some(r) = role() {
        if r != "nospace" {
            return;
        }
        let e = shmframe_ipc::SegmentMut::create(
            SegmentName::owned("big").unwrap(),
            64 << 20,
            &CreateOptions::default(),
        )
        .unwrap_err();
        let msg = e.to_string();
        let ok = matches!(e, SegmentError::NoSpace { .. })
            && msg.contains("64.0 MiB")
            && msg.contains("free")
            && msg.contains("shm-size");
        let left = std::fs::read_dir("/dev/shm").unwrap().count();
        eprintln!("{msg}");
        std::process::exit(if ok && left == 0 { 0 } else { 1 });
    }
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root for a private mount namespace");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let script = format!(
        "mount -t tmpfs -o size=8m tmpfs /dev/shm || exit 77; exec {} --exact full_dev_shm_is_a_clear_error_at_create --nocapture",
        exe.display()
    );
    let s = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .env(ROLE, "nospace")
        .stdout(Stdio::null())
        .status();
    match s {
        Ok(s) if s.code() == Some(77) => eprintln!("skipped: cannot mount a tmpfs here"),
        Ok(s) => assert!(
            s.success(),
            "child did not get the clear NoSpace error: {s:?}"
        ),
        Err(e) => eprintln!("skipped: unshare unavailable: {e}"),
    }
}

#[test]
fn sweep_removes_only_segments_of_dead_owners() {
    if let Some(r) = role() {
        if r != "leak" {
            return;
        }
        let seg = shmframe_ipc::SegmentMut::create(
            SegmentName::owned("leak").unwrap(),
            8,
            &CreateOptions::default(),
        )
        .unwrap();
        eprintln!("\nLEAKED {}", seg.name());
        std::mem::forget(seg);
        std::process::exit(0);
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "sweep_removes_only_segments_of_dead_owners",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, "leak")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    let leaked = text
        .lines()
        .find_map(|l| l.strip_prefix("LEAKED "))
        .expect("child printed its segment")
        .to_string();
    let leaked = SegmentName::parse(&leaked).unwrap();
    let mine = shmframe_ipc::SegmentMut::create(
        SegmentName::owned("alive").unwrap(),
        8,
        &CreateOptions::default(),
    )
    .unwrap();
    let persistent_name = SegmentName::user(&format!("sweeptest{}", std::process::id())).unwrap();
    let persistent = shmframe_ipc::SegmentMut::create(
        persistent_name.clone(),
        8,
        &CreateOptions {
            persistent: true,
            ..Default::default()
        },
    )
    .unwrap()
    .publish()
    .unwrap();
    drop(persistent); // persistent: not unlinked
    let listed = shmframe_ipc::sweep::list(&SegmentDir::Shm).unwrap();
    let dead = listed.iter().find(|i| i.name == leaked).expect("listed");
    assert!(!dead.owner_alive);
    let removed = shmframe_ipc::sweep::sweep_stale(&SegmentDir::Shm).unwrap();
    assert!(removed.iter().any(|i| i.name == leaked));
    assert!(!SegmentDir::Shm.object_path(&leaked).exists());
    assert!(
        SegmentDir::Shm.object_path(mine.name()).exists(),
        "a live owner's segment was removed"
    );
    assert!(
        SegmentDir::Shm.object_path(&persistent_name).exists(),
        "a persistent segment was removed"
    );
    shmframe_ipc::remove(&persistent_name, &SegmentDir::Shm).unwrap();
}

#[test]
fn pyarrow_reads_our_segment() {
    if role().is_some() {
        return;
    }
    let Ok(py) = std::env::var("SHMFRAME_PYTHON") else {
        eprintln!("skipped: SHMFRAME_PYTHON is not set");
        return;
    };
    let check = Command::new(&py).args(["-c", "import pyarrow"]).status();
    if !matches!(check, Ok(s) if s.success()) {
        eprintln!("skipped: pyarrow not importable by {py}");
        return;
    }
    let batch = sample_batch();
    let owner = write_batches(
        SegmentName::owned("t-py").unwrap(),
        &CreateOptions::default(),
        &batch.schema(),
        &[batch],
    )
    .unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/python/test_pyarrow_reads_segment.py"
    );
    let s = Command::new(&py)
        .arg(script)
        .arg(owner.path())
        .status()
        .unwrap();
    assert!(s.success(), "pyarrow check failed: {s:?}");
}

#[test]
fn zero_sized_columns_and_empty_batches() {
    if role().is_some() {
        return;
    }
    let schema = Arc::new(Schema::new(vec![matrix::matrix_field(
        "x",
        DataType::Float64,
        4,
        false,
    )]));
    let empty = RecordBatch::new_empty(schema.clone());
    let owner = write_batches(
        SegmentName::owned("t-empty").unwrap(),
        &CreateOptions::default(),
        &schema,
        &[empty],
    )
    .unwrap();
    let f = read_ipc_file(Segment::attach(owner.name(), owner.dir()).unwrap(), "t").unwrap();
    assert_eq!(f.batches[0].num_rows(), 0);
    let arr: ArrayRef = f.batches[0].column(0).clone();
    assert_eq!(
        matrix::matrix_view::<arrow_array::types::Float64Type>("x", &arr)
            .unwrap()
            .shape(),
        &[0, 4]
    );
}

/// Inputs on which the `segment_attach` fuzz target once crashed (arrow-rs panicked on a
/// buffer past the body); each must now be a clean error.
#[test]
fn fuzz_regressions_are_clean_errors() {
    if role().is_some() {
        return;
    }
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fuzz-regressions");
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let bytes = std::fs::read(e.unwrap().path()).unwrap();
        assert!(read_ipc_file(bytes, "regression").is_err());
        n += 1;
    }
    assert!(n >= 3);
}
