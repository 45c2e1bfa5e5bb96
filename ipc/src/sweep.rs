//! Listing segments and removing the ones whose owner died.

use crate::error::SegmentError;
use crate::header::SegmentHeader;
use crate::name::{NameOwner, PREFIX, SegmentName};
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
