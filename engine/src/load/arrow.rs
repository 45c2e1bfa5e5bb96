//! Arrow IPC files and streams (Feather v2): mapped in place when they can be, else decoded
//! once into a segment; the same checks either way.

use std::path::Path;

use shmframe_ipc::ArrowSegmentError;
use shmframe_ipc::arrow::{IpcFile, ReadOptions, read_ipc_with};

use super::{input_err, open_mapped, too_large};
use crate::coordinator::Engine;
use crate::error::EngineError;
use crate::frame::SharedFrame;
use crate::protocol::Loc;

impl Engine {
    /// An Arrow IPC file (Feather v2) or stream: mapped in place when it holds at most one
    /// record batch of aligned, uncompressed, little-endian buffers; otherwise decoded (LZ4
    /// frame and ZSTD buffers decompressed, misaligned buffers copied, batches concatenated)
    /// and copied once into a segment.
    ///
    /// Every block, buffer and field node is checked against the file before arrow-rs decodes
    /// it, and what decoding produces is bounded by [`crate::EngineBuilder::load_limit`]:
    /// a corrupt or hostile file is an [`EngineError::Input`] naming the file and what is
    /// wrong, never a panic or an allocation the file's size does not justify. Big-endian
    /// files are refused (their values would be misread).
    pub fn frame_from_arrow_file(
        &self,
        path: impl AsRef<Path>,
    ) -> Result<SharedFrame, EngineError> {
        let path = path.as_ref();
        match read_arrow(|| open_mapped(path), path, self.load_limit())? {
            ArrowRead::InPlace(file) => {
                SharedFrame::from_ipc(file, Loc::File(path.to_path_buf()), None, path.into())
            }
            ArrowRead::Decoded(file) => {
                SharedFrame::from_batches(file.schema, &file.batches, &self.segment_dir(), "arrow")
            }
        }
    }
}

/// What [`read_arrow`] made of a file.
pub(crate) enum ArrowRead {
    /// At most one batch, every buffer pointing into the mapping.
    InPlace(IpcFile),
    /// Decoded into memory (decompressed, realigned, or several batches).
    Decoded(IpcFile),
}

/// Reads Arrow IPC bytes: zero-copy first; if the data cannot be used in place, decoded again
/// with copies allowed and decoding bounded by `limit`. `open` gives the bytes (a mapping)
/// for each pass.
pub(crate) fn read_arrow<T>(
    open: impl Fn() -> Result<T, EngineError>,
    path: &Path,
    limit: u64,
) -> Result<ArrowRead, EngineError>
where
    T: AsRef<[u8]> + Send + Sync + 'static,
{
    let label = path.display().to_string();
    let why = match read_ipc_with(open()?, &label, &ReadOptions::default()) {
        Ok(file) if file.batches.len() <= 1 => return Ok(ArrowRead::InPlace(file)),
        Ok(file) => format!("{} record batches", file.batches.len()),
        Err(ArrowSegmentError::Compressed { .. }) => "compressed buffers".to_string(),
        // Misaligned buffers and the like: the copying decoder may take them.
        Err(ArrowSegmentError::Arrow { source, .. }) => source.to_string(),
        Err(e) => return Err(file_err(path, e)),
    };
    tracing::info!(file = %label, reason = %why, "cannot map in place; decoding into a segment");
    let opts = ReadOptions {
        require_alignment: false,
        decompress: true,
        max_decoded_bytes: limit,
    };
    let file = read_ipc_with(open()?, &label, &opts).map_err(|e| file_err(path, e))?;
    Ok(ArrowRead::Decoded(file))
}

/// The error of reading the file at `path`, as an input error naming it once.
fn file_err(path: &Path, e: ArrowSegmentError) -> EngineError {
    match e {
        ArrowSegmentError::Segment(s) => s.into(),
        ArrowSegmentError::TooLarge { limit, .. } => too_large(path, limit),
        e => {
            let full = e.to_string();
            let label = path.display().to_string();
            let reason = full
                .strip_prefix(&label)
                .and_then(|r| r.strip_prefix(": "))
                .unwrap_or(&full);
            input_err(path, reason)
        }
    }
}
