//! Arrow data written by one process, read zero-copy by another.

use std::sync::Arc;

use arrow_array::types::{Float64Type, UInt8Type};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Schema};
use shmframe_ipc::arrow::{read_ipc_file, write_batches};
use shmframe_ipc::{CreateOptions, Segment, SegmentDir, SegmentName, matrix};

use super::harness::{
    LeakGuard, addr_range, assert_inside, child_arg, child_exit, is_child, run_child, sample_batch,
};

/// Child: attaches `<name>` read-only and compares its batch with the sample batch.
#[test]
fn child_attach_reader() {
    let Some(name) = child_arg("attach_reader") else {
        return;
    };
    let name = SegmentName::parse(&name).unwrap();
    let seg = Segment::attach(&name, &SegmentDir::Shm).unwrap();
    let file = read_ipc_file(seg, name.as_str()).unwrap();
    let want = sample_batch();
    let ok = file.batches.len() == 1 && file.batches[0] == want;
    child_exit(
        ok,
        format_args!("read {:?}, expected {want:?}", file.batches),
    )
}

#[test]
fn child_reads_the_same_arrow_values() {
    if is_child() {
        return;
    }
    let g = LeakGuard::new("t-read");
    let batch = sample_batch();
    let owner = write_batches(
        g.name(),
        &CreateOptions::default(),
        &batch.schema(),
        std::slice::from_ref(&batch),
    )
    .unwrap();
    run_child(
        crate::test_name!(child_attach_reader),
        "attach_reader",
        owner.name().as_str(),
    )
    .assert_success("the child read other values");
    // The owner's drop unlinks the segment (the guard checks it).
    drop(owner);
}

#[test]
fn read_ipc_file_is_zero_copy() {
    if is_child() {
        return;
    }
    let g = LeakGuard::new("t-zc");
    let batch = sample_batch();
    let owner = write_batches(
        g.name(),
        &CreateOptions::default(),
        &batch.schema(),
        std::slice::from_ref(&batch),
    )
    .unwrap();
    let reader = Segment::attach(owner.name(), owner.dir()).unwrap();
    let mapping = addr_range(reader.bytes());
    let file = read_ipc_file(reader, "t-zc").unwrap();
    assert_eq!(file.batches[0], batch);
    // x: values; img: values; id: values + nulls; s: offsets + values + nulls (+ the lists'
    // own, empty, buffer lists).
    let n = assert_inside(&file.batches, mapping.clone());
    assert!(n >= 7, "only {n} buffers checked");
    // The ndarray view is a view of the same bytes.
    let x: &ArrayRef = file.batches[0].column(0);
    let view = matrix::matrix_view::<Float64Type>("x", x).unwrap();
    assert_eq!(view.shape(), &[3, 3]);
    assert_eq!(view[[2, 1]], 7.0);
    let p = view.as_ptr() as usize;
    assert!(mapping.contains(&p), "matrix view copied");
    let img: &ArrayRef = file.batches[0].column(1);
    let field = file.schema.field(1);
    assert_eq!(matrix::tensor_shape(field).unwrap(), Some(vec![2, 2, 3]));
    let t = matrix::matrix_view::<UInt8Type>("img", img).unwrap();
    assert!(mapping.contains(&(t.as_ptr() as usize)));
    // The owner and the arrays both hold the mapping; the object goes with the owner.
    let path = owner.path();
    drop(owner);
    assert!(!path.exists(), "the owner's drop unlinks the object");
    assert_eq!(view[[0, 2]], 2.0, "the mapping outlives the unlink");
    drop(file);
}

#[test]
fn empty_batches_and_zero_rows() {
    if is_child() {
        return;
    }
    let g = LeakGuard::new("t-empty");
    let schema = Arc::new(Schema::new(vec![matrix::matrix_field(
        "x",
        DataType::Float64,
        4,
        false,
    )]));
    let owner = write_batches(
        g.name(),
        &CreateOptions::default(),
        &schema,
        &[RecordBatch::new_empty(schema.clone())],
    )
    .unwrap();
    let f = read_ipc_file(Segment::attach(owner.name(), owner.dir()).unwrap(), "t").unwrap();
    assert_eq!(f.batches[0].num_rows(), 0);
    let v = matrix::matrix_view::<Float64Type>("x", f.batches[0].column(0)).unwrap();
    assert_eq!(v.shape(), &[0, 4]);
    // No batches at all is a valid file too.
    let none = write_batches(g.name(), &CreateOptions::default(), &schema, &[]).unwrap();
    let f = read_ipc_file(Segment::attach(none.name(), none.dir()).unwrap(), "t").unwrap();
    assert!(f.batches.is_empty());
    assert_eq!(f.schema, schema);
}
