//! Named shared-memory segments: create (owner, read-write), attach read-only, attach
//! read-write (a worker filling its rows of an output), and unlink.
//!
//! A segment's life:
//!
//! 1. **create**: the owner calls [`SegmentMut::create`]: `shm_open(O_CREAT|O_EXCL, 0600)`,
//!    `ftruncate`, `posix_fallocate` (so a full `/dev/shm` is an error now, not a SIGBUS
//!    later), map read-write, write the header with version 0.
//! 2. **fill**: the owner (and, for job outputs, workers through [`SegmentRw`], each on
//!    disjoint rows) write the payload.
//! 3. **publish**: [`SegmentMut::publish`] stores the header version (the sync point) and
//!    turns the owner's mapping read-only; the result is a [`Segment`] that unlinks the object
//!    when dropped (unless the segment is persistent).
//! 4. **attach read-only**: any process calls [`Segment::attach`]: `PROT_READ` mapping, header
//!    validated against the object's real size. A [`Segment`] has no method that writes:
//!
//!    ```compile_fail
//!    fn scribble(seg: &mut shmframe_ipc::Segment) {
//!        seg.payload_mut()[0] = 1; // no such method: read-only handles cannot write
//!    }
//!    ```
//! 5. **unlink**: the owner's handle unlinks on drop; [`remove`] unlinks by name (`shmframe rm`),
//!    and [`crate::sweep::sweep_stale`] removes segments whose owner died.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use memmap2::{Mmap, MmapMut, MmapOptions};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use crate::error::SegmentError;
use crate::header::{
    self, ContentKind, FLAG_PERSISTENT, HEADER_LEN, HeaderError, PAYLOAD_ALIGN, SegmentHeader,
};
use crate::name::SegmentName;
use crate::process::ProcessId;

/// The environment variable that names the segment directory (see [`SegmentDir::from_env`]).
pub const DIR_ENV: &str = "SHMFRAME_DIR";

/// Where segments live.
///
/// `/dev/shm` (POSIX shared memory, a tmpfs) by default. Any other directory works the same way
/// (`MAP_SHARED` mappings of one file, the page cache shared by every process): use a
/// disk-backed directory when `/dev/shm` is too small. There is never a silent fallback from
/// one to the other: the user chooses.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum SegmentDir {
    /// POSIX shared memory (`shm_open`), i.e. `/dev/shm` on Linux.
    #[default]
    Shm,
    /// Plain files in this directory.
    Path(PathBuf),
}

impl SegmentDir {
    /// `SHMFRAME_DIR` if set and not `/dev/shm`, else [`SegmentDir::Shm`].
    pub fn from_env() -> Self {
        match std::env::var_os(DIR_ENV) {
            Some(p) if !p.is_empty() => SegmentDir::from_path(PathBuf::from(p)),
            _ => SegmentDir::Shm,
        }
    }

    /// [`SegmentDir::Shm`] for `/dev/shm`, else [`SegmentDir::Path`].
    pub fn from_path(p: PathBuf) -> Self {
        if p == Path::new("/dev/shm") || p == Path::new("/dev/shm/") {
            SegmentDir::Shm
        } else {
            SegmentDir::Path(p)
        }
    }

    /// The directory path (`/dev/shm` for [`SegmentDir::Shm`]).
    pub fn path(&self) -> &Path {
        match self {
            SegmentDir::Shm => Path::new("/dev/shm"),
            SegmentDir::Path(p) => p,
        }
    }

    /// The path of a segment's object: what pyarrow's `memory_map` opens.
    pub fn object_path(&self, name: &SegmentName) -> PathBuf {
        self.path().join(name.as_str())
    }

    fn open(&self, name: &SegmentName, flags: OFlag, mode: u32) -> Result<OwnedFd, Errno> {
        match self {
            SegmentDir::Shm => nix::sys::mman::shm_open(
                name.shm_path().as_str(),
                flags,
                Mode::from_bits_truncate(mode),
            ),
            SegmentDir::Path(dir) => {
                let mut o = std::fs::OpenOptions::new();
                o.read(true)
                    .write(flags.contains(OFlag::O_RDWR))
                    .custom_flags(
                        (OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | (flags & OFlag::O_NONBLOCK)).bits(),
                    )
                    .mode(mode);
                if flags.contains(OFlag::O_CREAT) {
                    o.create_new(true);
                }
                o.open(dir.join(name.as_str()))
                    .map(OwnedFd::from)
                    .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
            }
        }
    }

