//! Job outputs kept for reuse: a dropped output segment goes back to its engine, and the next
//! job whose output has the very same layout is written into it.
//!
//! Why: a page of a fresh tmpfs segment costs time before it holds a byte: `posix_fallocate`
//! at creation (the coordinator), then the zeroing and mapping on the first write (the
//! workers). For the row norms of a 256 MiB matrix (a 16 MiB output, 4096 pages) `perf` put
//! the workers' share at 22% of their time, and the `run` call into a fresh output took
//! 23.2 ms against 13.9 ms into a reused one (pool benchmark, docs/BENCHMARKS.md): about
//! 2.3 us per page. A reused segment's pages are allocated already; the workers only map them
//! once and keep the mapping.
//!
//! The rules:
//! * Only the engine's own outputs of row jobs are recycled, and only when every clone of the
//!   frame and every array taken from it has been dropped (the segment's owner handle lives
//!   inside the Arrow buffers; its drop is the signal).
//! * An output whose name or path was asked for ([`crate::SharedFrame::segment_name`],
//!   [`crate::SharedFrame::path`]) is never recycled: another process may be reading it, and
//!   it must see the bytes of the job that made it. It is unlinked on drop as before.
//! * Reused only for an identical layout (output field, rows, null count), so every buffer
//!   is rewritten by the job: the values by the workers (every row, null or not), the
//!   validity bitmap by the coordinator. Metadata and padding are rewritten by
//!   [`shmframe_ipc::arrow::plan_layout_into`].
//! * The engine holds at most [`crate::EngineBuilder::recycle_outputs`] bytes of them
//!   (oldest dropped first); they are unlinked when the engine is dropped, and released at
//!   once when a new segment does not fit ([`OutputPool::clear`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use arrow_schema::Field;
use shmframe_ipc::{Segment, SegmentMut};

/// What must match for an output segment to be reused: its layout follows from these.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OutputKey {
    pub(crate) field: Field,
    pub(crate) rows: usize,
    pub(crate) null_count: usize,
}

/// Dropped outputs waiting for a job of the same layout.
#[derive(Debug)]
pub(crate) struct OutputPool {
    cap: u64,
    held: Mutex<Vec<(OutputKey, SegmentMut)>>,
}

fn seg_bytes(s: &SegmentMut) -> u64 {
    s.bytes().len() as u64
}

impl OutputPool {
    /// A pool holding at most `cap` bytes (0: nothing is ever kept).
    pub(crate) fn new(cap: u64) -> Self {
        OutputPool {
            cap,
            held: Mutex::new(Vec::new()),
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Vec<(OutputKey, SegmentMut)>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a held segment for `key`, if there is one (the most recently returned).
    pub(crate) fn take(&self, key: &OutputKey) -> Option<SegmentMut> {
        let mut held = self.held();
        let i = held.iter().rposition(|(k, _)| k == key)?;
        Some(held.remove(i).1)
    }

    /// Unlinks every held segment.
    pub(crate) fn clear(&self) {
        let gone = std::mem::take(&mut *self.held());
        drop(gone);
    }

    /// Bytes held now.
    pub(crate) fn bytes(&self) -> u64 {
        self.held().iter().map(|(_, s)| seg_bytes(s)).sum()
    }

    /// Keeps `seg` for reuse if it fits under the cap (dropping the oldest to make room);
    /// otherwise drops it, which unlinks it.
    fn give_back(&self, key: OutputKey, seg: Segment) {
        let size = seg.bytes().len() as u64;
        if size > self.cap {
            return;
        }
        let seg = match seg.into_writable() {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "output not recycled");
                return;
            }
        };
        let mut evicted = Vec::new();
        {
            let mut held = self.held();
            let mut total: u64 = held.iter().map(|(_, s)| seg_bytes(s)).sum();
            while total + size > self.cap && !held.is_empty() {
                let (_, old) = held.remove(0);
                total -= seg_bytes(&old);
                evicted.push(old);
            }
            held.push((key, seg));
        }
        drop(evicted); // unlinked outside the lock
    }
}

/// The owner of a job output's mapping inside its Arrow buffers: when the last buffer goes,
/// the segment goes back to the engine's [`OutputPool`] (or is unlinked if the engine is gone,
/// the name was handed out, or it does not fit).
#[derive(Debug)]
pub(crate) struct RecycledOwner {
    seg: Option<Segment>,
    pool: Weak<OutputPool>,
    key: OutputKey,
    exposed: Arc<AtomicBool>,
}

impl RecycledOwner {
    /// Wraps a published output `seg`; `exposed` is set by the frame when its name or path is
    /// asked for.
    pub(crate) fn new(
        seg: Segment,
        pool: &Arc<OutputPool>,
        key: OutputKey,
        exposed: Arc<AtomicBool>,
    ) -> Self {
        RecycledOwner {
            seg: Some(seg),
            pool: Arc::downgrade(pool),
            key,
            exposed,
        }
    }
}

impl AsRef<[u8]> for RecycledOwner {
    fn as_ref(&self) -> &[u8] {
        self.seg.as_ref().map_or(&[], |s| s.bytes())
    }
}

impl Drop for RecycledOwner {
    fn drop(&mut self) {
        let Some(seg) = self.seg.take() else { return };
        if self.exposed.load(Ordering::Acquire) {
            return;
        }
        if let Some(pool) = self.pool.upgrade() {
            pool.give_back(self.key.clone(), seg);
        }
    }
}
