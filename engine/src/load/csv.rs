//! CSV files with a header row, decoded once into a segment.

use std::path::Path;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use super::{Budget, input_err, no_panic, open_mapped};
use crate::coordinator::Engine;
use crate::error::EngineError;
use crate::frame::SharedFrame;
use crate::tuning::{CSV_INFER_ROWS, CSV_MAX_COLUMNS, DECODE_BATCH_CELLS, DECODE_BATCH_ROWS};

impl Engine {
    /// A CSV file with a header row (column types inferred from the first 1000 rows), decoded
    /// once into a segment.
    ///
    /// The file is mapped and read in place: a gigantic line costs at most its own length,
    /// a header of more than 65,536 columns is refused before anything is built for them,
    /// and decoded batches count against [`crate::EngineBuilder::load_limit`].
    pub fn frame_from_csv(&self, path: impl AsRef<Path>) -> Result<SharedFrame, EngineError> {
        let path = path.as_ref();
        let mapped = open_mapped(path)?;
        let limit = self.load_limit();
        let (schema, batches) = no_panic(path, || decode(path, mapped.bytes(), limit))?;
        SharedFrame::from_batches(schema, &batches, &self.segment_dir(), "csv")
    }
}

pub(crate) fn decode(
    path: &Path,
    bytes: &[u8],
    limit: u64,
) -> Result<(SchemaRef, Vec<RecordBatch>), EngineError> {
    let err = |e: arrow_schema::ArrowError| input_err(path, format!("CSV: {e}"));
    // An upper bound of the header's fields (quoted commas count too): refuse before the
    // reader builds a column per field.
    let first_line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    let fields = first_line.iter().filter(|b| **b == b',').count() + 1;
    if fields > CSV_MAX_COLUMNS {
        return Err(input_err(
            path,
            format!("CSV header has {fields} columns (the limit is {CSV_MAX_COLUMNS})"),
        ));
    }
    let format = arrow_csv::reader::Format::default().with_header(true);
    let (schema, _) = format
        .infer_schema(bytes, Some(CSV_INFER_ROWS))
        .map_err(err)?;
    let schema = Arc::new(schema);
    let rows = (DECODE_BATCH_CELLS / schema.fields().len().max(1)).clamp(1, DECODE_BATCH_ROWS);
    let reader = arrow_csv::ReaderBuilder::new(schema.clone())
        .with_header(true)
        .with_batch_size(rows)
        .build(bytes)
        .map_err(err)?;
    let mut budget = Budget::new(path, limit);
    let mut batches = Vec::new();
    for b in reader {
        let b = b.map_err(err)?;
        budget.batch(&b)?;
        batches.push(b);
    }
    Ok((schema, batches))
}
