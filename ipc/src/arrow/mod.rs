//! Arrow IPC files inside segments.
//!
//! A segment of kind [`crate::ContentKind::ArrowFile`] is a valid Arrow IPC **file** byte for
//! byte: its header begins with the Arrow magic `ARROW1\0\0`, the shmframe header fields sit in
//! what Arrow readers treat as padding before the first message, the messages start at the
//! payload offset (128), every buffer is 64-byte aligned, and the footer's block offsets are
//! absolute within the object. So `pyarrow.ipc.open_file(pyarrow.memory_map("/dev/shm/NAME"))`
//! reads it without copying, and so does [`read_ipc_file`].
//!
//! Two ways in:
//! * [`write_batches`]: any `RecordBatch`es (every Arrow type), encoded by arrow-ipc and
//!   copied into the segment.
//! * [`plan_layout`]: a layout computed from a schema and a row count for the fixed-width
//!   and binary types, written as metadata only, so the buffers are filled in place (by
//!   workers, by a file loader) with no intermediate copy. [`plan_layout_into`] does the
//!   same into a segment the caller owns already (a recycled job output).

mod layout;
mod read;
#[doc(hidden)]
pub mod testing;
mod write;

use crate::error::SegmentError;
use crate::header::ContentKind;

pub use layout::{ColumnBuffers, ColumnPlan, PlannedSegment, plan_layout, plan_layout_into};
pub use read::{IpcFile, ReadOptions, buffer_range_in, read_ipc_file, read_ipc_with};
pub use write::write_batches;

/// An error from writing or reading Arrow data in a segment.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArrowSegmentError {
    /// The segment itself failed.
    #[error(transparent)]
    Segment(#[from] SegmentError),
    /// The segment does not hold an Arrow IPC file.
    #[error("segment {name} holds {kind:?}, not an Arrow IPC file")]
    NotArrow {
        /// The segment name.
        name: String,
        /// Its content kind.
        kind: ContentKind,
    },
    /// The Arrow IPC bytes are invalid.
    #[error("{name}: invalid Arrow IPC data: {reason}")]
    Invalid {
        /// What was read: `segment NAME` or a file's path.
        name: String,
        /// Why.
        reason: String,
    },
    /// Arrow refused the data.
    #[error("{name}: {source}")]
    Arrow {
        /// What was read: `segment NAME` or a file's path.
        name: String,
        /// The arrow error.
        #[source]
        source: arrow_schema::ArrowError,
    },
    /// The data is big-endian: arrow-rs would read its values with the wrong byte order, so
    /// it is refused rather than read wrong.
    #[error(
        "{name}: big-endian Arrow data is not supported (values would be misread); rewrite it \
         little-endian, e.g. with pyarrow: pa.ipc.new_file(out, table.schema).write(table)"
    )]
    BigEndian {
        /// What was read.
        name: String,
    },
    /// The data is compressed (LZ4 frame or ZSTD) and the reading was zero-copy only.
    #[error("{name}: compressed Arrow IPC buffers cannot be mapped in place")]
    Compressed {
        /// What was read.
        name: String,
    },
    /// Decoding would produce more than [`ReadOptions::max_decoded_bytes`].
    #[error(
        "{name}: decoding would produce more than the limit of {limit} bytes (a hostile or \
         corrupt file, or raise the limit)"
    )]
    TooLarge {
        /// What was read.
        name: String,
        /// The limit in bytes.
        limit: u64,
    },
    /// A type that the planned layout does not support.
    #[error("column {column:?}: type {data_type} is not supported here ({reason})")]
    Unsupported {
        /// The column.
        column: String,
        /// Its type.
        data_type: arrow_schema::DataType,
        /// Why.
        reason: &'static str,
    },
}

pub(crate) const CONTINUATION: [u8; 4] = [0xff; 4];
pub(crate) const ARROW_MAGIC: &[u8; 6] = b"ARROW1";
pub(crate) const ALIGN: usize = 64;

/// Frames a flatbuffer message: continuation, padded length, metadata, padding to 64 bytes.
/// Returns the framed bytes; their length is the block's `metaDataLength`.
pub(crate) fn frame_metadata(meta: &[u8]) -> Vec<u8> {
    let framed_len = (8 + meta.len()).next_multiple_of(ALIGN);
    let mut out = Vec::with_capacity(framed_len);
    out.extend_from_slice(&CONTINUATION);
    out.extend_from_slice(&((framed_len - 8) as i32).to_le_bytes());
    out.extend_from_slice(meta);
    out.resize(framed_len, 0);
    out
}

/// Builds the file footer (schema plus blocks) and the closing `len + ARROW1`.
pub(crate) fn footer_bytes(
    schema: &arrow_schema::Schema,
    dictionaries: &[arrow_ipc::Block],
    batches: &[arrow_ipc::Block],
) -> Vec<u8> {
    let mut fbb = flatbuffers::FlatBufferBuilder::new();
    let dicts = fbb.create_vector(dictionaries);
    let recs = fbb.create_vector(batches);
    // A fresh tracker numbers the dictionaries depth-first from 0, as the one that encoded
    // the schema message and the batches did: the footer names the same ids.
    let mut tracker = arrow_ipc::writer::DictionaryTracker::new(false);
    let schema = arrow_ipc::convert::IpcSchemaEncoder::new()
        .with_dictionary_tracker(&mut tracker)
        .schema_to_fb_offset(&mut fbb, schema);
    let mut fb = arrow_ipc::FooterBuilder::new(&mut fbb);
    fb.add_version(arrow_ipc::MetadataVersion::V5);
    fb.add_schema(schema);
    fb.add_dictionaries(dicts);
    fb.add_recordBatches(recs);
    let root = fb.finish();
    fbb.finish(root, None);
    let data = fbb.finished_data();
    let mut out = Vec::with_capacity(data.len() + 10);
    out.extend_from_slice(data);
    out.extend_from_slice(&(data.len() as i32).to_le_bytes());
    out.extend_from_slice(ARROW_MAGIC);
    out
}

/// The end-of-stream marker that closes the message stream before the footer.
pub(crate) const EOS: [u8; 8] = [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];

/// The schema message, framed. `tracker` assigns the dictionary ids; the batches must be
/// encoded with the same tracker.
pub(crate) fn schema_message(
    schema: &arrow_schema::Schema,
    tracker: &mut arrow_ipc::writer::DictionaryTracker,
) -> Vec<u8> {
    let generator = arrow_ipc::writer::IpcDataGenerator::default();
    let opts = write_options();
    let enc = generator.schema_to_bytes_with_dictionary_tracker(schema, tracker, &opts);
    frame_metadata(&enc.ipc_message)
}

pub(crate) fn write_options() -> arrow_ipc::writer::IpcWriteOptions {
    arrow_ipc::writer::IpcWriteOptions::try_new(ALIGN, false, arrow_ipc::MetadataVersion::V5)
        .expect("64-byte alignment with metadata V5 is a valid combination")
}
