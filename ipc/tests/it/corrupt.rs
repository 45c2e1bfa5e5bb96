//! Hostile objects under shmframe names: each is refused with its own typed error, no panic,
//! and `remove` never deletes what is not ours.

use std::path::Path;

use shmframe_ipc::arrow::write_batches;
use shmframe_ipc::{
    CreateOptions, HeaderError, Segment, SegmentDir, SegmentError, SegmentName, read_header,
    remove, sweep,
};

use super::harness::{
    LeakGuard, TempDir, child_arg, child_exit, is_child, run_child, sample_batch, write_object,
};

/// The bytes of a valid published Arrow segment (header included).
fn good_bytes(g: &LeakGuard) -> Vec<u8> {
    let b = sample_batch();
    let seg = write_batches(g.name(), &CreateOptions::default(), &b.schema(), &[b]).unwrap();
    seg.bytes().to_vec()
}

fn set_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_ne_bytes());
}

fn set_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_ne_bytes());
}

fn header_err(e: SegmentError) -> HeaderError {
    match e {
        SegmentError::Header { source, .. } => source,
        other => panic!("expected a header error, got {other:?}"),
    }
}

fn field_err(e: SegmentError) -> &'static str {
    match header_err(e) {
        HeaderError::Field { field, .. } => field,
        other => panic!("expected a field error, got {other:?}"),
    }
}

#[test]
fn corrupt_and_foreign_objects_are_refused_with_named_errors() {
    if is_child() {
        return;
    }
    let g = LeakGuard::new("t-corrupt");
    let ok = good_bytes(&g);
    let total = ok.len() as u64;
    let dir = SegmentDir::Shm;
    // Writes `bytes` as a new object with `mode`; returns its name.
    let object = |tag: &str, bytes: &[u8], mode: u32| {
        let n = g.user_name(tag);
        write_object(&dir.object_path(&n), bytes, mode);
        n
    };
    let attach = |n: &SegmentName| {
        let e = Segment::attach(n, &dir).unwrap_err();
        assert!(e.to_string().contains(n.as_str()), "unnamed error: {e}");
        // `ls` sees the same refusal (it shows unpublished headers as version 0).
        match read_header(n, &dir) {
            Err(h) => assert_eq!(format!("{h:?}"), format!("{e:?}")),
            Ok(h) => assert!(
                h.version == 0
                    && matches!(
                        e,
                        SegmentError::Header {
                            source: HeaderError::Unpublished,
                            ..
                        }
                    ),
                "read_header accepted what attach refused: {e}"
            ),
        }
        e
    };
    let modified = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = ok.clone();
        f(&mut b);
        b
    };

    // The unmodified copy attaches: every refusal below is due to the one change.
    let n = object("copy", &ok, 0o600);
    assert!(Segment::attach(&n, &dir).is_ok());

    let n = object("empty", &[], 0o600);
    assert!(matches!(
        header_err(attach(&n)),
        HeaderError::TooSmall { size: 0, .. }
    ));
    let n = object("trunc", &ok[..50], 0o600);
    assert!(matches!(
        header_err(attach(&n)),
        HeaderError::TooSmall {
            size: 50,
            header: 128
        }
    ));
    let n = object("magic", &modified(&|b| b[8] = b'X'), 0o600);
    assert_eq!(header_err(attach(&n)), HeaderError::Magic);
    let n = object("lead", &modified(&|b| b[0] = b'X'), 0o600);
    assert_eq!(header_err(attach(&n)), HeaderError::Magic);
    let n = object("unpub", &modified(&|b| set_u32(b, 16, 0)), 0o600);
    assert_eq!(header_err(attach(&n)), HeaderError::Unpublished);
    let n = object("version", &modified(&|b| set_u32(b, 16, 2)), 0o600);
    assert_eq!(
        header_err(attach(&n)),
        HeaderError::Version {
            found: 2,
            supported: shmframe_ipc::FORMAT_VERSION
        }
    );
    let n = object("hdrlen", &modified(&|b| set_u32(b, 20, 64)), 0o600);
    assert_eq!(field_err(attach(&n)), "header_len");
    // total_len lies: the object is shorter than the header says, or longer.
    let n = object("short", &ok[..ok.len() - 64], 0o600);
    assert_eq!(field_err(attach(&n)), "total_len");
    let n = object("long", &modified(&|b| set_u64(b, 24, total - 64)), 0o600);
    assert_eq!(field_err(attach(&n)), "total_len");
    // Payload offset past the end, misaligned, inside the header; payload past the end.
    let past = (total + 4096).next_multiple_of(64);
    let n = object("offpast", &modified(&|b| set_u64(b, 32, past)), 0o600);
    assert_eq!(field_err(attach(&n)), "payload_offset");
    let n = object("offalign", &modified(&|b| set_u64(b, 32, 130)), 0o600);
    assert_eq!(field_err(attach(&n)), "payload_offset");
    let n = object("offhdr", &modified(&|b| set_u64(b, 32, 64)), 0o600);
    assert_eq!(field_err(attach(&n)), "payload_offset");
    let n = object("lenpast", &modified(&|b| set_u64(b, 40, total)), 0o600);
    assert_eq!(field_err(attach(&n)), "payload_len");
    let n = object(
        "lenwrap",
        &modified(&|b| set_u64(b, 40, u64::MAX - 8)),
        0o600,
    );
    assert_eq!(field_err(attach(&n)), "payload_len");
    let n = object("kind", &modified(&|b| set_u32(b, 52, 77)), 0o600);
    assert_eq!(field_err(attach(&n)), "kind");
    let n = object("flags", &modified(&|b| set_u32(b, 72, 0x80)), 0o600);
    assert_eq!(field_err(attach(&n)), "flags");
    // Not a shmframe object at all: random bytes.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let noise: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let n = object("noise", &noise, 0o600);
    assert_eq!(header_err(attach(&n)), HeaderError::Magic);

    // Mode 0644: other users could read it. Refused, and `remove` leaves it alone.
    let n = object("mode", &ok, 0o644);
    let e = attach(&n);
    assert!(matches!(e, SegmentError::Foreign { .. }), "{e}");
    assert!(e.to_string().contains("644"), "{e}");
    assert!(matches!(
        remove(&n, &dir),
        Err(SegmentError::Foreign { .. })
    ));
    assert!(dir.object_path(&n).exists());

    // A symbolic link to a valid segment is not followed, nor removed through.
    let target = object("target", &ok, 0o600);
    assert!(Segment::attach(&target, &dir).is_ok());
    let link = g.user_name("link");
    std::os::unix::fs::symlink(dir.object_path(&target), dir.object_path(&link)).unwrap();
    let e = attach(&link);
    assert!(matches!(e, SegmentError::Foreign { .. }), "{e}");
    assert!(e.to_string().contains("symbolic link"), "{e}");
    assert!(matches!(
        remove(&link, &dir),
        Err(SegmentError::Foreign { .. })
    ));
    assert!(dir.object_path(&target).exists());

    // A directory under a shmframe name.
    let d = g.user_name("dir");
    std::fs::create_dir(dir.object_path(&d)).unwrap();
    let e = attach(&d);
    assert!(matches!(e, SegmentError::Foreign { .. }), "{e}");
    std::fs::remove_dir(dir.object_path(&d)).unwrap();

    // `ls` lists every one of them with its refusal instead of failing.
    let listed = sweep::list(&dir).unwrap();
    let mine: Vec<_> = listed
        .iter()
        .filter(|i| i.name.as_str().contains(&std::process::id().to_string()))
        .collect();
    assert!(mine.iter().filter(|i| i.header.is_err()).count() >= 18);
    g.remove_tracked();
}