    /// Unlinks a segment's object.
    pub(crate) fn unlink(&self, name: &SegmentName) -> Result<(), Errno> {
        match self {
            SegmentDir::Shm => nix::sys::mman::shm_unlink(name.shm_path().as_str()),
            SegmentDir::Path(dir) => std::fs::remove_file(dir.join(name.as_str()))
                .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))),
        }
    }

    /// Free bytes in the directory's file system.
    pub fn available_bytes(&self) -> Option<u64> {
        let st = nix::sys::statvfs::statvfs(self.path()).ok()?;
        Some(st.blocks_available() as u64 * st.fragment_size() as u64)
    }

    /// Size of the directory's file system (free or not).
    pub fn total_bytes(&self) -> Option<u64> {
        let st = nix::sys::statvfs::statvfs(self.path()).ok()?;
        Some(st.blocks() as u64 * st.fragment_size() as u64)
    }
}

/// Unlinks a segment when dropped: the owner's guarantee that nothing leaks. Only in the
/// process that created it: a child made by `fork()` inherits the guard with its copy of
/// the memory, and its exit must not remove the parent's segments.
#[derive(Debug)]
struct UnlinkGuard {
    name: SegmentName,
    dir: SegmentDir,
    armed: bool,
    /// The creating process.
    pid: u32,
}

