//! The `#[repr(C)]` header at the start of every segment.
//!
//! ```text
//! offset  size  field
//!      0     8  lead            "ARROW1\0\0" for Arrow IPC content (so the object is a valid
//!                               Arrow IPC file byte for byte), zero otherwise
//!      8     8  magic           "SHMFRAME"
//!     16     4  version         0 while being filled; FORMAT_VERSION once published (atomic)
//!     20     4  header_len      HEADER_LEN
//!     24     8  total_len       size of the whole object in bytes
//!     32     8  payload_offset  where the payload starts (a multiple of 64)
//!     40     8  payload_len     payload bytes
//!     48     4  owner_pid       creator's pid; 0 for a segment owned by nobody
//!     52     4  kind            ContentKind
//!     56     8  owner_start     creator's start time (clock ticks since boot)
//!     64     8  created_ns      creation time, nanoseconds since the Unix epoch
//!     72     4  flags           FLAG_PERSISTENT, ...
//!     76    52  reserved        zero
//! ```
//!
//! The creator writes every field with `version = 0`, fills the payload, and only then stores
//! the version with `Release` ordering: **the version store is the sync point**. A reader loads
//! it with `Acquire` and refuses 0 ("unpublished") or an unknown version, then checks every
//! offset against the real size of the object before touching the payload.

use std::sync::atomic::{AtomicU32, Ordering};

/// Size of the header in bytes.
pub const HEADER_LEN: usize = 128;
/// Payload alignment (Arrow's recommended buffer alignment).
pub const PAYLOAD_ALIGN: usize = 64;
/// The header format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The shmframe magic at offset 8.
pub const MAGIC: [u8; 8] = *b"SHMFRAME";
/// The Arrow IPC file magic, with its padding, at offset 0 of Arrow segments.
pub const ARROW_LEAD: [u8; 8] = *b"ARROW1\0\0";
/// Header flag: the segment is owned by no process and survives its creator.
pub const FLAG_PERSISTENT: u32 = 1;

pub(crate) const VERSION_OFFSET: usize = 16;

/// What a segment holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
#[non_exhaustive]
pub enum ContentKind {
    /// Raw bytes with no further structure.
    Raw = 1,
    /// An Arrow IPC file (footer offsets are absolute within the object).
    ArrowFile = 2,
    /// A control block: job descriptors, semaphores and counters.
    Control = 3,
}

impl ContentKind {
    /// The kind with this numeric value.
    pub fn from_u32(v: u32) -> Option<Self> {
        match v {
            1 => Some(ContentKind::Raw),
            2 => Some(ContentKind::ArrowFile),
            3 => Some(ContentKind::Control),
            _ => None,
        }
    }

    /// A short lowercase name (`raw`, `arrow`, `control`).
    pub fn as_str(&self) -> &'static str {
        match self {
            ContentKind::Raw => "raw",
            ContentKind::ArrowFile => "arrow",
            ContentKind::Control => "control",
        }
    }
}

/// Why a segment's header was refused on attach.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// The object is smaller than a header.
    #[error("object has {size} bytes, smaller than the {header} byte shmframe header")]
    TooSmall {
        /// The object's size.
        size: u64,
        /// The header size.
        header: u64,
    },
    /// The magic bytes are wrong: not a shmframe segment.
    #[error("wrong magic bytes: not a shmframe segment")]
    Magic,
    /// The header has not been published yet (still being filled, or its creator died while filling).
    #[error(
        "header not published (segment still being filled, or its creator died while filling it)"
    )]
    Unpublished,
    /// The header is already published where an unpublished one was expected.
    #[error("header already published: the segment is sealed for readers, no more writes")]
    AlreadyPublished,
    /// The format version is not one this build reads.
    #[error("format version {found} is not supported (this build reads version {supported})")]
    Version {
        /// The version found.
        found: u32,
        /// The version supported.
        supported: u32,
    },
    /// A field has an impossible value.
    #[error("header field {field} is invalid: {value} ({reason})")]
    Field {
        /// The field name.
        field: &'static str,
        /// The value found.
        value: u64,
        /// Why it is refused.
        reason: &'static str,
    },
}

/// A decoded, validated segment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Format version (0 = unpublished).
    pub version: u32,
    /// Size of the whole object.
    pub total_len: u64,
    /// Start of the payload.
    pub payload_offset: u64,
    /// Length of the payload.
    pub payload_len: u64,
    /// Creator's pid (0 = nobody).
    pub owner_pid: u32,
    /// Creator's start time in clock ticks since boot.
    pub owner_start: u64,
    /// Creation time in ns since the Unix epoch.
    pub created_ns: u64,
    /// What the payload holds.
    pub kind: ContentKind,
    /// Flags (`FLAG_PERSISTENT`).
    pub flags: u32,
}

