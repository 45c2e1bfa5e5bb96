//! Segments in a plain directory (`SegmentDir::Path`) behave as in `/dev/shm`.

use std::os::unix::fs::MetadataExt;

use shmframe_ipc::arrow::{read_ipc_file, write_batches};
use shmframe_ipc::{
    CreateOptions, Segment, SegmentDir, SegmentError, SegmentMut, SegmentName, SharedRegion,
    remove, sweep,
};

use super::harness::{
    LeakGuard, TempDir, child_arg, child_exit, is_child, run_child, sample_batch,
};

/// Child: attaches `<name>` in the directory `<dir>` and compares with the sample batch.
#[test]
fn child_dir_reader() {
    let Some(arg) = child_arg("dir_reader") else {
        return;
    };
    let (dir, name) = arg.split_once('|').unwrap();
    let dir = SegmentDir::Path(dir.into());
    let seg = Segment::attach(&SegmentName::parse(name).unwrap(), &dir).unwrap();
    let file = read_ipc_file(seg, name).unwrap();
    child_exit(
        file.batches.len() == 1 && file.batches[0] == sample_batch(),
        format_args!("{:?}", file.batches),
    )
}

#[test]
fn plain_directory_segments_work_the_same() {
    if is_child() {
        return;
    }
    let tmp = TempDir::new("segdir");
    let dir = SegmentDir::Path(tmp.path().to_path_buf());
    assert_eq!(SegmentDir::from_path(tmp.path().into()), dir);
    assert_eq!(SegmentDir::from_path("/dev/shm".into()), SegmentDir::Shm);
    let g = LeakGuard::in_dir("t-dir", dir.clone());
    let opts = CreateOptions {
        dir: dir.clone(),
        ..Default::default()
    };
    let batch = sample_batch();
    let owner = write_batches(
        g.name(),
        &opts,
        &batch.schema(),
        std::slice::from_ref(&batch),
    )
    .unwrap();
    let path = owner.path();
    assert!(path.starts_with(tmp.path()), "{path:?}");
    let meta = std::fs::symlink_metadata(&path).unwrap();
    assert!(meta.is_file());
    assert_eq!(meta.mode() & 0o777, 0o600);
    run_child(
        crate::test_name!(child_dir_reader),
        "dir_reader",
        &format!("{}|{}", tmp.path().display(), owner.name()),
    )
    .assert_success("the child read other values");
    // Same typed errors as in /dev/shm.
    let e = SegmentMut::create(owner.name().clone(), 1, &opts).unwrap_err();
    assert!(matches!(e, SegmentError::Exists { .. }), "{e}");
    assert!(
        Segment::attach(owner.name(), &SegmentDir::Shm).is_err(),
        "found in /dev/shm"
    );
    let listed = sweep::list(&dir).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(&listed[0].name, owner.name());
    assert!(listed[0].owner_alive && listed[0].header.is_ok());
    // A control segment in the directory.
    let region = SharedRegion::create(g.name(), 64, &dir).unwrap();
    let other = SharedRegion::attach(region.name(), &dir).unwrap();
    region.u32s(0, 1)[0].store(5, std::sync::atomic::Ordering::Release);
    assert_eq!(
        other.u32s(0, 1)[0].load(std::sync::atomic::Ordering::Acquire),
        5
    );
    drop((other, region));
    // Drop: the file is gone, attaching is NotFound.
    let name = owner.name().clone();
    drop(owner);
    assert!(!path.exists(), "dropping the owner removes the file");
    let e = Segment::attach(&name, &dir).unwrap_err();
    assert!(matches!(e, SegmentError::NotFound { .. }), "{e}");
    assert!(
        e.to_string().contains(&tmp.path().display().to_string()),
        "{e}"
    );
    // A persistent user-named file stays until removed.
    let user = SegmentName::user(&format!("dirtest{}", std::process::id())).unwrap();
    g.track(dir.object_path(&user));
    let keep = CreateOptions {
        persistent: true,
        ..opts
    };
    drop(
        SegmentMut::create(user.clone(), 8, &keep)
            .unwrap()
            .publish()
            .unwrap(),
    );
    assert!(dir.object_path(&user).exists());
    remove(&user, &dir).unwrap();
    assert!(!dir.object_path(&user).exists());
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}
