//! A read-only attachment really is read-only: a write through it kills the writer.

use std::os::unix::process::ExitStatusExt;

use shmframe_ipc::arrow::write_batches;
use shmframe_ipc::{CreateOptions, Segment, SegmentDir, SegmentName};

use super::harness::{LeakGuard, child_arg, is_child, run_child, sample_batch};

/// Child: attaches `<name>` read-only and writes into it. Never returns: SIGSEGV.
#[test]
fn child_write_read_only() {
    let Some(name) = child_arg("write_read_only") else {
        return;
    };
    // No core file for the expected crash.
    let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0);
    let seg = Segment::attach(&SegmentName::parse(&name).unwrap(), &SegmentDir::Shm).unwrap();
    assert!(seg.bytes().len() > 200);
    let p = seg.bytes().as_ptr() as *mut u8;
    eprintln!("ATTACHED, writing");
    // SAFETY: deliberately unsound: `p` points into a PROT_READ mapping, so this write is
    // expected to fault and kill this child process with SIGSEGV (the parent checks that).
    unsafe { std::ptr::write_volatile(p.add(200), 1) };
    eprintln!("the write went through");
    std::process::exit(0)
}

#[test]
fn writing_a_read_only_mapping_is_sigsegv() {
    if is_child() {
        return;
    }
    let g = LeakGuard::new("t-ro");
    let batch = sample_batch();
    let owner = write_batches(
        g.name(),
        &CreateOptions::default(),
        &batch.schema(),
        &[batch],
    )
    .unwrap();
    let before = owner.bytes().to_vec();
    let done = run_child(
        crate::test_name!(child_write_read_only),
        "write_read_only",
        owner.name().as_str(),
    );
    assert!(
        done.stderr.contains("ATTACHED"),
        "the child failed before the write: {done:?}"
    );
    assert_eq!(
        done.status.signal(),
        Some(libc::SIGSEGV),
        "expected SIGSEGV: {done:?}"
    );
    assert_eq!(owner.bytes(), &before[..], "the owner's bytes changed");
}
