//! A full `/dev/shm` (and a full segment directory) is a clear error at create time, with
//! nothing left behind: never a SIGBUS later.
//!
//! The child runs in a private mount namespace (`unshare -m --propagation private`) on an
//! 8 MiB tmpfs mounted over `/dev/shm` (and over a plain directory), so the machine's real
//! `/dev/shm` is untouched. Needs root (or the capability to mount); skipped otherwise.

use std::process::Command;
use std::time::Duration;

use shmframe_ipc::{CreateOptions, SegmentDir, SegmentError, SegmentMut, SegmentName, human_bytes};

use super::harness::{ChildProc, ROLE_ENV, TempDir, child_arg, child_exit, is_child};

const TMPFS: u64 = 8 << 20;
const BIG: usize = 64 << 20;

/// Checks one directory: the big create fails with a helpful `NoSpace`, a small one works.
fn check_dir(dir: &SegmentDir) -> Result<(), String> {
    let opts = CreateOptions {
        dir: dir.clone(),
        ..Default::default()
    };
    let name = SegmentName::owned("big").unwrap();
    let e = match SegmentMut::create(name.clone(), BIG, &opts) {
        Ok(_) => return Err(format!("{}: 64 MiB fit in 8 MiB", dir.path().display())),
        Err(e) => e,
    };
    let msg = e.to_string();
    eprintln!("{msg}");
    let SegmentError::NoSpace {
        requested,
        available,
        ..
    } = e
    else {
        return Err(format!("expected NoSpace, got {e:?}"));
    };
    let want = [
        name.as_str().to_string(),
        dir.path().display().to_string(),
        human_bytes(requested),
        format!("{requested} bytes"),
        format!("{} free", human_bytes(available)),
        "remount,size=".to_string(),
        "--shm-size".to_string(),
        "SHMFRAME_DIR".to_string(),
    ];
    for w in &want {
        if !msg.contains(w.as_str()) {
            return Err(format!("message lacks {w:?}: {msg}"));
        }
    }
    if requested < BIG as u64 || available > TMPFS {
        return Err(format!("requested {requested}, available {available}"));
    }
    // The space itself is fine for what fits.
    let small = SegmentMut::create(SegmentName::owned("small").unwrap(), 1 << 20, &opts)
        .map_err(|e| format!("1 MiB in 8 MiB: {e}"))?;
    drop(small.publish().map_err(|e| e.to_string())?);
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.file_name())
        .collect();
    if !left.is_empty() {
        return Err(format!("left in {}: {left:?}", dir.path().display()));
    }
    Ok(())
}

/// Child, inside the namespace: `/dev/shm` and `<dir>` are 8 MiB tmpfs mounts.
#[test]
fn child_nospace() {
    let Some(dir) = child_arg("nospace") else {
        return;
    };
    let r = check_dir(&SegmentDir::Shm).and_then(|()| check_dir(&SegmentDir::Path(dir.into())));
    child_exit(r.is_ok(), format_args!("{r:?}"))
}

/// Runs `sh -c script` in a private mount namespace; `None` (with the reason printed) when
/// namespaces are not available here.
fn in_private_namespace(script: &str, role_arg: &str) -> Option<super::harness::Finished> {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: mounting a small tmpfs needs root");
        return None;
    }
    let mut probe = Command::new("unshare");
    probe.args(["-m", "--propagation", "private", "true"]);
    match ChildProc::spawn(probe, "unshare probe") {
        Err(e) => {
            eprintln!("skipped: cannot run unshare: {e}");
            return None;
        }
        Ok(c) => {
            let done = c.wait(Duration::from_secs(20));
            if !done.status.success() {
                eprintln!(
                    "skipped: unshare -m fails here ({:?}): {}",
                    done.status,
                    done.stderr.trim()
                );
                return None;
            }
        }
    }
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-c", script])
        .env(ROLE_ENV, format!("nospace:{role_arg}"));
    let done = ChildProc::spawn(cmd, "child in a private mount namespace")
        .unwrap()
        .wait(Duration::from_secs(60));
    if done.status.code() == Some(77) {
        eprintln!("skipped: cannot mount a tmpfs here: {}", done.stderr.trim());
        return None;
    }
    Some(done)
}

#[test]
fn full_dev_shm_is_a_clear_error_at_create() {
    if is_child() {
        return;
    }
    let tmp = TempDir::new("nospace");
    let dir = tmp.path().display().to_string();
    let exe = std::env::current_exe().unwrap();
    // Paths are ours (temp dir, test binary) but quote them for the shell anyway.
    let q = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let script = format!(
        "mount -t tmpfs -o size=8m,mode=1777 tmpfs /dev/shm || exit 77; \
         mount -t tmpfs -o size=8m,mode=0700 tmpfs {d} || exit 77; \
         exec {exe} --exact {test} --nocapture --test-threads=1",
        d = q(&dir),
        exe = q(&exe.display().to_string()),
        test = crate::test_name!(child_nospace),
    );
    let Some(done) = in_private_namespace(&script, &dir) else {
        return;
    };
    done.assert_success("the child did not get the clear NoSpace error");
    for l in done
        .stderr
        .lines()
        .filter(|l| l.contains("not enough space"))
    {
        eprintln!("{l}");
    }
    // The tmpfs mounts died with the namespace: the real directory is untouched and empty.
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}
