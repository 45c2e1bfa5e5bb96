//! `sweep_stale` removes the segments of dead owners, and only those.
//!
//! This sweeps the real `/dev/shm`, as `shmframe gc` does: besides the test's own segments it
//! may remove other stale segments (whose owner is dead), never a live or persistent one.

use shmframe_ipc::sweep::{list, sweep_stale};
use shmframe_ipc::{
    CreateOptions, NameOwner, ProcessId, SegmentDir, SegmentMut, SegmentName, remove,
};

use super::harness::{LeakGuard, child_arg, is_child, run_child};

/// Child: creates two owned segments (one published, one left unpublished as if it died
/// while filling), prints their names, and exits without dropping them.
#[test]
fn child_leaker() {
    let Some(label) = child_arg("leaker") else {
        return;
    };
    let opts = CreateOptions::default();
    let a = SegmentMut::create(SegmentName::owned(&label).unwrap(), 8, &opts).unwrap();
    let b = SegmentMut::create(SegmentName::owned(&label).unwrap(), 8, &opts).unwrap();
    let a = a.publish().unwrap();
    println!("\nLEAKED {}", a.name());
    println!("LEAKED {}", b.name());
    std::mem::forget(a);
    std::mem::forget(b);
    std::process::exit(0)
}

#[test]
fn sweep_removes_only_segments_of_dead_owners() {
    if is_child() {
        return;
    }
    let g = LeakGuard::new("t-sweep");
    let dir = SegmentDir::Shm;
    // The dead child's segments carry its pid: the guard tracks them by name.
    let done = run_child(crate::test_name!(child_leaker), "leaker", "t-sweep-dead");
    // (libtest prints "test NAME ... " on the child's stdout, maybe on the same line.)
    let leaked: Vec<SegmentName> = done
        .stdout
        .lines()
        .filter_map(|l| l.split_once("LEAKED ").map(|(_, n)| n.trim()))
        .map(|n| SegmentName::parse(n).unwrap())
        .collect();
    for n in &leaked {
        g.track(dir.object_path(n));
    }
    done.assert_success("leaker");
    assert_eq!(leaked.len(), 2, "{done:?}");
    for n in &leaked {
        assert!(dir.object_path(n).exists(), "{n} not left by the child");
    }
    // A name of this very pid with another start time: a recycled pid, not us.
    let me = ProcessId::current();
    let recycled = SegmentName::parse(&format!(
        "shmframe.{}.{}.0.t-sweep",
        me.pid,
        me.start_ticks + 1
    ))
    .unwrap();
    g.track(dir.object_path(&recycled));
    std::mem::forget(SegmentMut::create(recycled.clone(), 8, &CreateOptions::default()).unwrap());
    // Ours (alive) and a persistent user-named one: both must survive.
    let alive = SegmentMut::create(g.name(), 8, &CreateOptions::default()).unwrap();
    let persistent = SegmentName::user(&format!("sweeptest{}", me.pid)).unwrap();
    g.track(dir.object_path(&persistent));
    let keep = CreateOptions {
        persistent: true,
        ..Default::default()
    };
    drop(
        SegmentMut::create(persistent.clone(), 8, &keep)
            .unwrap()
            .publish()
            .unwrap(),
    );
    assert!(dir.object_path(&persistent).exists());

    let listed = list(&dir).unwrap();
    let info = |n: &SegmentName| {
        listed
            .iter()
            .find(|i| &i.name == n)
            .unwrap_or_else(|| panic!("{n} not listed"))
    };
    for n in leaked.iter().chain([&recycled]) {
        let i = info(n);
        assert!(!i.owner_alive, "{n} listed as alive");
        assert!(matches!(i.owner, NameOwner::Process(_)));
    }
    assert_eq!(info(&leaked[0]).header.as_ref().unwrap().version, 1);
    assert_eq!(info(&leaked[1]).header.as_ref().unwrap().version, 0);
    assert!(info(alive.name()).owner_alive);
    let p = info(&persistent);
    assert!(p.owner_alive && p.owner == NameOwner::Nobody);
    assert!(p.header.as_ref().unwrap().is_persistent());

    let removed = sweep_stale(&dir).unwrap();
    for n in leaked.iter().chain([&recycled]) {
        assert!(removed.iter().any(|i| &i.name == n), "{n} not removed");
        assert!(!dir.object_path(n).exists(), "{n} still there");
    }
    for i in &removed {
        assert!(!i.owner_alive, "removed {} of a live owner", i.name);
    }
    assert!(
        dir.object_path(alive.name()).exists(),
        "a live owner's segment was removed"
    );
    assert!(
        dir.object_path(&persistent).exists(),
        "a persistent segment was removed"
    );
    remove(&persistent, &dir).unwrap();
    drop(alive);
}
