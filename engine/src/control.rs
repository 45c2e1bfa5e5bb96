//! The control segment: the only thing besides data segments that processes share.
//!
//! Layout of its payload (all words are atomics; see `docs/ARCHITECTURE.md` for the protocol):
//!
//! ```text
//! byte 0     u32 words  JOB_SEQ .. (global words below)
//! byte 256   u32 words  worker slots, SLOT_WORDS each, MAX_WORKERS slots
//! CHUNKS_OFF u32 words  chunk states, MAX_CHUNKS of them (FREE, CLAIMED(slot+1), DONE)
//! DESC_OFF   bytes      job descriptor: u32 length + JSON
//! ERR_OFF    bytes      first error: u32 length + JSON
//! ```

use serde::{Deserialize, Serialize};
use shmframe_ipc::SharedRegion;
use shmframe_ipc::sync::atomic::{AtomicU32, Ordering};
use shmframe_ipc::sync::{Event, Semaphore};

/// The most workers a pool can have.
pub const MAX_WORKERS: usize = 256;
/// The most chunks a job can be cut into.
pub(crate) const MAX_CHUNKS: usize = 1 << 16;

// Global words (u32 index).
pub(crate) const JOB_SEQ: usize = 0; // Event: a job was posted (or shutdown / rescan)
pub(crate) const DONE: usize = 1; // Semaphore: the last participant leaving posts it
pub(crate) const SHUTDOWN: usize = 2;
pub(crate) const ACTIVE: usize = 3; // participants not yet left the current job
pub(crate) const NEXT_CHUNK: usize = 4; // claim counter
pub(crate) const N_CHUNKS: usize = 5;
pub(crate) const FAILED: usize = 6; // 0 ok, 1 an error is being written, 2 error written
pub(crate) const CANCEL: usize = 7; // workers stop claiming
pub(crate) const DONE_CHUNKS: usize = 8;
pub(crate) const CURRENT_SEQ: usize = 9; // the sequence number of the job in the descriptor
pub(crate) const READY: usize = 10; // Semaphore: each worker posts once when it waits for jobs
const GLOBAL_WORDS: usize = 64;

// Per-slot words.
pub(crate) const SLOT_WORDS: usize = 8;
pub(crate) const S_JOIN: usize = 0; // job seq the slot takes part in (0: none)
pub(crate) const S_PID: usize = 1;
pub(crate) const S_CHUNKS: usize = 3; // chunks completed by this worker, ever

const SLOTS_OFF: usize = GLOBAL_WORDS * 4;
const CHUNKS_OFF: usize = SLOTS_OFF + MAX_WORKERS * SLOT_WORDS * 4;
const DESC_OFF: usize = CHUNKS_OFF + MAX_CHUNKS * 4;
pub(crate) const DESC_MAX: usize = 60 * 1024;
const ERR_OFF: usize = DESC_OFF + DESC_MAX;
const ERR_MAX: usize = 4096;
/// Size of the control payload.
pub(crate) const CONTROL_LEN: usize = ERR_OFF + ERR_MAX;

/// Chunk state: nobody has it.
pub(crate) const CHUNK_FREE: u32 = 0;
/// Chunk state: written and counted.
pub(crate) const CHUNK_DONE: u32 = u32::MAX;

/// Typed access to the control segment.
pub(crate) struct Control {
    region: SharedRegion,
}

impl Control {
    pub(crate) fn new(region: SharedRegion) -> Self {
        assert!(region.len() >= CONTROL_LEN);
        Control { region }
    }

    pub(crate) fn word(&self, i: usize) -> &AtomicU32 {
        &self.region.u32s(i * 4, 1)[0]
    }

    pub(crate) fn slot(&self, slot: usize, w: usize) -> &AtomicU32 {
        &self.region.u32s(SLOTS_OFF + (slot * SLOT_WORDS + w) * 4, 1)[0]
    }

    pub(crate) fn chunks(&self, n: usize) -> &[AtomicU32] {
        self.region.u32s(CHUNKS_OFF, n.min(MAX_CHUNKS))
    }

    pub(crate) fn job_event(&self) -> Event<'_> {
        Event::new(self.word(JOB_SEQ), "job posted")
    }

    pub(crate) fn done_sem(&self) -> Semaphore<'_> {
        Semaphore::new(self.word(DONE), "job completion")
    }

    pub(crate) fn write_blob(&self, at_desc: bool, bytes: &[u8]) -> bool {
        let (off, max) = if at_desc {
            (DESC_OFF, DESC_MAX)
        } else {
            (ERR_OFF, ERR_MAX)
        };
        if bytes.len() + 4 > max {
            return false;
        }
        self.region
            .write_bytes(off, &(bytes.len() as u32).to_ne_bytes());
        self.region.write_bytes(off + 4, bytes);
        true
    }

    pub(crate) fn read_blob(&self, at_desc: bool) -> Vec<u8> {
        let (off, max) = if at_desc {
            (DESC_OFF, DESC_MAX)
        } else {
            (ERR_OFF, ERR_MAX)
        };
        let mut len = [0u8; 4];
        self.region.read_bytes(off, &mut len);
        let len = (u32::from_ne_bytes(len) as usize).min(max - 4);
        let mut out = vec![0u8; len];
        self.region.read_bytes(off + 4, &mut out);
        out
    }

    /// Records the first failure of a job (later ones are dropped). Returns whether this call
    /// recorded it.
    pub(crate) fn record_failure(&self, failure: &Failure) -> bool {
        if self
            .word(FAILED)
            .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        let mut json = serde_json::to_vec(failure).unwrap_or_default();
        json.truncate(ERR_MAX - 4);
        self.write_blob(false, &json);
        self.word(FAILED).store(2, Ordering::Release);
        self.word(CANCEL).store(1, Ordering::Release);
        true
    }

    pub(crate) fn failure(&self) -> Option<Failure> {
        match self.word(FAILED).load(Ordering::Acquire) {
            0 => None,
            2 => serde_json::from_slice(&self.read_blob(false))
                .ok()
                .or(Some(Failure {
                    kernel: "?".into(),
                    chunk: 0,
                    first_row: 0,
                    message: "error record unreadable".into(),
                })),
            _ => Some(Failure {
                kernel: "?".into(),
                chunk: 0,
                first_row: 0,
                message: "a worker died while recording an error".into(),
            }),
        }
    }
}

