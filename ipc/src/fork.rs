//! Forking worker processes, and mapping plain files read-only.
//!
//! **The fork rule.** A child of a multi-threaded parent may only call async-signal-safe
//! functions until it execs (another thread may have held a lock at the moment of the fork:
//! the allocator's, stdout's, a logger's). shmframe workers run ordinary Rust code, so
//! [`fork_worker`] refuses unless the calling process has exactly one thread; hosts that
//! already run threads use the engine's spawn start method (fork + immediate exec, which is
//! safe) instead.

use std::path::{Path, PathBuf};

use memmap2::{Mmap, MmapOptions};
use nix::sys::signal::Signal;
use nix::unistd::{ForkResult, Pid};

use crate::error::SegmentError;
use crate::process::{die_with_parent, thread_count};

/// Why a worker could not be forked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ForkError {
    /// The calling process has other threads: forking would be unsafe.
    #[error(
        "refusing to fork: this process has {threads} threads, and a forked child of a \
         multi-threaded process may deadlock on a lock another thread held. Build the engine \
         before starting threads, or use the spawn start method"
    )]
    Threaded {
        /// The number of threads seen.
        threads: usize,
    },
    /// `fork` itself failed.
    #[error("fork failed: {0}")]
    Os(#[from] nix::errno::Errno),
}

/// Forks a child that runs `child` and then exits with its return code via `_exit` (no
/// destructors or atexit handlers of the parent's state run in the child). A panic in `child`
/// exits with code 101. The child gets `SIGKILL` when the parent dies (`PR_SET_PDEATHSIG`).
///
/// Refuses with [`ForkError::Threaded`] unless the caller is single-threaded.
pub fn fork_worker<F: FnOnce() -> i32>(child: F) -> Result<Pid, ForkError> {
    // A scoped helper thread (a parallel segment fill) that was just joined may still be
    // counted for a moment while the kernel finishes its exit: look again for up to 50 ms.
    let mut threads = thread_count();
    for _ in 0..50 {
        if threads == Some(1) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
        threads = thread_count();
    }
    if threads != Some(1) {
        return Err(ForkError::Threaded {
            threads: threads.unwrap_or(0),
        });
    }
    let parent = std::process::id();
    // SAFETY: the process is single-threaded (checked just above, and nothing in between
    // starts a thread), so the child inherits no lock held by another thread and may run
    // ordinary code. The child never returns into the caller: it leaves through `_exit`.
    match unsafe { nix::unistd::fork() }? {
        ForkResult::Parent { child } => Ok(child),
        ForkResult::Child => {
            if !die_with_parent(Signal::SIGKILL, parent) {
                exit_now(0);
            }
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).unwrap_or(101);
            exit_now(code)
        }
    }
}

/// Leaves the process at once with `code`, running no destructors or atexit handlers.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: `_exit` is async-signal-safe and takes no pointers; it never returns.
    unsafe { libc::_exit(code) }
}

/// The size of a PMD-mapped transparent huge page on x86-64 and aarch64 (4 KiB base pages).
const HUGE_PAGE: u64 = 2 << 20;

/// A plain file mapped read-only (an `.npy` or Arrow IPC file used in place, zero copy).
#[derive(Debug)]
pub struct MappedFile {
    map: Mmap,
    path: PathBuf,
}

impl MappedFile {
    /// Maps `path` read-only.
    pub fn open(path: &Path) -> Result<Self, SegmentError> {
        let label = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|e| SegmentError::io(&label, "open", e))?;
        let len = file
            .metadata()
            .map_err(|e| SegmentError::io(&label, "fstat", e))?
            .len();
        if len == 0 {
            let map = MmapOptions::new()
                .len(0)
                .map_anon()
                .and_then(|m| m.make_read_only())
                .map_err(|e| SegmentError::io(&label, "mmap", e))?;
            return Ok(MappedFile {
                map,
                path: path.to_path_buf(),
            });
        }
        // SAFETY: read-only shared mapping of a regular file. If another process truncates the
        // file while it is mapped, touching the lost pages raises SIGBUS: the documented risk
        // of using files in place, the same as ripgrep's; shmframe itself never truncates an
        // input.
        let map = unsafe { MmapOptions::new().map(&file) }
            .map_err(|e| SegmentError::io(&label, "mmap", e))?;
        if len >= HUGE_PAGE {
            // Best effort (`transparent_hugepage` may be `never`): pages this mapping faults
            // in from disk enter the page cache as 2 MiB folios, which every mapping of the
            // file maps with one PMD entry instead of 512 PTEs. Measured on a 1 GiB file read
            // from disk this way: 100% in such folios with the advice, 96% without; touching
            // every page of a mapping then takes 6-8 ms instead of 80-88 ms (the same file
            // cached in 4 KiB folios), and unmapping 0.4 ms instead of 44-49 ms.
            let _ = map.advise(memmap2::Advice::HugePage);
        }
        Ok(MappedFile {
            map,
            path: path.to_path_buf(),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }
}

impl MappedFile {
    /// Maps the pages of `range` in one call (`MADV_POPULATE_READ`) instead of one fault per
    /// page on first read. Best effort.
    pub fn populate_read(&self, range: std::ops::Range<usize>) {
        populate(&self.map, range, memmap2::Advice::PopulateRead);
    }
}

/// Page-aligns `range` within `map` and applies a populate advice, ignoring errors.
pub(crate) fn populate(map: &Mmap, range: std::ops::Range<usize>, advice: memmap2::Advice) {
    let start = range.start / 4096 * 4096;
    let end = range.end.min(map.len());
    if end > start {
        let _ = map.advise_range(advice, start, end - start);
    }
}

impl AsRef<[u8]> for MappedFile {
    fn as_ref(&self) -> &[u8] {
        &self.map
    }
}