impl Drop for UnlinkGuard {
    fn drop(&mut self) {
        if self.armed && std::process::id() == self.pid {
            match self.dir.unlink(&self.name) {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(e) => tracing::warn!(segment = %self.name, error = %e, "unlink failed"),
            }
        }
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Checks that an opened object is ours to map: a regular file of our user, mode 0600.
fn check_object(name: &SegmentName, file: &File) -> Result<u64, SegmentError> {
    let meta = file
        .metadata()
        .map_err(|e| SegmentError::io(name, "fstat", e))?;
    if !meta.file_type().is_file() {
        return Err(SegmentError::Foreign {
            name: name.clone(),
            reason: "not a regular file".into(),
        });
    }
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me {
        return Err(SegmentError::Foreign {
            name: name.clone(),
            reason: format!("owned by uid {}, not by this user (uid {me})", meta.uid()),
        });
    }
    if meta.mode() & 0o077 != 0 {
        return Err(SegmentError::Foreign {
            name: name.clone(),
            reason: format!(
                "mode {:o} lets other users in (shmframe creates 0600)",
                meta.mode() & 0o777
            ),
        });
    }
    Ok(meta.len())
}

/// Objects at least this large are reserved by several threads at once, each a share of at
/// least this many bytes: on tmpfs, `fallocate` allocates and zeroes every page, about 0.45 s
/// per GiB on one core of the reference machine; two threads took it to about half.
pub const PARALLEL_BYTES: usize = 64 << 20;

/// How many threads to split `len` bytes of page work over: one per [`PARALLEL_BYTES`], at
/// most the available cores (and 8).
pub fn parallel_share(len: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (len / PARALLEL_BYTES).clamp(1, cores.min(8))
}

/// Reserves `len` bytes for a fresh object so that touching its pages can never SIGBUS.
/// A large object is reserved in [`parallel_share`] disjoint ranges by scoped threads,
/// joined before this returns.
pub(crate) fn reserve(file: &File, len: u64, label: &str) -> Result<(), (Errno, &'static str)> {
    let len_off: libc::off_t = len.try_into().map_err(|_| (Errno::EFBIG, "ftruncate"))?;
    nix::unistd::ftruncate(file, len_off).map_err(|e| (e, "ftruncate"))?;
    let threads = parallel_share(len as usize) as u64;
    let allocated = if threads > 1 {
        let step = len.div_ceil(threads).next_multiple_of(4096) as libc::off_t;
        std::thread::scope(|s| {
            let parts: Vec<_> = (0..threads as libc::off_t)
                .map(|i| i * step)
                .filter(|&lo| lo < len_off)
                .map(|lo| {
                    s.spawn(move || nix::fcntl::posix_fallocate(file, lo, step.min(len_off - lo)))
                })
                .collect();
            parts
                .into_iter()
                .map(|h| h.join().unwrap_or(Err(Errno::EIO)))
                .find(Result::is_err)
                .unwrap_or(Ok(()))
        })
    } else {
        nix::fcntl::posix_fallocate(file, 0, len_off)
    };
    match allocated {
        Ok(()) => Ok(()),
        // File systems without fallocate: the object is sized; say so once in the log.
        Err(Errno::EOPNOTSUPP) => {
            tracing::warn!(
                segment = label,
                "posix_fallocate unsupported: space not reserved"
            );
            Ok(())
        }
        Err(e) => Err((e, "posix_fallocate")),
    }
}

/// Options for creating a segment.
#[derive(Debug, Clone)]
pub struct CreateOptions {
    /// Where the segment lives.
    pub dir: SegmentDir,
    /// What it holds.
    pub kind: ContentKind,
    /// Owned by nobody: survives its creator (user names only).
    pub persistent: bool,
}

impl Default for CreateOptions {
    fn default() -> Self {
        CreateOptions {
            dir: SegmentDir::Shm,
            kind: ContentKind::Raw,
            persistent: false,
        }
    }
}

/// A segment being created and filled by its owner: mapped read-write, header unpublished.
///
/// Dropping it unlinks the object, persistent or not, so a failed fill never leaks; after
/// [`SegmentMut::publish`], the returned [`Segment`] unlinks it on drop unless it is persistent.
#[derive(Debug)]
pub struct SegmentMut {
    map: MmapMut,
    header: SegmentHeader,
    guard: UnlinkGuard,
}

impl SegmentMut {
    /// Creates a segment with room for `payload_len` payload bytes.
    pub fn create(
        name: SegmentName,
        payload_len: usize,
        opts: &CreateOptions,
    ) -> Result<Self, SegmentError> {
        let payload_offset = HEADER_LEN.next_multiple_of(PAYLOAD_ALIGN);
        let total = payload_offset
            .checked_add(payload_len)
            .filter(|t| *t <= isize::MAX as usize)
            .ok_or(SegmentError::TooLarge {
                name: name.clone(),
                requested: payload_len as u64,
            })?;
        let fd = opts
            .dir
            .open(&name, OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR, 0o600)
            .map_err(|e| match e {
                Errno::EEXIST => SegmentError::Exists {
                    name: name.clone(),
                    dir: opts.dir.path().to_path_buf(),
                },
                e => SegmentError::os(&name, "create", e),
            })?;
        // From here on the guard unlinks the object on every error path.
        let guard = UnlinkGuard {
            name: name.clone(),
            dir: opts.dir.clone(),
            armed: true,
            pid: std::process::id(),
        };
        let file = File::from(fd);
        if let Err((e, op)) = reserve(&file, total as u64, name.as_str()) {
            return Err(match e {
                Errno::ENOSPC | Errno::EFBIG | Errno::ENOMEM => SegmentError::NoSpace {
                    name: name.clone(),
                    dir: opts.dir.path().to_path_buf(),
                    requested: total as u64,
                    available: opts.dir.available_bytes().unwrap_or(0),
                },
                e => SegmentError::os(&name, op, e),
            });
        }
        // SAFETY: the object was created by us with O_EXCL, mode 0600 and sized with
        // ftruncate + fallocate to `total` bytes; nobody else can open it without our uid,
        // and we never shrink it, so the mapping cannot SIGBUS on a truncated page.
        let mut map = unsafe { MmapOptions::new().len(total).map_mut(&file) }
            .map_err(|e| SegmentError::io(&name, "mmap", e))?;
        let me = ProcessId::current();
        let header = SegmentHeader {
            version: 0,
            total_len: total as u64,
            payload_offset: payload_offset as u64,
            payload_len: payload_len as u64,
            owner_pid: if opts.persistent { 0 } else { me.pid },
            owner_start: if opts.persistent { 0 } else { me.start_ticks },
            created_ns: now_ns(),
            kind: opts.kind,
            flags: if opts.persistent { FLAG_PERSISTENT } else { 0 },
        };
        header.write_unpublished(&mut map);
        Ok(SegmentMut { map, header, guard })
    }

    /// The segment's name.
    pub fn name(&self) -> &SegmentName {
        &self.guard.name
    }

    /// The segment's directory.
    pub fn dir(&self) -> &SegmentDir {
        &self.guard.dir
    }

    /// The header as written (version 0 until published).
    pub fn header(&self) -> &SegmentHeader {
        &self.header
    }

    /// The payload, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (o, l) = (
            self.header.payload_offset as usize,
            self.header.payload_len as usize,
        );
        &mut self.map[o..o + l]
    }

