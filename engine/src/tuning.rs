//! Every tuning value of the pool in one place, named, with the reason for its value.
//! docs/ARCHITECTURE.md refers to these names; measured effects are in docs/BENCHMARKS.md.

use std::time::Duration;

/// How long the coordinator waits on a job's completion semaphore before it looks after the
/// workers (reaps the dead, starts replacements, checks the deadline and the stall timeout,
/// reports progress). A worker death is noticed within about this long.
pub(crate) const WAIT_SLICE: Duration = Duration::from_millis(10);

/// How long an idle worker waits for a job before it drops mappings of unlinked segments
/// and checks that its coordinator is still its parent.
pub(crate) const IDLE_PURGE: Duration = Duration::from_millis(250);

/// A job is abandoned after this many worker deaths plus [`DEATHS_PER_WORKER`] per worker:
/// a job that keeps killing workers is a bug in the job, not bad luck.
pub(crate) const DEATHS_BASE: usize = 4;
/// See [`DEATHS_BASE`].
pub(crate) const DEATHS_PER_WORKER: usize = 4;

/// A chunk whose worker died this many times is not retried: the job fails with
/// [`crate::EngineError::ChunkKillsWorkers`].
pub(crate) const CHUNK_DEATHS: u8 = 2;

/// Read-only mappings (inputs) a worker keeps between jobs before it drops them all.
pub(crate) const MAX_CACHED_MAPPINGS: usize = 64;

/// Mappings of recycled outputs a worker keeps between jobs (the oldest is dropped first).
pub(crate) const MAX_KEPT_OUTPUTS: usize = 8;

/// Default chunks per worker of a row job: enough that a worker that finishes early takes
/// over work, few enough that claiming costs nothing. A longer interleaved A/B of 8 against
/// 32 per worker found no gain in more (docs/BENCHMARKS.md).
pub(crate) const CHUNKS_PER_WORKER: usize = 8;

/// Default chunk sizes are rounded up to a multiple of this many rows (and are at least this
/// large), so chunk boundaries fall on whole cache lines of the output.
pub(crate) const CHUNK_ROW_MULTIPLE: usize = 64;

/// `u8` matrices are widened to `f64` this many elements at a time (512 KiB of `f64`: the
/// block stays in L2 while the kernel reads it).
pub(crate) const WIDEN_BLOCK_ELEMENTS: usize = 1 << 16;

/// How long the pool may take to start (every worker ready).
pub(crate) const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Default stall timeout: a job whose completed-chunk count does not move for this long is
/// cancelled, the last line of defence against a hang when no deadline is given.
pub(crate) const STALL_TIMEOUT: Duration = Duration::from_secs(300);

/// Default time between asking workers to stop (or to leave a cancelled job) and killing them.
pub(crate) const GRACE: Duration = Duration::from_millis(500);

/// Default bound on the bytes of dropped outputs an engine keeps for reuse.
pub(crate) const RECYCLE_BYTES: u64 = 256 << 20;

/// ... or this fraction (1/N) of the segment directory's file system, if that is smaller.
pub(crate) const RECYCLE_FS_FRACTION: u64 = 8;

/// The load limit ([`crate::EngineBuilder::load_limit`]) where the machine's memory cannot be
/// read.
pub(crate) const LOAD_LIMIT_FALLBACK: u64 = 16 << 30;

/// Rows per decoded batch of a Parquet or CSV file: the budget is checked after each, so this
/// bounds what one batch can take past it.
pub(crate) const DECODE_BATCH_ROWS: usize = 8192;

/// Cells (rows x columns) per decoded CSV or Parquet batch: decoders size their buffers by
/// rows x columns up front (arrow-csv asked for 3.9 GB for 8192 rows of a 60,000-column
/// file), so wide files get fewer rows per batch.
pub(crate) const DECODE_BATCH_CELLS: usize = 1 << 20;

/// Rows of a CSV file its column types are inferred from.
pub(crate) const CSV_INFER_ROWS: usize = 1000;

/// The most columns a CSV header may have: a header of millions of fields would cost far more
/// memory per field than the file spends on it.
pub(crate) const CSV_MAX_COLUMNS: usize = 65_536;

/// How long creating an output keeps trying after releasing recycled outputs to make room:
/// their pages are freed only when the workers' mappings go too, which a worker drops just
/// after it leaves the job that wrote them (a CI run once lost that race on an 8 MiB
/// /dev/shm, in `faults::recycled_outputs_make_room`).
pub(crate) const ROOM_WAIT: Duration = Duration::from_millis(200);
