//! Typed access to a writable shared mapping: arrays of atomics and plain byte regions.
//!
//! The control segment of the engine is a flat region that several processes map read-write.
//! Everything they touch concurrently is an atomic (`&[AtomicU32]`, `&[AtomicU64]`, handed out
//! here after bounds and alignment checks). Byte regions (a job descriptor, an error message)
//! are copied in and out with [`SharedRegion::write_bytes`] / [`SharedRegion::read_bytes`];
//! the protocol that uses them must order those copies with an atomic (a `Release` store after
//! writing, an `Acquire` load before reading), as the engine's job sequence number does.

use crate::error::SegmentError;
use crate::name::SegmentName;
use crate::segment::{CreateOptions, SegmentDir, SegmentMut, SegmentRw};
use crate::sync::atomic::{AtomicU32, AtomicU64};

enum Backing {
    Owner(SegmentMut),
    Attached(SegmentRw),
}

/// A shared read-write region backed by a segment: the owner's (creator, unlinks on drop) or a
/// read-write attachment from another process.
pub struct SharedRegion {
    backing: Backing,
    base: *mut u8,
    offset: usize,
    len: usize,
}

// SAFETY: the region is only accessed through atomics and through byte copies whose ordering
// the caller's protocol establishes with atomics; the raw pointer stays valid as long as the
// backing mapping, which this struct owns.
unsafe impl Send for SharedRegion {}
// SAFETY: as above: `&SharedRegion` hands out only atomics and copying accessors.
unsafe impl Sync for SharedRegion {}

impl std::fmt::Debug for SharedRegion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedRegion")
            .field("name", self.name())
            .field("len", &self.len)
            .finish()
    }
}

impl SharedRegion {
    /// Creates a control segment with `len` zeroed bytes and publishes its header at once (its
    /// content is synchronised by the atomics inside, not by the header).
    pub fn create(name: SegmentName, len: usize, dir: &SegmentDir) -> Result<Self, SegmentError> {
        let opts = CreateOptions {
            dir: dir.clone(),
            kind: crate::header::ContentKind::Control,
            persistent: false,
        };
        let mut seg = SegmentMut::create(name, len, &opts)?;
        seg.publish_in_place();
        let offset = seg.header().payload_offset as usize;
        let base = seg.as_mut_ptr();
        Ok(SharedRegion {
            backing: Backing::Owner(seg),
            base,
            offset,
            len,
        })
    }

    /// Attaches an existing control segment read-write.
    pub fn attach(name: &SegmentName, dir: &SegmentDir) -> Result<Self, SegmentError> {
        let mut seg = SegmentRw::attach(name, dir)?;
        let offset = seg.header().payload_offset as usize;
        let len = seg.header().payload_len as usize;
        let base = seg.as_mut_ptr();
        Ok(SharedRegion {
            backing: Backing::Attached(seg),
            base,
            offset,
            len,
        })
    }

    /// The backing segment's name.
    pub fn name(&self) -> &SegmentName {
        match &self.backing {
            Backing::Owner(s) => s.name(),
            Backing::Attached(s) => s.name(),
        }
    }

    /// Payload length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn check(&self, off: usize, bytes: usize, align: usize) -> *mut u8 {
        let end = off
            .checked_add(bytes)
            .expect("shared region range overflows");
        assert!(
            end <= self.len,
            "shared region access {off}..{end} past {}",
            self.len
        );
        let p = self.base.wrapping_add(self.offset + off);
        assert!(
            (p as usize).is_multiple_of(align),
            "misaligned shared access at {off}"
        );
        p
    }

    /// `n` atomic u32 words at byte offset `off` (a multiple of 4) of the payload.
    pub fn u32s(&self, off: usize, n: usize) -> &[AtomicU32] {
        let p = self.check(off, n * 4, 4);
        // SAFETY: `check` proved the range lies in the payload of a live mapping owned by
        // `self` and is 4-byte aligned; AtomicU32 has u32's layout and any bits are valid; all
        // processes access these words only atomically.
        unsafe { std::slice::from_raw_parts(p.cast::<AtomicU32>(), n) }
    }

    /// `n` atomic u64 words at byte offset `off` (a multiple of 8) of the payload.
    pub fn u64s(&self, off: usize, n: usize) -> &[AtomicU64] {
        let p = self.check(off, n * 8, 8);
        // SAFETY: as in `u32s`, with 8-byte alignment.
        unsafe { std::slice::from_raw_parts(p.cast::<AtomicU64>(), n) }
    }

    /// Copies `src` into the payload at `off`.
    ///
    /// The protocol must guarantee no other process reads these bytes concurrently and must
    /// publish them with a `Release` store on an atomic afterwards.
    pub fn write_bytes(&self, off: usize, src: &[u8]) {
        let p = self.check(off, src.len(), 1);
        // SAFETY: the destination range is inside the mapping (checked); it never overlaps
        // `src`, which is process-private memory; concurrent readers are excluded by the
        // caller's protocol (documented above).
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), p, src.len()) }
    }

    /// Copies payload bytes at `off` into `dst`. See [`SharedRegion::write_bytes`] for the
    /// ordering contract (an `Acquire` load before reading).
    pub fn read_bytes(&self, off: usize, dst: &mut [u8]) {
        let p = self.check(off, dst.len(), 1);
        // SAFETY: as in `write_bytes`, in the other direction.
        unsafe { std::ptr::copy_nonoverlapping(p, dst.as_mut_ptr(), dst.len()) }
    }
}
