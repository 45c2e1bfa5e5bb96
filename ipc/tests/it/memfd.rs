//! Anonymous sealed segments shared through `/proc/<pid>/fd/<n>`.

use std::io::Write;
use std::path::Path;

use shmframe_ipc::{AnonSegmentMut, SealedSegment, SegmentError};

use super::harness::{child_arg, child_exit, is_child, run_child};

const LEN: usize = 10_000;

fn pattern() -> Vec<u8> {
    (0..LEN).map(|i| (i * 7 % 251) as u8).collect()
}

/// Child: opens the parent's sealed segment `<path>` and compares its payload.
#[test]
fn child_memfd_reader() {
    let Some(path) = child_arg("memfd_reader") else {
        return;
    };
    let seg = SealedSegment::open_proc(Path::new(&path)).unwrap();
    let ok = seg.payload() == &pattern()[..];
    child_exit(
        ok,
        format_args!("payload differs ({} bytes)", seg.payload().len()),
    )
}

/// Child: tries every way to change the parent's sealed segment `<path>`; all must fail.
#[test]
fn child_memfd_writer() {
    let Some(path) = child_arg("memfd_writer") else {
        return;
    };
    let mut changed = Vec::new();
    match std::fs::OpenOptions::new().write(true).open(&path) {
        Err(e) => eprintln!("open for write refused: {e}"),
        Ok(mut f) => {
            if f.write_all(b"scribble").and_then(|_| f.flush()).is_ok() {
                changed.push("write");
            }
            if f.set_len(1).is_ok() {
                changed.push("shrink");
            }
            if f.set_len(1 << 20).is_ok() {
                changed.push("grow");
            }
        }
    }
    if let Ok(f) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
    {
        // SAFETY: a shared writable mapping of the sealed memfd; the kernel must refuse it
        // (F_SEAL_WRITE), so no memory is ever mapped or written here.
        if unsafe { memmap2::MmapOptions::new().map_mut(&f) }.is_ok() {
            changed.push("writable mmap");
        }
    }
    child_exit(changed.is_empty(), format_args!("succeeded: {changed:?}"))
}

#[test]
fn sealed_memfd_is_read_by_a_child_and_cannot_be_changed() {
    if is_child() {
        return;
    }
    let mut s = AnonSegmentMut::create("t-memfd", LEN).unwrap();
    s.payload_mut().copy_from_slice(&pattern());
    let sealed = s.seal().unwrap();
    let path = sealed.proc_path();
    assert!(
        path.starts_with(format!("/proc/{}/fd/", std::process::id())),
        "{path:?}"
    );
    let p = path.to_str().unwrap();
    run_child(crate::test_name!(child_memfd_reader), "memfd_reader", p)
        .assert_success("reading the sealed segment");
    run_child(crate::test_name!(child_memfd_writer), "memfd_writer", p)
        .assert_success("changing the sealed segment");
    assert_eq!(sealed.payload(), &pattern()[..], "the payload changed");
    assert_eq!(sealed.label(), "t-memfd");
}

#[test]
fn unsealed_or_missing_memfds_are_refused() {
    if is_child() {
        return;
    }
    // A memfd without seals, even with a valid-looking content.
    let fd = nix::sys::memfd::memfd_create(
        "shmframe.t-unsealed",
        nix::sys::memfd::MFdFlags::MFD_CLOEXEC,
    )
    .unwrap();
    let f = std::fs::File::from(fd);
    (&f).write_all(&[0u8; 4096]).unwrap();
    let path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&f));
    let e = SealedSegment::open_proc(Path::new(&path)).unwrap_err();
    assert!(e.to_string().contains("not sealed"), "{e}");
    // No such fd.
    let e = SealedSegment::open_proc(Path::new("/proc/self/fd/987654")).unwrap_err();
    assert!(matches!(e, SegmentError::Os { op: "open", .. }), "{e}");
}
