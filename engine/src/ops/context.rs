//! What an operation's worker half is given: the worker's mappings (to map the buffers its
//! descriptor names), its thread pool, worker-local state, and the error type it returns.

use std::any::{Any, TypeId};
use std::cell::{RefCell, RefMut};
use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use shmframe_ipc::{MappedFile, Segment, SegmentDir, SegmentName, SegmentRw};

use crate::kernels::KernelError;
use crate::protocol::{BufRef, Loc, OutputDesc};
use crate::tuning::{MAX_CACHED_MAPPINGS, MAX_KEPT_OUTPUTS};
use crate::user::KernelRegistry;

/// Why a worker could not do its part of a job. It becomes text only where the worker records
/// it in the control segment (`crate::protocol::Failure`).
#[derive(Debug, thiserror::Error)]
pub(crate) enum WorkerError {
    /// A buffer's segment or file could not be mapped.
    #[error("cannot map {loc}: {reason}")]
    Map {
        /// The object.
        loc: Loc,
        /// Why.
        reason: String,
    },
    /// A buffer lies outside its mapping (a descriptor that does not match the object).
    #[error("buffer {loc} bytes {start}..{end} outside its mapping ({len} bytes)")]
    OutOfBounds {
        /// The object.
        loc: Loc,
        /// First byte.
        start: usize,
        /// Past the last byte.
        end: usize,
        /// Size of the mapping.
        len: usize,
    },
    /// A buffer is not aligned (or not a whole number of elements) for its element type.
    #[error("{what} buffer not aligned for its type: {reason}")]
    Misaligned {
        /// `input`, `output`, `query`.
        what: &'static str,
        /// bytemuck's reason.
        reason: bytemuck::PodCastError,
    },
    /// A built-in kernel refused its rows.
    #[error(transparent)]
    Kernel(#[from] KernelError),
    /// A user kernel returned an error.
    #[error("{0}")]
    User(String),
    /// The operation cannot run on this input (checked on the coordinator too: a worker that
    /// sees this was given a descriptor the coordinator would not write).
    #[error("{0}")]
    Unsupported(String),
    /// A user kernel of the job is not registered in this worker (spawn mode with another
    /// registry).
    #[error("user kernel {0:?} is not registered in this worker")]
    NotRegistered(String),
    /// The job's code panicked.
    #[error("panicked: {0}")]
    Panic(String),
    /// The job descriptor could not be read.
    #[error("unreadable job descriptor: {0}")]
    Descriptor(#[from] serde_json::Error),
    /// Anything else, said by the operation.
    #[cfg_attr(not(feature = "image"), allow(dead_code))] // only the image operation says more
    #[error("{0}")]
    Other(String),
}

/// A mapped object: a segment (attached read-only) or a file.
enum RoMap {
    Segment(Segment),
    File(MappedFile),
}

impl RoMap {
    fn bytes(&self) -> &[u8] {
        match self {
            RoMap::Segment(s) => s.bytes(),
            RoMap::File(f) => f.bytes(),
        }
    }

    fn stale(&self) -> bool {
        match self {
            RoMap::Segment(s) => s.is_unlinked(),
            RoMap::File(_) => false,
        }
    }
}

/// A buffer of a job, mapped: its bytes are checked to lie inside the mapping.
#[derive(Clone)]
pub(crate) struct Mapped {
    map: Arc<RoMap>,
    range: Range<usize>,
}

impl Mapped {
    /// The buffer's bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.map.bytes()[self.range.clone()]
    }

    /// The buffer as elements of `T`.
    pub(crate) fn typed<T: bytemuck::Pod>(&self, what: &'static str) -> Result<&[T], WorkerError> {
        cast(self.bytes(), what)
    }
}

/// `bytes` as elements of `T`.
pub(crate) fn cast<'a, T: bytemuck::Pod>(
    bytes: &'a [u8],
    what: &'static str,
) -> Result<&'a [T], WorkerError> {
    bytemuck::try_cast_slice(bytes).map_err(|reason| WorkerError::Misaligned { what, reason })
}

/// `bytes` as mutable elements of `T`.
pub(crate) fn cast_mut<'a, T: bytemuck::Pod>(
    bytes: &'a mut [u8],
    what: &'static str,
) -> Result<&'a mut [T], WorkerError> {
    bytemuck::try_cast_slice_mut(bytes).map_err(|reason| WorkerError::Misaligned { what, reason })
}

/// A worker's mappings: inputs cached between jobs (dropped once their segment is unlinked),
/// and recycled outputs kept mapped for the next job into them.
pub(crate) struct Mappings {
    dir: SegmentDir,
    ro: HashMap<Loc, Arc<RoMap>>,
    /// Mappings of recycled outputs, kept between jobs (most recent last).
    kept: Vec<SegmentRw>,
}

impl Mappings {
    /// No mappings yet; segments are found in `dir`.
    pub(crate) fn new(dir: SegmentDir) -> Self {
        Mappings {
            dir,
            ro: HashMap::new(),
            kept: Vec::new(),
        }
    }

    /// The segment directory.
    #[cfg_attr(not(feature = "image"), allow(dead_code))] // for scratch regions (images)
    pub(crate) fn dir(&self) -> &SegmentDir {
        &self.dir
    }

    /// Drops mappings of segments that have been unlinked, so their memory can be freed, and
    /// every input mapping once more than [`MAX_CACHED_MAPPINGS`] are cached.
    pub(crate) fn purge(&mut self) {
        if self.ro.len() > MAX_CACHED_MAPPINGS {
            self.ro.clear();
        }
        self.ro.retain(|_, m| !m.stale());
        self.kept.retain(|m| !m.is_unlinked());
    }

