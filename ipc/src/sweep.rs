//! Listing segments and removing the ones whose owner died.

use crate::error::SegmentError;
use crate::header::SegmentHeader;
use crate::name::{NameOwner, PREFIX, SegmentName};
use crate::process::ProcessId;
use crate::segment::{SegmentDir, read_header};

/// What `ls` shows of one segment.
#[derive(Debug)]
pub struct SegmentInfo {
    /// Its name.
    pub name: SegmentName,
    /// Size of the object in bytes.
    pub size: u64,
    /// Who the name says owns it.
    pub owner: NameOwner,
    /// Whether that owner is alive (`true` for segments owned by nobody).
    pub owner_alive: bool,
    /// The header, or why it was refused.
    pub header: Result<SegmentHeader, String>,
}

/// Lists shmframe segments in `dir` (objects named `shmframe.*`; others are ignored).
pub fn list(dir: &SegmentDir) -> Result<Vec<SegmentInfo>, SegmentError> {
    let rd = std::fs::read_dir(dir.path())
        .map_err(|e| SegmentError::io(dir.path().display(), "read_dir", e))?;
    let mut out = Vec::new();
    for entry in rd.flatten() {
        let fname = entry.file_name();
        let Some(s) = fname.to_str() else { continue };
        if !s.starts_with(PREFIX) {
            continue;
        }
        let Ok(name) = SegmentName::parse(s) else {
            continue;
        };
        let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
        let owner = name.owner();
        let owner_alive = match owner {
            NameOwner::Process(p) => p.is_alive(),
            NameOwner::Nobody => true,
        };
        let header = read_header(&name, dir).map_err(|e| e.to_string());
        out.push(SegmentInfo {
            name,
            size,
            owner,
            owner_alive,
            header,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Removes every segment in `dir` whose owning process is dead. Never touches a segment of a
/// live process or one owned by nobody (`shmframe load`). Returns what it removed.
pub fn sweep_stale(dir: &SegmentDir) -> Result<Vec<SegmentInfo>, SegmentError> {
    let mut removed = Vec::new();
    for info in list(dir)? {
        if info.owner_alive {
            continue;
        }
        match dir.unlink(&info.name) {
            Ok(()) | Err(nix::errno::Errno::ENOENT) => removed.push(info),
            Err(e) => return Err(SegmentError::os(&info.name, "unlink", e)),
        }
    }
    Ok(removed)
}

/// Removes every segment in `dir` whose name says `owner` made it: the same pid *and* the
/// same start time, so a later process that reuses the pid keeps its segments. Segments of
/// other processes, user-named ones and other files are never touched, and nothing is removed
/// while `owner` runs ([`ProcessId::is_running`]: a process that has begun to exit counts as
/// gone). Returns the names it removed (a segment that vanished meanwhile is not an error).
///
/// This is what the engine's janitor runs when its coordinator died. It reads names only: no
/// header is mapped, so the caller holds no mapping of what it removes.
pub fn sweep_owner(dir: &SegmentDir, owner: &ProcessId) -> Result<Vec<SegmentName>, SegmentError> {
    if owner.is_running() {
        return Ok(Vec::new());
    }
    let rd = std::fs::read_dir(dir.path())
        .map_err(|e| SegmentError::io(dir.path().display(), "read_dir", e))?;
    let mut removed = Vec::new();
    for entry in rd.flatten() {
        let fname = entry.file_name();
        let Some(s) = fname.to_str() else { continue };
        let Ok(name) = SegmentName::parse(s) else {
            continue;
        };
        if name.owner() != NameOwner::Process(*owner) {
            continue;
        }
        match dir.unlink(&name) {
            Ok(()) => removed.push(name),
            Err(nix::errno::Errno::ENOENT) => {}
            Err(e) => return Err(SegmentError::os(&name, "unlink", e)),
        }
    }
    removed.sort();
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system temp dir, removed on drop.
    struct Dir(std::path::PathBuf);

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn touch(dir: &Dir, name: &str) {
        std::fs::write(dir.0.join(name), b"x").unwrap();
    }

    fn names(dir: &Dir) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&dir.0)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn sweep_owner_removes_exactly_a_dead_owners_segments() {
        let me = ProcessId::current();
        let dir = Dir(std::env::temp_dir().join(format!("shmframe-sweep-owner-{}", me.pid)));
        let _ = std::fs::remove_dir_all(&dir.0);
        std::fs::create_dir_all(&dir.0).unwrap();
        let seg = SegmentDir::Path(dir.0.clone());
        // A dead owner: this pid with another start time (a process that used the pid before).
        let dead = ProcessId {
            pid: me.pid,
            start_ticks: me.start_ticks + 1,
        };
        let other_dead = ProcessId {
            pid: me.pid,
            start_ticks: me.start_ticks + 2,
        };
        let of = |p: &ProcessId, rest: &str| format!("shmframe.{}.{}.{rest}", p.pid, p.start_ticks);
        let dead_a = of(&dead, "0.ctl");
        let dead_b = of(&dead, "7");
        let mine = of(&me, "1.out");
        let others = of(&other_dead, "2.out");
        for n in [&dead_a, &dead_b, &mine, &others] {
            touch(&dir, n);
        }
        touch(&dir, "shmframe.keepme");
        touch(&dir, "unrelated");

        let removed = sweep_owner(&seg, &dead).unwrap();
        let removed: Vec<&str> = removed.iter().map(SegmentName::as_str).collect();
        assert_eq!(removed, vec![dead_a.as_str(), dead_b.as_str()]);
        let mut left = vec![
            mine.clone(),
            others.clone(),
            "shmframe.keepme".into(),
            "unrelated".into(),
        ];
        left.sort();
        assert_eq!(names(&dir), left);

        // A running owner keeps everything, even its own segments.
        assert!(sweep_owner(&seg, &me).unwrap().is_empty());
        assert_eq!(names(&dir), left);
        // Nothing left of the dead owner: a second sweep is a no-op.
        assert!(sweep_owner(&seg, &dead).unwrap().is_empty());
    }
}