    /// The payload.
    pub fn payload(&self) -> &[u8] {
        let (o, l) = (
            self.header.payload_offset as usize,
            self.header.payload_len as usize,
        );
        &self.map[o..o + l]
    }

    /// The whole object (header included), read-only.
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// Maps the pages of the absolute byte range `range` writable in one call
    /// (`MADV_POPULATE_WRITE`) rather than one fault per page at the first write. Several
    /// threads may populate disjoint ranges at once. Best effort: kernels before 5.14 ignore
    /// it, and the pages then fault in as they are written.
    pub fn populate_write(&self, range: std::ops::Range<usize>) {
        populate(&self.map, range);
    }

    /// The whole object after the header, writable; offsets are absolute within the object.
    /// The first [`HEADER_LEN`] bytes stay out of reach.
    pub fn body_mut(&mut self) -> (&mut [u8], usize) {
        let o = self.header.payload_offset as usize;
        (&mut self.map[o..], o)
    }

    /// Publishes the header (the sync point) and turns this mapping read-only.
    pub fn publish(mut self) -> Result<Segment, SegmentError> {
        self.map
            .flush_async()
            .map_err(|e| SegmentError::io(self.name(), "msync", e))?;
        header::publish(&mut self.map);
        self.header.version = header::FORMAT_VERSION;
        let SegmentMut {
            map,
            header,
            mut guard,
        } = self;
        if header.is_persistent() {
            guard.armed = false;
        }
        let map = map
            .make_read_only()
            .map_err(|e| SegmentError::io(&guard.name, "mprotect", e))?;
        Ok(Segment {
            map,
            file: None,
            header,
            name: guard.name.clone(),
            dir: guard.dir.clone(),
            _guard: Some(guard),
        })
    }

    /// Publishes the header but keeps the mapping writable (control segments, whose atomics
    /// keep changing for the owner's whole life). Readers see the version from now on.
    pub fn publish_in_place(&mut self) {
        header::publish(&mut self.map);
        self.header.version = header::FORMAT_VERSION;
    }

    /// The start address of the mapping (for atomics placed inside it by [`crate::shared`]).
    pub(crate) fn as_mut_ptr(&mut self) -> *mut u8 {
        self.map.as_mut_ptr()
    }
}

/// A read-only handle on a published segment.
///
/// Either attached by another process ([`Segment::attach`]), or the owner's own handle after
/// [`SegmentMut::publish`], which unlinks the object when dropped (unless persistent).
#[derive(Debug)]
pub struct Segment {
    map: Mmap,
    file: Option<File>,
    header: SegmentHeader,
    name: SegmentName,
    dir: SegmentDir,
    _guard: Option<UnlinkGuard>,
}

impl Segment {
    /// Attaches a published segment read-only (`PROT_READ`), validating its header against the
    /// object's real size.
    pub fn attach(name: &SegmentName, dir: &SegmentDir) -> Result<Self, SegmentError> {
        let (file, size) = open_existing(name, dir, false)?;
        // SAFETY: a read-only shared mapping of an object we just validated as ours (uid,
        // mode 0600, regular file). shmframe never shrinks a segment after creation; a hostile
        // process of the same user could, and would cause SIGBUS in this process only: the
        // same trust boundary as any file mapping (see ripgrep's mmap note).
        let map = unsafe { MmapOptions::new().len(size as usize).map(&file) }
            .map_err(|e| SegmentError::io(name, "mmap", e))?;
        let version = header::load_version(&map);
        let header =
            SegmentHeader::decode(&map, version, size).map_err(|source| SegmentError::Header {
                name: name.clone(),
                source,
            })?;
        if version == 0 {
            return Err(SegmentError::Header {
                name: name.clone(),
                source: HeaderError::Unpublished,
            });
        }
        Ok(Segment {
            map,
            file: Some(file),
            header,
            name: name.clone(),
            dir: dir.clone(),
            _guard: None,
        })
    }

    /// The segment's name.
    pub fn name(&self) -> &SegmentName {
        &self.name
    }

