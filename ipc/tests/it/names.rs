//! Segment names: validation, duplicates, missing segments.

use shmframe_ipc::{
    CreateOptions, MAX_LABEL_LEN, MAX_NAME_LEN, NameError, NameOwner, Segment, SegmentDir,
    SegmentError, SegmentMut, SegmentName, SharedRegion, read_header, remove,
};

use super::harness::{LeakGuard, assert_unpublished, is_child};

#[test]
fn invalid_names_are_refused_with_the_reason() {
    if is_child() {
        return;
    }
    for bad in ["1x", "a/b", "a.b", "a b", "../etc", "x\0y", "é", "-a", "_a"] {
        let e = SegmentName::user(bad).unwrap_err();
        assert!(matches!(e, NameError::Characters { .. }), "{bad:?}: {e}");
        assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
    }
    for bad in [String::new(), "a".repeat(MAX_NAME_LEN)] {
        let e = SegmentName::user(&bad).unwrap_err();
        assert!(matches!(e, NameError::Length { .. }), "{e}");
    }
    assert!(matches!(
        SegmentName::owned(&"x".repeat(MAX_LABEL_LEN + 1)),
        Err(NameError::Length { .. })
    ));
    assert!(matches!(
        SegmentName::owned("a/b"),
        Err(NameError::Characters { .. })
    ));
    for (input, want) in [
        ("psm_1234", "prefix"),
        ("/dev/shm/shmframe.x", "prefix"),
        ("shmframe.12.x.3", "malformed"),
        ("shmframe.12.34", "malformed"),
        ("shmframe.12.34.5.", "malformed"),
        ("shmframe.12.34.5.a/b", "malformed"),
        ("shmframe.a/../b", "characters"),
    ] {
        let e = SegmentName::parse(input).unwrap_err();
        let kind = match e {
            NameError::Prefix { .. } => "prefix",
            NameError::Malformed { .. } => "malformed",
            NameError::Characters { .. } => "characters",
            _ => "other",
        };
        assert_eq!(kind, want, "{input:?}: {e}");
    }
    // Valid names map to one object directly in the directory: no path can escape it.
    let u = SegmentName::user("data_v2-x").unwrap();
    assert_eq!(u.owner(), NameOwner::Nobody);
    assert_eq!(
        SegmentDir::Shm.object_path(&u),
        std::path::Path::new("/dev/shm/shmframe.data_v2-x")
    );
    assert_eq!(SegmentName::from_user_input("shm:data_v2-x").unwrap(), u);
    assert_eq!(
        SegmentName::from_user_input("/shmframe.data_v2-x").unwrap(),
        u
    );
    let o = SegmentName::owned("lbl").unwrap();
    assert_eq!(SegmentName::parse(o.as_str()).unwrap(), o);
    assert!(matches!(o.owner(), NameOwner::Process(p) if p.pid == std::process::id()));
}

#[test]
fn duplicate_names_are_exists_errors() {
    if is_child() {
        return;
    }
    let g = LeakGuard::new("t-dup");
    let name = g.name();
    let a = SegmentMut::create(name.clone(), 10, &CreateOptions::default()).unwrap();
    let e = SegmentMut::create(name.clone(), 10, &CreateOptions::default()).unwrap_err();
    assert!(matches!(e, SegmentError::Exists { .. }), "{e}");
    assert!(e.to_string().contains(name.as_str()), "{e}");
    // The failed create did not unlink the first one's object.
    assert!(SegmentDir::Shm.object_path(&name).exists());
    let e = SharedRegion::create(name.clone(), 64, &SegmentDir::Shm).unwrap_err();
    assert!(matches!(e, SegmentError::Exists { .. }), "{e}");
    // While unpublished, readers refuse it.
    assert_unpublished(&name, &SegmentDir::Shm);
    let published = a.publish().unwrap();
    assert!(Segment::attach(&name, &SegmentDir::Shm).is_ok());
    drop(published);
    // User names too.
    let user = g.user_name("dup");
    let opts = CreateOptions {
        persistent: true,
        ..Default::default()
    };
    let u = SegmentMut::create(user.clone(), 1, &opts).unwrap();
    let e = SegmentMut::create(user.clone(), 1, &opts).unwrap_err();
    assert!(matches!(e, SegmentError::Exists { .. }), "{e}");
    // Persistent and published: its handle's drop leaves it in place.
    drop(u.publish().unwrap());
    assert!(SegmentDir::Shm.object_path(&user).exists());
    remove(&user, &SegmentDir::Shm).unwrap();
}

#[test]
fn missing_segments_are_not_found_errors() {
    if is_child() {
        return;
    }
    let g = LeakGuard::new("t-missing");
    let name = g.name();
    let not_found = |e: SegmentError| {
        assert!(matches!(e, SegmentError::NotFound { .. }), "{e}");
        assert!(e.to_string().contains(name.as_str()), "{e}");
        assert!(e.to_string().contains("/dev/shm"), "{e}");
    };
    not_found(Segment::attach(&name, &SegmentDir::Shm).unwrap_err());
    not_found(SharedRegion::attach(&name, &SegmentDir::Shm).unwrap_err());
    not_found(read_header(&name, &SegmentDir::Shm).unwrap_err());
    not_found(remove(&name, &SegmentDir::Shm).unwrap_err());
    // Gone after the owner dropped it.
    let s = SegmentMut::create(name.clone(), 1, &CreateOptions::default())
        .unwrap()
        .publish()
        .unwrap();
    assert!(Segment::attach(&name, &SegmentDir::Shm).is_ok());
    drop(s);
    not_found(Segment::attach(&name, &SegmentDir::Shm).unwrap_err());
}
