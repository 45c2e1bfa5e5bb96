//! NumPy `.npy` files: mapped in place when their data is aligned, else copied once.

use std::path::Path;

use arrow_buffer::Buffer;
use arrow_schema::DataType;

use super::memory::{matrix_batch, matrix_into_segment};
use super::{input_err, open_mapped};
use crate::coordinator::Engine;
use crate::error::EngineError;
use crate::frame::SharedFrame;
use crate::npy::{NpyDtype, parse_header};
use crate::protocol::Loc;

fn npy_arrow_type(d: NpyDtype) -> DataType {
    match d {
        NpyDtype::F32 => DataType::Float32,
        NpyDtype::F64 => DataType::Float64,
        NpyDtype::I32 => DataType::Int32,
        NpyDtype::I64 => DataType::Int64,
        NpyDtype::U8 => DataType::UInt8,
    }
}

impl Engine {
    /// A `.npy` file (C order, little-endian f32/f64/i32/i64/u8, 1-D or 2-D) as a frame with
    /// one column `x` (a `FixedSizeList` matrix for 2-D). Mapped in place when its data is
    /// aligned (no load step); otherwise copied once into a segment.
    pub fn frame_from_npy(&self, path: impl AsRef<Path>) -> Result<SharedFrame, EngineError> {
        let path = path.as_ref();
        let mapped = open_mapped(path)?;
        let header = parse_header(mapped.bytes()).map_err(|e| input_err(path, e))?;
        header
            .check_file_len(mapped.bytes().len() as u64)
            .map_err(|e| input_err(path, e))?;
        let dt = npy_arrow_type(header.dtype);
        let (rows, cols) = match header.shape.as_slice() {
            [n] => (*n, None),
            [r, c] => (*r, Some(*c)),
            s => return Err(input_err(path, format!("shape {s:?} is not 1-D or 2-D"))),
        };
        let off = header.data_offset;
        let len = header.data_len;
        if off.is_multiple_of(64) {
            let base = Buffer::from(bytes::Bytes::from_owner(mapped));
            let values = base.slice_with_length(off, len);
            let batch = matrix_batch(values, dt, rows, cols)?;
            return Ok(SharedFrame::from_mapped(
                batch,
                base,
                Loc::File(path.to_path_buf()),
                path.to_path_buf(),
            ));
        }
        tracing::info!(file = %path.display(), offset = off, "npy data not 64-byte aligned: copying once into a segment");
        matrix_into_segment(
            &mapped.bytes()[off..off + len],
            dt,
            rows,
            cols,
            &self.segment_dir(),
            "npy",
        )
    }
}
