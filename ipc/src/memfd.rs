//! Anonymous segments (`memfd_create`), sealed after filling.
//!
//! For buffers that need no name and must not change once handed out: a job's query vector,
//! small per-job parameter blocks. After filling, [`AnonSegmentMut::seal`] drops the writable
//! mapping and adds `F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL`: from then on no
//! process, the creator included, can change, shrink or grow it. Other processes of the same
//! user open it through `/proc/<creator pid>/fd/<fd>` ([`SealedSegment::open_proc`]), which
//! requires the seals to be present. It disappears when the last fd and mapping go away:
//! nothing to unlink, nothing to leak.

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use memmap2::{Mmap, MmapMut, MmapOptions};
use nix::fcntl::{FcntlArg, SealFlag, fcntl};
use nix::sys::memfd::{MFdFlags, memfd_create};

use crate::error::SegmentError;
use crate::header::{self, ContentKind, HEADER_LEN, HeaderError, PAYLOAD_ALIGN, SegmentHeader};
use crate::process::ProcessId;

fn required_seals() -> SealFlag {
    SealFlag::F_SEAL_WRITE | SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_SEAL
}

/// An anonymous segment being filled.
#[derive(Debug)]
pub struct AnonSegmentMut {
    file: File,
    map: MmapMut,
    header: SegmentHeader,
    label: String,
}

impl AnonSegmentMut {
    /// Creates an anonymous segment with `payload_len` bytes of payload.
    pub fn create(label: &str, payload_len: usize) -> Result<Self, SegmentError> {
        let fd: OwnedFd = memfd_create(
            format!("shmframe.{label}").as_str(),
            MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
        )
        .map_err(|e| SegmentError::os(label, "memfd_create", e))?;
        let file = File::from(fd);
        let payload_offset = HEADER_LEN.next_multiple_of(PAYLOAD_ALIGN);
        let total = payload_offset + payload_len;
        crate::segment::reserve(&file, total as u64, label)
            .map_err(|(e, op)| SegmentError::os(label, op, e))?;
        // SAFETY: a private memfd we created and sized; only we hold it until sealed.
        let mut map = unsafe { MmapOptions::new().len(total).map_mut(&file) }
            .map_err(|e| SegmentError::io(label, "mmap", e))?;
        let me = ProcessId::current();
        let header = SegmentHeader {
            version: 0,
            total_len: total as u64,
            payload_offset: payload_offset as u64,
            payload_len: payload_len as u64,
            owner_pid: me.pid,
            owner_start: me.start_ticks,
            created_ns: 0,
            kind: ContentKind::Raw,
            flags: 0,
        };
        header.write_unpublished(&mut map);
        Ok(AnonSegmentMut {
            file,
            map,
            header,
            label: label.to_string(),
        })
    }

    /// The payload, writable until sealed.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let o = self.header.payload_offset as usize;
        &mut self.map[o..]
    }

    /// Publishes the header, drops the writable mapping, seals the memfd and maps it
    /// read-only.
    pub fn seal(mut self) -> Result<SealedSegment, SegmentError> {
        header::publish(&mut self.map);
        self.header.version = header::FORMAT_VERSION;
        let AnonSegmentMut {
            file,
            map,
            header,
            label,
        } = self;
        // F_SEAL_WRITE fails with EBUSY while a writable shared mapping exists.
        drop(map);
        fcntl(&file, FcntlArg::F_ADD_SEALS(required_seals()))
            .map_err(|e| SegmentError::os(&label, "F_ADD_SEALS", e))?;
        // SAFETY: the memfd is sealed against writes, shrinking and growing: the mapping can
        // neither change under us nor lose pages.
        let map = unsafe { MmapOptions::new().map(&file) }
            .map_err(|e| SegmentError::io(&label, "mmap", e))?;
        Ok(SealedSegment {
            file,
            map,
            header,
            label,
        })
    }
}

/// A sealed, read-only anonymous segment.
#[derive(Debug)]
pub struct SealedSegment {
    file: File,
    map: Mmap,
    header: SegmentHeader,
    label: String,
}

impl SealedSegment {
    /// The path through which another process of this user opens it.
    pub fn proc_path(&self) -> PathBuf {
        PathBuf::from(format!(
            "/proc/{}/fd/{}",
            std::process::id(),
            self.file.as_raw_fd()
        ))
    }

    /// Opens a sealed segment of another process by its `/proc/PID/fd/N` path, refusing it
    /// unless all seals are in place and its header is valid.
    pub fn open_proc(path: &Path) -> Result<Self, SegmentError> {
        let label = path.display().to_string();
        let file = File::open(path).map_err(|e| SegmentError::io(&label, "open", e))?;
        let seals = fcntl(&file, FcntlArg::F_GET_SEALS)
            .map_err(|e| SegmentError::os(&label, "F_GET_SEALS", e))?;
        let seals = SealFlag::from_bits_truncate(seals);
        if !seals.contains(required_seals()) {
            return Err(SegmentError::Os {
                name: label,
                op: "check seals",
                source: std::io::Error::other("anonymous segment is not sealed"),
            });
        }
        let size = file
            .metadata()
            .map_err(|e| SegmentError::io(&label, "fstat", e))?
            .len();
        // SAFETY: sealed against write, shrink and grow (checked above): contents are fixed.
        let map = unsafe { MmapOptions::new().map(&file) }
            .map_err(|e| SegmentError::io(&label, "mmap", e))?;
        let version = header::load_version(&map);
        let header = SegmentHeader::decode(&map, version, size).and_then(|h| {
            if version == 0 {
                Err(HeaderError::Unpublished)
            } else {
                Ok(h)
            }
        });
        let header = header.map_err(|source| SegmentError::Os {
            name: label.clone(),
            op: "validate header",
            source: std::io::Error::other(source.to_string()),
        })?;
        Ok(SealedSegment {
            file,
            map,
            header,
            label,
        })
    }

    /// The payload.
    pub fn payload(&self) -> &[u8] {
        let o = self.header.payload_offset as usize;
        &self.map[o..o + self.header.payload_len as usize]
    }

    /// The label given at creation.
    pub fn label(&self) -> &str {
        &self.label
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_segments_cannot_be_written() {
        let mut s = AnonSegmentMut::create("t", 100).unwrap();
        s.payload_mut()[..3].copy_from_slice(&[1, 2, 3]);
        let sealed = s.seal().unwrap();
        assert_eq!(&sealed.payload()[..3], &[1, 2, 3]);
        // Writing through a fresh fd, or mapping it writable, both fail.
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(sealed.proc_path())
            .unwrap();
        use std::io::Write;
        assert!((&f).write_all(b"x").is_err());
        // SAFETY: test only; the call is expected to fail.
        let w = unsafe { MmapOptions::new().map_mut(&f) };
        assert!(w.is_err(), "writable mapping of a sealed memfd must fail");
        let again = SealedSegment::open_proc(&sealed.proc_path()).unwrap();
        assert_eq!(&again.payload()[..3], &[1, 2, 3]);
    }
}
