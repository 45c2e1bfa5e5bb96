//! # shmframe-ipc
//!
//! Every operating-system and memory concern of shmframe, and nearly all of its `unsafe`:
//!
//! * [`SegmentMut`], [`Segment`], [`SegmentRw`]: named POSIX shared-memory segments (or files
//!   in a directory the user names) with a versioned `#[repr(C)]` header published last.
//! * [`AnonSegmentMut`] / [`SealedSegment`]: anonymous `memfd` segments, sealed after filling.
//! * [`arrow`]: Arrow IPC files inside segments, readable zero-copy by Rust and by pyarrow.
//! * [`matrix`]: `FixedSizeList` / `arrow.fixed_shape_tensor` columns as `ndarray` views.
//! * [`sync`]: futex semaphores and events living in shared memory; every wait has a timeout.
//! * [`SharedRegion`]: atomics and byte regions of a control segment.
//! * [`process`], [`sweep`]: process identity (pid + start time) and removal of stale segments.
//!
//! ```
//! use std::sync::Arc;
//! use arrow_array::{Float64Array, RecordBatch};
//! use shmframe_ipc::{CreateOptions, Segment, SegmentName, arrow::{read_ipc_file, write_batches}};
//!
//! let batch = RecordBatch::try_from_iter([(
//!     "x",
//!     Arc::new(Float64Array::from(vec![1.0, 2.0, 3.0])) as _,
//! )])?;
//! let name = SegmentName::owned("doc")?;
//! // The owner writes and publishes; the segment is unlinked when `owner` drops.
//! let owner = write_batches(name.clone(), &CreateOptions::default(), &batch.schema(), &[batch])?;
//! // Any process attaches read-only and decodes without copying.
//! let reader = Segment::attach(&name, owner.dir())?;
//! let file = read_ipc_file(reader, name.as_str())?;
//! assert_eq!(file.batches[0].num_rows(), 3);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod arrow;
mod error;
mod fork;
mod header;
pub mod matrix;
mod memfd;
mod name;
pub mod process;
mod segment;
mod shared;
pub mod sweep;
pub mod sync;

pub use arrow::ArrowSegmentError;
pub use error::{SegmentError, human_bytes};
pub use fork::{ForkError, MappedFile, exit_now, fork_worker};
pub use header::{
    ARROW_LEAD, ContentKind, FLAG_PERSISTENT, FORMAT_VERSION, HEADER_LEN, HeaderError, MAGIC,
    PAYLOAD_ALIGN, SegmentHeader,
};
pub use matrix::MatrixError;
pub use memfd::{AnonSegmentMut, SealedSegment};
pub use name::{MAX_LABEL_LEN, MAX_NAME_LEN, NameError, NameOwner, PREFIX, SegmentName};
pub use process::ProcessId;
pub use segment::{
    CreateOptions, DIR_ENV, PARALLEL_BYTES, Segment, SegmentDir, SegmentMut, SegmentRw,
    parallel_share, read_header, remove,
};
pub use shared::SharedRegion;
pub use sync::SyncError;
