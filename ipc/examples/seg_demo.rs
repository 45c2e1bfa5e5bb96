//! Writes a segment with a matrix, a tensor and a nullable column, reads it back zero-copy,
//! prints how to open it from Python, and waits for Enter before dropping (unlinking) it.
//!
//! ```sh
//! cargo run -p shmframe-ipc --example seg_demo
//! # in another terminal, while it waits:
//! python -c 'import pyarrow as pa; print(pa.ipc.open_file(pa.memory_map("/dev/shm/shmframe.…")).read_all())'
//! ```
//!
//! With stdin closed (`< /dev/null`) it exits at once. If it is killed instead, the segment
//! stays until `shmframe gc` (or `shmframe_ipc::sweep::sweep_stale`) removes it: its owner is
//! dead.
use std::sync::Arc;

use arrow_array::types::Float64Type;
use arrow_array::{FixedSizeListArray, Float64Array, Int32Array, RecordBatch, UInt8Array};
use arrow_schema::{DataType, Field, Schema};
use shmframe_ipc::arrow::{read_ipc_file, write_batches};
use shmframe_ipc::{CreateOptions, Segment, SegmentName, matrix};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let schema = Arc::new(Schema::new(vec![
        matrix::matrix_field("x", DataType::Float64, 3, true),
        matrix::tensor_field("img", DataType::UInt8, &[2, 2, 3], false),
        Field::new("id", DataType::Int32, true),
    ]));
    let x = FixedSizeListArray::new(
        Arc::new(Field::new("item", DataType::Float64, false)),
        3,
        Arc::new(Float64Array::from_iter_values((0..6).map(f64::from))),
        None,
    );
    let img = FixedSizeListArray::new(
        Arc::new(Field::new("item", DataType::UInt8, false)),
        12,
        Arc::new(UInt8Array::from_iter_values(0..24)),
        None,
    );
    let id = Int32Array::from(vec![Some(7), None]);
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(x), Arc::new(img), Arc::new(id)],
    )?;
    // The owner: unlinks the segment when dropped at the end of `main`.
    let owner = write_batches(
        SegmentName::owned("demo")?,
        &CreateOptions::default(),
        &schema,
        &[batch],
    )?;

    // What any other process does: attach read-only and decode in place.
    let reader = Segment::attach(owner.name(), owner.dir())?;
    let file = read_ipc_file(reader, owner.name().as_str())?;
    let rows = &file.batches[0];
    let view = matrix::matrix_view::<Float64Type>("x", rows.column(0))?;
    println!(
        "{}: {} bytes, {} rows; x as a {:?} matrix view: {:?}",
        owner.name(),
        owner.bytes().len(),
        rows.num_rows(),
        view.shape(),
        view.row(1).to_vec()
    );
    println!("{}", owner.path().display());
    println!(
        "python: pa.ipc.open_file(pa.memory_map({:?})).read_all()",
        owner.path().display().to_string()
    );
    println!("press Enter to remove it");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(())
}