/// Child: makes a FIFO called `<name>` in `<dir>` (`-` for /dev/shm) and attaches it: a
/// blocking open would hang here forever (the parent's watchdog would kill us).
#[test]
fn child_fifo_attach() {
    let Some(arg) = child_arg("fifo_attach") else {
        return;
    };
    let (d, name) = arg.split_once('|').unwrap();
    let dir = if d == "-" {
        SegmentDir::Shm
    } else {
        SegmentDir::Path(d.into())
    };
    let name = SegmentName::parse(name).unwrap();
    let path = dir.object_path(&name);
    nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let e = Segment::attach(&name, &dir).unwrap_err();
    let ok = matches!(&e, SegmentError::Foreign { reason, .. } if reason.contains("regular"));
    let listed = sweep::list(&dir).map(|l| l.len());
    let removed = remove(&name, &dir);
    let _ = std::fs::remove_file(&path);
    child_exit(
        ok && listed.is_ok() && removed.is_err(),
        format_args!("attach: {e:?}; list: {listed:?}; remove: {removed:?}"),
    )
}

#[test]
fn a_fifo_under_a_segment_name_does_not_block() {
    if is_child() {
        return;
    }
    let g = LeakGuard::new("t-fifo");
    let tmp = TempDir::new("fifo");
    for d in ["-", tmp.path().to_str().unwrap()] {
        let name = g.user_name("fifo");
        if d != "-" {
            g.track(Path::new(d).join(name.as_str()));
        }
        run_child(
            crate::test_name!(child_fifo_attach),
            "fifo_attach",
            &format!("{d}|{name}"),
        )
        .assert_success("attaching a FIFO");
    }
}