/// Where a buffer lives, as a worker finds it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) enum Loc {
    /// A named segment (in the engine's segment directory).
    Segment(String),
    /// A plain file mapped read-only.
    File(std::path::PathBuf),
}

/// A byte range in a mapped object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BufRef {
    pub(crate) loc: Loc,
    pub(crate) offset: usize,
    pub(crate) len: usize,
}

/// Element types a job reads or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Dtype {
    F32,
    F64,
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
}

impl Dtype {
    pub(crate) fn width(self) -> usize {
        match self {
            Dtype::I8 | Dtype::U8 => 1,
            Dtype::I16 | Dtype::U16 => 2,
            Dtype::F32 | Dtype::I32 | Dtype::U32 => 4,
            Dtype::F64 | Dtype::I64 | Dtype::U64 => 8,
        }
    }

    pub(crate) fn from_arrow(dt: &arrow_schema::DataType) -> Option<Self> {
        use arrow_schema::DataType as D;
        Some(match dt {
            D::Float32 => Dtype::F32,
            D::Float64 => Dtype::F64,
            D::Int8 => Dtype::I8,
            D::Int16 => Dtype::I16,
            D::Int32 => Dtype::I32,
            D::Int64 => Dtype::I64,
            D::UInt8 => Dtype::U8,
            D::UInt16 => Dtype::U16,
            D::UInt32 => Dtype::U32,
            D::UInt64 => Dtype::U64,
            _ => return None,
        })
    }

    pub(crate) fn to_arrow(self) -> arrow_schema::DataType {
        use arrow_schema::DataType as D;
        match self {
            Dtype::F32 => D::Float32,
            Dtype::F64 => D::Float64,
            Dtype::I8 => D::Int8,
            Dtype::I16 => D::Int16,
            Dtype::I32 => D::Int32,
            Dtype::I64 => D::Int64,
            Dtype::U8 => D::UInt8,
            Dtype::U16 => D::UInt16,
            Dtype::U32 => D::UInt32,
            Dtype::U64 => D::UInt64,
        }
    }
}

/// A job's input as workers see it: raw buffers, no Arrow parsing in the worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum InputDesc {
    /// A row-major matrix: `rows * cols` elements.
    Matrix {
        values: BufRef,
        dtype: Dtype,
        cols: usize,
    },
    /// Several primitive columns, a row across them.
    Columns { columns: Vec<(BufRef, Dtype)> },
}

/// What the job computes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Op {
    /// Nothing: the round-trip benchmark.
    Empty,
    /// A built-in row kernel.
    Row { id: u32, ddof: u32, acc: u32 },
    /// A registered user kernel.
    User { name: String },
    /// An image batch: decode, resize, encode (see `crate::image`).
    Resize(Box<crate::image::ResizeDesc>),
}

/// Test hooks carried by a job (fault injection; never set by normal use).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Hooks {
    /// The worker with this pid SIGKILLs itself after writing (not counting) this many chunks.
    pub(crate) kill_pid_after: Option<(u32, u32)>,
    /// Every worker sleeps this long (µs) after each chunk.
    pub(crate) chunk_sleep_us: u64,
}

/// The job descriptor: the only thing that crosses between processes besides atomics.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct JobDesc {
    pub(crate) seq: u32,
    pub(crate) op: Op,
    pub(crate) rows: usize,
    pub(crate) chunk_rows: usize,
    pub(crate) input: Option<InputDesc>,
    pub(crate) query: Option<(BufRef, Dtype)>,
    /// Output values buffer, element type and elements per row.
    pub(crate) output: Option<(BufRef, Dtype, usize)>,
    /// The output segment is a recycled one (see `recycle.rs`): workers keep their mapping
    /// of it after the job, so the next job into it finds its pages mapped.
    #[serde(default)]
    pub(crate) keep_output: bool,
    pub(crate) hooks: Hooks,
}

/// The first error of a job, as recorded by a worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Failure {
    pub(crate) kernel: String,
    pub(crate) chunk: usize,
    pub(crate) first_row: usize,
    pub(crate) message: String,
}