impl SegmentHeader {
    /// Whether the segment is owned by nobody and survives its creator.
    pub fn is_persistent(&self) -> bool {
        self.flags & FLAG_PERSISTENT != 0
    }

    /// Writes every field except the version (left at 0, "unpublished") into `buf`.
    pub(crate) fn write_unpublished(&self, buf: &mut [u8]) {
        let h = &mut buf[..HEADER_LEN];
        h.fill(0);
        if self.kind == ContentKind::ArrowFile {
            h[0..8].copy_from_slice(&ARROW_LEAD);
        }
        h[8..16].copy_from_slice(&MAGIC);
        h[20..24].copy_from_slice(&(HEADER_LEN as u32).to_ne_bytes());
        h[24..32].copy_from_slice(&self.total_len.to_ne_bytes());
        h[32..40].copy_from_slice(&self.payload_offset.to_ne_bytes());
        h[40..48].copy_from_slice(&self.payload_len.to_ne_bytes());
        h[48..52].copy_from_slice(&self.owner_pid.to_ne_bytes());
        h[52..56].copy_from_slice(&(self.kind as u32).to_ne_bytes());
        h[56..64].copy_from_slice(&self.owner_start.to_ne_bytes());
        h[64..72].copy_from_slice(&self.created_ns.to_ne_bytes());
        h[72..76].copy_from_slice(&self.flags.to_ne_bytes());
    }

