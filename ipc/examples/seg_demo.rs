//! Writes a segment with a matrix, a tensor and a nullable column, prints its path, and waits
//! for a line on stdin before dropping (unlinking) it.
use std::sync::Arc;

use arrow_array::{FixedSizeListArray, Float64Array, Int32Array, RecordBatch, UInt8Array};
use arrow_schema::{DataType, Field, Schema};
use shmframe_ipc::{CreateOptions, SegmentName, arrow::write_batches, matrix};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let m = matrix::matrix_field("x", DataType::Float64, 3, true);
    let t = matrix::tensor_field("img", DataType::UInt8, &[2, 2, 3], false);
    let schema = Arc::new(Schema::new(vec![
        m.clone(),
        t.clone(),
        Field::new("id", DataType::Int32, true),
    ]));
    let item = Arc::new(Field::new("item", DataType::Float64, false));
    let x = FixedSizeListArray::new(
        item,
        3,
        Arc::new(Float64Array::from_iter_values((0..6).map(f64::from))),
        None,
    );
    let item8 = Arc::new(Field::new("item", DataType::UInt8, false));
    let img = FixedSizeListArray::new(
        item8,
        12,
        Arc::new(UInt8Array::from_iter_values(0..24)),
        None,
    );
    let id = Int32Array::from(vec![Some(7), None]);
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(x), Arc::new(img), Arc::new(id)],
    )?;
    let seg = write_batches(
        SegmentName::owned("demo")?,
        &CreateOptions::default(),
        &schema,
        &[batch],
    )?;
    println!("{}", seg.path().display());
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(())
}
