//! Parquet files, decoded once into a segment, with the sizes their metadata claims checked
//! against the file and the load limit first.

use std::path::Path;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::{Budget, input_err, no_panic, open_mapped};
use crate::coordinator::Engine;
use crate::error::EngineError;
use crate::frame::SharedFrame;
use crate::tuning::{DECODE_BATCH_CELLS, DECODE_BATCH_ROWS};

impl Engine {
    /// A Parquet file, decoded once into a segment (snappy, zstd and uncompressed pages).
    ///
    /// The file is mapped, so the reader only ever slices it (a column chunk claiming more
    /// bytes than the file has is an error, not an allocation). Before any page is read, the
    /// row groups' claimed uncompressed sizes, and their rows times the columns' fixed widths,
    /// must fit [`crate::EngineBuilder::load_limit`]; decoded batches count against it too.
    pub fn frame_from_parquet(&self, path: impl AsRef<Path>) -> Result<SharedFrame, EngineError> {
        let path = path.as_ref();
        let bytes = bytes::Bytes::from_owner(open_mapped(path)?);
        let limit = self.load_limit();
        let (schema, batches) = no_panic(path, || decode(path, bytes, limit))?;
        SharedFrame::from_batches(schema, &batches, &self.segment_dir(), "parquet")
    }
}

pub(crate) fn decode(
    path: &Path,
    bytes: bytes::Bytes,
    limit: u64,
) -> Result<(SchemaRef, Vec<RecordBatch>), EngineError> {
    let err = |e: parquet::errors::ParquetError| input_err(path, format!("Parquet: {e}"));
    let file_len = bytes.len() as u64;
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(err)?;
    let schema = builder.schema().clone();
    let mut budget = Budget::new(path, limit);
    let row_width: u64 = schema
        .fields()
        .iter()
        .map(|f| f.data_type().primitive_width().unwrap_or(8) as u64)
        .sum::<u64>()
        .max(1);
    for (i, rg) in builder.metadata().row_groups().iter().enumerate() {
        let rows = u64::try_from(rg.num_rows())
            .map_err(|_| input_err(path, format!("row group {i}: {} rows", rg.num_rows())))?;
        for c in rg.columns() {
            let (compressed, uncompressed) = (c.compressed_size(), c.uncompressed_size());
            if compressed < 0 || uncompressed < 0 || compressed as u64 > file_len {
                return Err(input_err(
                    path,
                    format!(
                        "row group {i}, column {}: claims {compressed} bytes ({uncompressed} \
                         uncompressed) in a file of {file_len}",
                        c.column_path()
                    ),
                ));
            }
            budget.charge(uncompressed as u64)?;
        }
        budget.charge(rows.saturating_mul(row_width))?;
    }
    // What the metadata claims fits; now count what is really decoded.
    let mut budget = Budget::new(path, limit);
    let rows = (DECODE_BATCH_CELLS / schema.fields().len().max(1)).clamp(1, DECODE_BATCH_ROWS);
    let reader = builder.with_batch_size(rows).build().map_err(err)?;
    let mut batches = Vec::new();
    for b in reader {
        let b = b.map_err(|e| input_err(path, format!("Parquet: {e}")))?;
        budget.batch(&b)?;
        batches.push(b);
    }
    Ok((schema, batches))
}