    /// Decodes and validates a header against the real object size.
    ///
    /// `version` is the value the caller loaded atomically, with `Acquire` ordering.
    pub fn decode(buf: &[u8], version: u32, object_size: u64) -> Result<Self, HeaderError> {
        if (buf.len() as u64) < HEADER_LEN as u64 || object_size < HEADER_LEN as u64 {
            return Err(HeaderError::TooSmall {
                size: object_size.min(buf.len() as u64),
                header: HEADER_LEN as u64,
            });
        }
        if buf[8..16] != MAGIC {
            return Err(HeaderError::Magic);
        }
        let u32_at = |o: usize| u32::from_ne_bytes(buf[o..o + 4].try_into().expect("4 bytes"));
        let u64_at = |o: usize| u64::from_ne_bytes(buf[o..o + 8].try_into().expect("8 bytes"));
        if version != 0 && version != FORMAT_VERSION {
            return Err(HeaderError::Version {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let header_len = u32_at(20);
        if header_len as usize != HEADER_LEN {
            return Err(HeaderError::Field {
                field: "header_len",
                value: header_len as u64,
                reason: "must be 128",
            });
        }
        let kind_raw = u32_at(52);
        let kind = ContentKind::from_u32(kind_raw).ok_or(HeaderError::Field {
            field: "kind",
            value: kind_raw as u64,
            reason: "unknown content kind",
        })?;
        let lead_ok = if kind == ContentKind::ArrowFile {
            buf[0..8] == ARROW_LEAD
        } else {
            buf[0..8] == [0; 8]
        };
        if !lead_ok {
            return Err(HeaderError::Magic);
        }
        let total_len = u64_at(24);
        if total_len != object_size {
            return Err(HeaderError::Field {
                field: "total_len",
                value: total_len,
                reason: "differs from the object's real size",
            });
        }
        let payload_offset = u64_at(32);
        if payload_offset < HEADER_LEN as u64
            || !payload_offset.is_multiple_of(PAYLOAD_ALIGN as u64)
        {
            return Err(HeaderError::Field {
                field: "payload_offset",
                value: payload_offset,
                reason: "must be >= 128 and a multiple of 64",
            });
        }
        if payload_offset > total_len {
            return Err(HeaderError::Field {
                field: "payload_offset",
                value: payload_offset,
                reason: "starts past the end of the object",
            });
        }
        let payload_len = u64_at(40);
        match payload_offset.checked_add(payload_len) {
            Some(end) if end <= total_len => {}
            _ => {
                return Err(HeaderError::Field {
                    field: "payload_len",
                    value: payload_len,
                    reason: "payload ends past the end of the object",
                });
            }
        }
        let flags = u32_at(72);
        if flags & !FLAG_PERSISTENT != 0 {
            return Err(HeaderError::Field {
                field: "flags",
                value: flags as u64,
                reason: "unknown flag bits",
            });
        }
        Ok(SegmentHeader {
            version,
            total_len,
            payload_offset,
            payload_len,
            owner_pid: u32_at(48),
            owner_start: u64_at(56),
            created_ns: u64_at(64),
            kind,
            flags,
        })
    }
}

/// The version word of a mapped header, as an atomic.
///
/// # Safety
/// `base` must point to a live mapping of at least [`HEADER_LEN`] bytes that stays mapped for
/// `'a`, aligned to 4 bytes (mappings are page aligned).
unsafe fn version_word<'a>(base: *const u8) -> &'a AtomicU32 {
    // SAFETY: the caller guarantees `base..base+HEADER_LEN` is mapped for 'a; offset 16 is
    // 4-byte aligned because `base` is page aligned; AtomicU32 has the layout of u32 and any
    // bit pattern is valid. Other processes only ever access this word atomically.
    unsafe { &*base.add(VERSION_OFFSET).cast::<AtomicU32>() }
}

/// Loads the version word with `Acquire` ordering: everything the creator wrote before
/// publishing is visible after a non-zero load.
pub(crate) fn load_version(map: &[u8]) -> u32 {
    assert!(map.len() >= HEADER_LEN && (map.as_ptr() as usize).is_multiple_of(4));
    // SAFETY: asserted above: the slice covers the header and is 4-byte aligned; the borrow of
    // `map` keeps the mapping alive. An atomic load of read-only memory is allowed.
    unsafe { version_word(map.as_ptr()) }.load(Ordering::Acquire)
}

/// Publishes a header: stores [`FORMAT_VERSION`] with `Release` ordering. SYNC POINT: every
/// write to the segment made before this call is visible to a reader that sees the version.
pub(crate) fn publish(map: &mut [u8]) {
    store_version(map, FORMAT_VERSION);
}

/// Withdraws a header's publication: stores version 0, so a process that attaches from now on
/// is refused ([`HeaderError::Unpublished`]) until the next [`publish`]. The owner's way to
/// refill a segment it published before.
pub(crate) fn unpublish(map: &mut [u8]) {
    store_version(map, 0);
}

fn store_version(map: &mut [u8], version: u32) {
    assert!(map.len() >= HEADER_LEN && (map.as_ptr() as usize).is_multiple_of(4));
    // SAFETY: as in `load_version`; the mapping is writable (we hold `&mut`).
    unsafe { version_word(map.as_ptr()) }.store(version, Ordering::Release);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(kind: ContentKind) -> SegmentHeader {
        SegmentHeader {
            version: 0,
            total_len: 4096,
            payload_offset: 128,
            payload_len: 1000,
            owner_pid: 42,
            owner_start: 7,
            created_ns: 99,
            kind,
            flags: 0,
        }
    }

    #[test]
    fn round_trip_and_publish() {
        for kind in [
            ContentKind::Raw,
            ContentKind::ArrowFile,
            ContentKind::Control,
        ] {
            let mut buf = vec![0u64; 16];
            let bytes: &mut [u8] = bytemuck_bytes(&mut buf);
            sample(kind).write_unpublished(bytes);
            assert_eq!(load_version(bytes), 0);
            publish(bytes);
            let v = load_version(bytes);
            assert_eq!(v, FORMAT_VERSION);
            let h = SegmentHeader::decode(bytes, v, 4096).unwrap();
            assert_eq!(
                h,
                SegmentHeader {
                    version: FORMAT_VERSION,
                    ..sample(kind)
                }
            );
        }
    }

    fn bytemuck_bytes(v: &mut [u64]) -> &mut [u8] {
        bytemuck::cast_slice_mut(v)
    }

    #[test]
    fn refuses_bad_fields() {
        let mut raw = vec![0u64; 16];
        let buf = bytemuck_bytes(&mut raw);
        sample(ContentKind::Raw).write_unpublished(buf);
        let ok = buf.to_vec();
        let check = |mutate: &dyn Fn(&mut Vec<u8>), size: u64| {
            let mut b = ok.clone();
            mutate(&mut b);
            SegmentHeader::decode(&b, 1, size).unwrap_err()
        };
        assert_eq!(check(&|b| b[8] = b'X', 4096), HeaderError::Magic);
        assert_eq!(check(&|b| b[0] = b'A', 4096), HeaderError::Magic);
        assert!(matches!(
            check(&|_| {}, 4095),
            HeaderError::Field {
                field: "total_len",
                ..
            }
        ));
        assert!(matches!(
            check(&|b| b[32..40].copy_from_slice(&100u64.to_ne_bytes()), 4096),
            HeaderError::Field {
                field: "payload_offset",
                ..
            }
        ));
        assert!(matches!(
            check(
                &|b| b[40..48].copy_from_slice(&u64::MAX.to_ne_bytes()),
                4096
            ),
            HeaderError::Field {
                field: "payload_len",
                ..
            }
        ));
        assert!(matches!(
            check(&|b| b[52..56].copy_from_slice(&77u32.to_ne_bytes()), 4096),
            HeaderError::Field { field: "kind", .. }
        ));
        assert!(matches!(check(&|_| {}, 64), HeaderError::TooSmall { .. }));
        assert!(matches!(
            SegmentHeader::decode(&ok, 9, 4096),
            Err(HeaderError::Version { found: 9, .. })
        ));
    }
}