    /// The segment's directory.
    pub fn dir(&self) -> &SegmentDir {
        &self.dir
    }

    /// The object's path (what pyarrow's `memory_map` opens).
    pub fn path(&self) -> PathBuf {
        self.dir.object_path(&self.name)
    }

    /// The validated header.
    pub fn header(&self) -> &SegmentHeader {
        &self.header
    }

    /// The payload.
    pub fn payload(&self) -> &[u8] {
        let (o, l) = (
            self.header.payload_offset as usize,
            self.header.payload_len as usize,
        );
        &self.map[o..o + l]
    }

    /// The whole object, header included.
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// Whether the object has been unlinked since it was attached (its link count is 0): a
    /// worker's cue to drop a cached attachment so the memory can be freed.
    pub fn is_unlinked(&self) -> bool {
        self.file
            .as_ref()
            .is_some_and(|f| f.metadata().map(|m| m.nlink() == 0).unwrap_or(true))
    }

    /// Maps the pages of the absolute byte range `range` in one call (`MADV_POPULATE_READ`)
    /// instead of one fault per page on first read. Best effort (kernels before 5.14 ignore
    /// it).
    pub fn populate_read(&self, range: std::ops::Range<usize>) {
        crate::fork::populate(&self.map, range, memmap2::Advice::PopulateRead);
    }

    /// Whether this handle unlinks the object when dropped.
    pub fn is_owner(&self) -> bool {
        self._guard.as_ref().is_some_and(|g| g.armed)
    }

    /// Takes the owner's published handle back to a writable, unpublished segment of the same
    /// name and size, for the owner to fill again (a recycled job output: its pages are
    /// already allocated, which is the point). From this call until the next
    /// [`SegmentMut::publish`], [`Segment::attach`] refuses it as unpublished. Processes that
    /// attached it earlier keep their mapping and see the new bytes as they are written.
    ///
    /// Fails with [`SegmentError::NotOwner`] for a handle that does not own the object (an
    /// attachment, or a persistent segment); if turning the mapping writable fails, the
    /// segment is dropped (and so unlinked) and the error returned.
    pub fn into_writable(self) -> Result<SegmentMut, SegmentError> {
        if !self.is_owner() {
            return Err(SegmentError::NotOwner {
                name: self.name.clone(),
            });
        }
        let Segment {
            map,
            header,
            _guard,
            ..
        } = self;
        let guard = _guard.expect("owner handle has a guard");
        let mut map = map
            .make_mut()
            .map_err(|e| SegmentError::io(&guard.name, "mprotect", e))?;
        header::unpublish(&mut map);
        Ok(SegmentMut {
            map,
            header: SegmentHeader {
                version: 0,
                ..header
            },
            guard,
        })
    }
}

impl AsRef<[u8]> for Segment {
    fn as_ref(&self) -> &[u8] {
        &self.map
    }
}

fn open_existing(
    name: &SegmentName,
    dir: &SegmentDir,
    writable: bool,
) -> Result<(File, u64), SegmentError> {
    // O_NONBLOCK: opening a FIFO planted under a segment name would otherwise block until a
    // writer appears (hanging `attach`, `ls`, `gc`); with it the open returns and
    // `check_object` refuses the non-regular file. It changes nothing for regular files.
    let flags = if writable {
        OFlag::O_RDWR
    } else {
        OFlag::O_RDONLY
    } | OFlag::O_NONBLOCK;
    let fd = dir.open(name, flags, 0).map_err(|e| match e {
        Errno::ENOENT => SegmentError::NotFound {
            name: name.clone(),
            dir: dir.path().to_path_buf(),
        },
        Errno::ELOOP => SegmentError::Foreign {
            name: name.clone(),
            reason: "is a symbolic link".into(),
        },
        Errno::EACCES | Errno::EPERM => SegmentError::Foreign {
            name: name.clone(),
            reason: "permission denied (owned by another user?)".into(),
        },
        e => SegmentError::os(name, "open", e),
    })?;
    let file = File::from(fd);
    let size = check_object(name, &file)?;
    if size < HEADER_LEN as u64 {
        return Err(SegmentError::Header {
            name: name.clone(),
            source: HeaderError::TooSmall {
                size,
                header: HEADER_LEN as u64,
            },
        });
    }
    if size > isize::MAX as u64 {
        return Err(SegmentError::TooLarge {
            name: name.clone(),
            requested: size,
        });
    }
    Ok((file, size))
}

