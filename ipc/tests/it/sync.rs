//! Futex semaphores and events between processes, through a control segment.

use std::time::{Duration, Instant};

use shmframe_ipc::sync::{Event, Semaphore};
use shmframe_ipc::{SegmentDir, SegmentName, SharedRegion, SyncError};

use super::harness::{CHILD_LIMIT, ChildProc, LeakGuard, child_arg, child_exit, is_child};

/// Word offsets in the control segment of these tests.
const SEM: usize = 0;
const READY: usize = 4;
const EVENT: usize = 8;
const DONE: usize = 12;

fn attach(name: &str) -> SharedRegion {
    SharedRegion::attach(&SegmentName::parse(name).unwrap(), &SegmentDir::Shm).unwrap()
}

/// Child: attaches the control segment `<name>`, sleeps 50 ms, posts the semaphore.
#[test]
fn child_sem_poster() {
    let Some(name) = child_arg("sem_poster") else {
        return;
    };
    let region = attach(&name);
    std::thread::sleep(Duration::from_millis(50));
    Semaphore::new(&region.u32s(SEM, 1)[0], "sem").post();
    child_exit(true, "")
}

#[test]
fn semaphore_posted_by_another_process() {
    if is_child() {
        return;
    }
    let g = LeakGuard::new("t-sem");
    let region = SharedRegion::create(g.name(), 4096, &SegmentDir::Shm).unwrap();
    let sem = Semaphore::new(&region.u32s(SEM, 1)[0], "sem");
    let child = ChildProc::test(
        crate::test_name!(child_sem_poster),
        "sem_poster",
        region.name().as_str(),
    );
    let t = Instant::now();
    sem.wait_timeout(Duration::from_secs(5))
        .expect("the child posts within 5 s");
    assert!(
        t.elapsed() >= Duration::from_millis(40),
        "woken before the post: {:?}",
        t.elapsed()
    );
    child.wait(CHILD_LIMIT).assert_success("poster");
    assert_eq!(sem.value(), 0);
    // Nobody posts now: the wait ends with a timeout, on time.
    let t = Instant::now();
    let e = sem.wait_timeout(Duration::from_millis(100)).unwrap_err();
    let waited = t.elapsed();
    assert!(matches!(e, SyncError::Timeout { what: "sem", .. }), "{e}");
    assert!(
        waited >= Duration::from_millis(100) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    assert!(e.to_string().contains("timed out"), "{e}");
}

/// Child: reads the event's sequence, says it is ready, waits for the broadcast, reports.
#[test]
fn child_event_waiter() {
    let Some(name) = child_arg("event_waiter") else {
        return;
    };
    let region = attach(&name);
    let ev = Event::new(&region.u32s(EVENT, 1)[0], "event");
    let seen = ev.current();
    Semaphore::new(&region.u32s(READY, 1)[0], "ready").post();
    let got = ev.wait_change(seen, Duration::from_secs(10));
    Semaphore::new(&region.u32s(DONE, 1)[0], "done").post();
    child_exit(got == Ok(seen.wrapping_add(1)), format_args!("{got:?}"))
}

#[test]
fn event_broadcast_wakes_every_process() {
    if is_child() {
        return;
    }
    const WAITERS: usize = 3;
    let g = LeakGuard::new("t-event");
    let region = SharedRegion::create(g.name(), 4096, &SegmentDir::Shm).unwrap();
    let ready = Semaphore::new(&region.u32s(READY, 1)[0], "ready");
    let done = Semaphore::new(&region.u32s(DONE, 1)[0], "done");
    let ev = Event::new(&region.u32s(EVENT, 1)[0], "event");
    let children: Vec<_> = (0..WAITERS)
        .map(|_| {
            ChildProc::test(
                crate::test_name!(child_event_waiter),
                "event_waiter",
                region.name().as_str(),
            )
        })
        .collect();
    for _ in 0..WAITERS {
        ready
            .wait_timeout(Duration::from_secs(20))
            .expect("every waiter gets ready");
    }
    // Nothing is done before the broadcast.
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(done.value(), 0, "a waiter woke without the event");
    let seq = ev.notify_all();
    assert_eq!(seq, 1);
    for _ in 0..WAITERS {
        done.wait_timeout(Duration::from_secs(5))
            .expect("one notify_all wakes every process");
    }
    for c in children {
        c.wait(CHILD_LIMIT).assert_success("event waiter");
    }
    // Without a notify, a wait times out.
    let e = ev.wait_change(seq, Duration::from_millis(50)).unwrap_err();
    assert!(matches!(e, SyncError::Timeout { what: "event", .. }), "{e}");
}

/// The control segment's atomics are shared: a counter bumped by several processes adds up.
#[test]
fn child_counter_bumper() {
    let Some(name) = child_arg("counter_bumper") else {
        return;
    };
    let region = attach(&name);
    let c = &region.u64s(64, 1)[0];
    for _ in 0..10_000 {
        c.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }
    child_exit(true, "")
}

#[test]
fn atomics_are_shared_between_processes() {
    if is_child() {
        return;
    }
    let g = LeakGuard::new("t-atomics");
    let region = SharedRegion::create(g.name(), 4096, &SegmentDir::Shm).unwrap();
    let kids: Vec<_> = (0..2)
        .map(|_| {
            ChildProc::test(
                crate::test_name!(child_counter_bumper),
                "counter_bumper",
                region.name().as_str(),
            )
        })
        .collect();
    let c = &region.u64s(64, 1)[0];
    for _ in 0..10_000 {
        c.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }
    for k in kids {
        k.wait(CHILD_LIMIT).assert_success("bumper");
    }
    assert_eq!(c.load(std::sync::atomic::Ordering::Acquire), 30_000);
    // A missing control segment is a typed error for the attacher.
    drop(region);
    let name = g.name();
    let e = SharedRegion::attach(&name, &SegmentDir::Shm).unwrap_err();
    assert!(
        matches!(e, shmframe_ipc::SegmentError::NotFound { .. }),
        "{e}"
    );
}