    /// Maps the object holding `b` (once per job: cached) and checks the range.
    pub(crate) fn map(&mut self, b: &BufRef) -> Result<Mapped, WorkerError> {
        let map = match self.ro.get(&b.loc) {
            Some(m) => m.clone(),
            None => {
                let failed = |reason: String| WorkerError::Map {
                    loc: b.loc.clone(),
                    reason,
                };
                let m = match &b.loc {
                    Loc::Segment(name) => {
                        let name = SegmentName::parse(name).map_err(|e| failed(e.to_string()))?;
                        RoMap::Segment(
                            Segment::attach(&name, &self.dir).map_err(|e| failed(e.to_string()))?,
                        )
                    }
                    Loc::File(p) => {
                        RoMap::File(MappedFile::open(p).map_err(|e| failed(e.to_string()))?)
                    }
                };
                let m = Arc::new(m);
                self.ro.insert(b.loc.clone(), m.clone());
                m
            }
        };
        let len = map.bytes().len();
        let end =
            b.offset
                .checked_add(b.len)
                .filter(|&e| e <= len)
                .ok_or(WorkerError::OutOfBounds {
                    loc: b.loc.clone(),
                    start: b.offset,
                    end: b.offset.saturating_add(b.len),
                    len,
                })?;
        Ok(Mapped {
            map,
            range: b.offset..end,
        })
    }

    /// The writable mapping of a job's output: the kept one of a recycled output, or a new
    /// attachment.
    pub(crate) fn output(&mut self, out: &OutputDesc) -> Result<SegmentRw, WorkerError> {
        let failed = |reason: String| WorkerError::Map {
            loc: out.values.loc.clone(),
            reason,
        };
        let Loc::Segment(name) = &out.values.loc else {
            return Err(failed("outputs must be segments".into()));
        };
        if let Some(i) = self.kept.iter().position(|m| m.name().as_str() == name) {
            return Ok(self.kept.remove(i));
        }
        let name = SegmentName::parse(name).map_err(|e| failed(e.to_string()))?;
        SegmentRw::attach(&name, &self.dir).map_err(|e| failed(e.to_string()))
    }

    /// Keeps the mapping of a recycled output for the next job into it.
    pub(crate) fn keep_output(&mut self, seg: SegmentRw) {
        if self.kept.len() >= MAX_KEPT_OUTPUTS {
            self.kept.remove(0);
        }
        self.kept.push(seg);
    }
}

/// Worker-local state that outlives jobs, one value per type (e.g. the image codecs), made on
/// first use.
#[derive(Default)]
#[cfg_attr(not(feature = "image"), allow(dead_code))] // the image codecs are the only user yet
pub(crate) struct Locals(RefCell<HashMap<TypeId, Box<dyn Any>>>);

#[cfg_attr(not(feature = "image"), allow(dead_code))]
impl Locals {
    /// The worker's `T`, made by `make` on first use.
    pub(crate) fn get<T: 'static>(
        &self,
        make: impl FnOnce() -> Result<T, WorkerError>,
    ) -> Result<RefMut<'_, T>, WorkerError> {
        let mut map = self.0.borrow_mut();
        if let std::collections::hash_map::Entry::Vacant(e) = map.entry(TypeId::of::<T>()) {
            e.insert(Box::new(make()?));
        }
        Ok(RefMut::map(map, |m| {
            m.get_mut(&TypeId::of::<T>())
                .and_then(|b| b.downcast_mut::<T>())
                .expect("inserted above with its own type id")
        }))
    }
}

/// What an operation's `prepare` gets: once per job, before any chunk.
pub(crate) struct Prepare<'a> {
    /// The worker's mappings: map every buffer the descriptor names here.
    pub(crate) maps: &'a mut Mappings,
    /// The user kernels registered in this worker.
    pub(crate) registry: &'a KernelRegistry,
}

/// What an operation's `execute` gets: one claimed chunk.
pub(crate) struct Chunk<'a> {
    /// The chunk's rows.
    pub(crate) rows: Range<usize>,
    /// The worker's own thread pool (`threads_per_worker` > 1).
    pub(crate) threads: Option<&'a rayon::ThreadPool>,
    /// Worker-local state.
    #[cfg_attr(not(feature = "image"), allow(dead_code))]
    pub(crate) locals: &'a Locals,
}

impl Chunk<'_> {
    /// Runs `f(lo, hi, out_rows)` over the chunk's rows (`lo..hi` relative to the chunk's
    /// first row), split across the worker's thread pool when it has one; `out` holds `width`
    /// values per row.
    pub(crate) fn par_rows<T: Send>(
        &self,
        out: &mut [T],
        width: usize,
        f: impl Fn(usize, usize, &mut [T]) -> Result<(), WorkerError> + Sync,
    ) -> Result<(), WorkerError> {
        let rows = out.len().checked_div(width).unwrap_or(0);
        match self.threads {
            Some(pool) if rows >= 2 * pool.current_num_threads() => {
                let per = rows.div_ceil(pool.current_num_threads());
                pool.install(|| {
                    use rayon::prelude::*;
                    out.par_chunks_mut(per * width)
                        .enumerate()
                        .try_for_each(|(i, o)| f(i * per, i * per + o.len() / width, o))
                })
            }
            _ => f(0, rows, out),
        }
    }
}