/// A read-write attachment of a segment owned by another process: a worker writing its rows
/// of a job's output, or the control segment. Never unlinks.
#[derive(Debug)]
pub struct SegmentRw {
    map: MmapMut,
    file: File,
    header: SegmentHeader,
    name: SegmentName,
}

impl SegmentRw {
    /// Attaches read-write. The header must be valid; it may be published (control segments)
    /// or not (outputs still being filled).
    pub fn attach(name: &SegmentName, dir: &SegmentDir) -> Result<Self, SegmentError> {
        let (file, size) = open_existing(name, dir, true)?;
        // SAFETY: as in `Segment::attach`; writes go to disjoint ranges assigned by the job
        // protocol (see docs/ARCHITECTURE.md), and atomics for shared words.
        let map = unsafe { MmapOptions::new().len(size as usize).map_mut(&file) }
            .map_err(|e| SegmentError::io(name, "mmap", e))?;
        let version = header::load_version(&map);
        let header =
            SegmentHeader::decode(&map, version, size).map_err(|source| SegmentError::Header {
                name: name.clone(),
                source,
            })?;
        Ok(SegmentRw {
            map,
            file,
            header,
            name: name.clone(),
        })
    }

    /// The segment's name.
    pub fn name(&self) -> &SegmentName {
        &self.name
    }

    /// The validated header.
    pub fn header(&self) -> &SegmentHeader {
        &self.header
    }

    /// The whole object after the header, writable; offsets are absolute within the object.
    pub fn body_mut(&mut self) -> (&mut [u8], usize) {
        let o = self.header.payload_offset as usize;
        (&mut self.map[o..], o)
    }

    /// The whole object, header included.
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// The start address of the mapping (for atomics placed inside it by [`crate::shared`]).
    pub(crate) fn as_mut_ptr(&mut self) -> *mut u8 {
        self.map.as_mut_ptr()
    }

    /// Whether the object has been unlinked (its link count is 0): a worker's cue to drop a
    /// cached attachment.
    pub fn is_unlinked(&self) -> bool {
        self.file.metadata().map(|m| m.nlink() == 0).unwrap_or(true)
    }

    /// Maps the pages of the absolute byte range `range` writable in one call
    /// (`MADV_POPULATE_WRITE`) instead of one fault per page when they are first written.
    /// Best effort: kernels before 5.14 ignore it.
    pub fn populate_write(&self, range: std::ops::Range<usize>) {
        populate(&self.map, range);
    }
}

/// `MADV_POPULATE_WRITE` over the pages of `range` in `map` (best effort).
fn populate(map: &MmapMut, range: std::ops::Range<usize>) {
    let page = 4096;
    let start = range.start / page * page;
    let end = range.end.min(map.len());
    if end > start {
        let _ = map.advise_range(memmap2::Advice::PopulateWrite, start, end - start);
    }
}

/// Removes a segment by name (`shmframe rm`). Refuses objects that are not shmframe segments
/// of this user.
pub fn remove(name: &SegmentName, dir: &SegmentDir) -> Result<(), SegmentError> {
    // Validate before unlinking so `rm` never removes someone else's object.
    let (_file, _size) = open_existing(name, dir, false)?;
    dir.unlink(name).map_err(|e| match e {
        Errno::ENOENT => SegmentError::NotFound {
            name: name.clone(),
            dir: dir.path().to_path_buf(),
        },
        e => SegmentError::os(name, "unlink", e),
    })
}

/// Reads and validates the header of a segment without mapping its payload (for `ls`).
/// Unpublished headers are returned with `version == 0`.
pub fn read_header(name: &SegmentName, dir: &SegmentDir) -> Result<SegmentHeader, SegmentError> {
    let (file, size) = open_existing(name, dir, false)?;
    // SAFETY: read-only mapping of the header page of a validated object of ours, at least
    // HEADER_LEN bytes long (checked by open_existing).
    let map = unsafe { MmapOptions::new().len(HEADER_LEN).map(&file) }
        .map_err(|e| SegmentError::io(name, "mmap", e))?;
    let version = header::load_version(&map);
    SegmentHeader::decode(&map, version, size).map_err(|source| SegmentError::Header {
        name: name.clone(),
        source,
    })
}
